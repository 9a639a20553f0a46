"""Transitions between program states, as `pulumi up --refresh` would apply them.

A tool (``pilotlight cutover`` / ``failback``) changes AWS first; ``--refresh`` then reads that
reality into the state before the diff. :func:`refreshed` models it: the previous evaluation's
resources with the inputs the tool changed. :func:`plan` is what the engine would do to each URN.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from scripts.preview import awsrules

INSTANCE = "aws:rds/instance:Instance"
RECORD = "aws:route53/record:Record"
CHECK = "aws:route53/healthCheck:HealthCheck"
BACKUPS = "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"
_DROP = object()


def refreshed(run, edits: Mapping[str, Mapping[str, Any]]) -> list[awsrules.Resource]:
    """``run``'s resources after a refresh: ``edits`` maps a logical name to inputs to set (``DROP`` removes)."""
    unknown = set(edits) - {r.name for r in run.views}
    if unknown:
        raise KeyError(f"no resource named {sorted(unknown)}")
    out = []
    for r in run.views:
        if r.name in edits:
            inputs = dict(r.inputs)
            for key, value in edits[r.name].items():
                if value is _DROP:
                    inputs.pop(key, None)
                else:
                    inputs[key] = value
            r = replace(r, inputs=inputs)
        out.append(r)
    return out


DROP = _DROP


def plan(before: list[awsrules.Resource], after_run) -> dict[str, list[awsrules.Change]]:
    """Changes by operation (``create``, ``import``, ``delete``, ``replace``, ``update``)."""
    out: dict[str, list[awsrules.Change]] = {}
    for change in awsrules.changes(before, after_run.views):
        out.setdefault(change.op, []).append(change)
    return out


def names(changes: list[awsrules.Change], type_: str | None = None) -> set[str]:
    return {(c.after or c.before).name for c in changes if type_ is None or (c.after or c.before).type == type_}
