"""Failover rehearsal under mocks: what `pulumi up --refresh` would do after `pilotlight cutover --to dr`.

The cutover changes AWS first (promotes each standby with the contract's backup retention, sets
each switch to its DR threshold); ``--refresh`` reads that into the state; then the program with
``active: dr`` is diffed against it. :func:`after_cutover` models the refreshed state,
:func:`rehearse` runs the transition rules on it and checks the invariants a failover must keep:
no database created, replaced or deleted, no failover record changing role or value.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

from scripts.preview import awsrules

INSTANCE = "aws:rds/instance:Instance"
RECORD = "aws:route53/record:Record"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"


def after_cutover(resources: Sequence[awsrules.Resource], outputs: Mapping[str, Any]) -> list[awsrules.Resource]:
    """``resources`` (the ``active: primary`` evaluation) as a refresh reads them after the cutover."""
    retention = {db["standby"]["identifier"]: (db.get("promotion") or {}).get("backupRetentionDays")
                 for db in outputs.get("databases", [])}
    out = []
    for r in resources:
        inputs = dict(r.inputs)
        if r.type == INSTANCE and inputs.get("identifier") in retention and inputs.get("replicateSourceDb"):
            inputs.pop("replicateSourceDb")
            if retention[inputs["identifier"]]:
                inputs["backupRetentionPeriod"] = retention[inputs["identifier"]]
        elif r.type == HEALTH_CHECK and inputs.get("type") == "CALCULATED":
            # Every CALCULATED check is a switch; its DR threshold is one more than its children.
            inputs["childHealthThreshold"] = len(inputs.get("childHealthchecks") or []) + 1
        out.append(replace(r, inputs=inputs))
    return out


@dataclass(frozen=True)
class Rehearsal:
    problems: tuple[str, ...]
    counts: Mapping[str, int]
    """Changes by operation: create, import, delete, replace, update."""


def rehearse(before: Sequence[awsrules.Resource], after: Sequence[awsrules.Resource]) -> Rehearsal:
    """Transition rules plus the failover invariants, from the refreshed ``before`` to ``after``."""
    problems = list(awsrules.transition_problems(before, after))
    changes = awsrules.changes(before, after)
    for c in changes:
        r = c.after or c.before
        if r.type == INSTANCE and c.op in ("create", "replace", "delete"):
            problems.append(f"{r.urn}: a failover would {c.op} this database")
        if r.type == RECORD and (c.op != "update" or c.keys & {"failoverRoutingPolicies", "records"}):
            problems.append(f"{r.urn}: a failover would change this record ({c.op} {sorted(c.keys)})")
    counts: dict[str, int] = {}
    for c in changes:
        counts[c.op] = counts.get(c.op, 0) + 1
    return Rehearsal(tuple(problems), counts)
