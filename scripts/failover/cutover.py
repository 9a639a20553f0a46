"""Cutover: promote a side's database and make the service name answer it (`pilotlight cutover`).

Data plane first (AWS Well-Architected REL11/REL13). When the primary region dies, the
pre-created failover records and their health check already move the service name to the
standby — no API call needed. Cutover then promotes the standby and *verifies* what every
authoritative nameserver answers. The Route53 record change (one atomic batch swapping the
failover roles, see scripts.failover.records) makes the move permanent and is what moves traffic in a
planned switchover, but a failing control plane only makes it a warning when DNS already
answers the standby. A planned cutover (primary alive) fences the primary read-only and waits
for the standby to catch up before promoting, so nothing acknowledged is lost.

Steps, each timed: check DNS → check both databases → read records (after promotion when DNS
already answers the standby: promotion never waits on the control plane) → fence + catch up (if
the old side is alive) → promote → change records → verify DNS on every authoritative server →
record the active side. Idempotent: when the target side is already promoted and answering,
it reports "already on <side>" and changes nothing.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from scripts.postgres import replication as dbstate
from scripts.failover import dns as dnscheck
from scripts.failover import records as dnsrecords
from scripts.common import Refused
from scripts.contract import DEFAULT_OUTPUTS_FILE, Contract, Database
from scripts.failover.rds import platform_for
from scripts.steps import FAILED, SKIPPED, WARNING, Steps

DNS_TIMEOUT = 120.0
CATCH_UP_TIMEOUT = 120.0


def other(side: str) -> str:
    return "primary" if side == "dr" else "dr"


def pulumi_command(contract: Contract, side: str) -> str:
    return f"pulumi config set pilotlight:active {side} --stack {contract.stack}"


def record_active_side(contract: Contract, side: str, outputs: Path | None) -> str:
    """In the sandbox, write the new active side into its outputs file (atomically)."""
    if contract.sandbox is None:
        return f"run: {pulumi_command(contract, side)}"
    path = Path(outputs or DEFAULT_OUTPUTS_FILE)
    doc = json.loads(path.read_text())
    doc["active"] = side
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".outputs-")
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=2)
    os.chmod(tmp, path.stat().st_mode & 0o777)  # readers keep the access they had
    os.replace(tmp, path)
    return f"sandbox outputs record active={side}; on a real stack: {pulumi_command(contract, side)}"


def _control_plane_error(exc: Exception) -> str:
    reason = re.sub(r'"https?://[^"]*"', "the Route53 endpoint", (str(exc).splitlines() or [""])[0])[:160]
    return f"Route53 control plane unavailable ({type(exc).__name__}: {reason})"


@dataclass
class _Seen:
    """What the checks found before anything is changed."""

    dns_side: str | None
    target: dbstate.SideState
    source: dbstate.SideState
    rrsets: list | None = None


def perform_cutover(
    contract: Contract,
    db: Database,
    to: str,
    steps: Steps,
    *,
    dry_run: bool = False,
    force: bool = False,
    outputs: Path | None = None,
    dns_timeout: float = DNS_TIMEOUT,
) -> dict[str, Any]:
    """Move the service to ``to``; every action is a step in ``steps``. Raises on failure."""
    result: dict[str, Any] = {"to": to, "database": db.name, "dryRun": dry_run, "already": False,
                              "changed": False, "warnings": []}
    seen = _inspect(contract, db, to, steps, result, force=force, dry_run=dry_run)
    records_side = dnsrecords.records_side(db, seen.rrsets) if seen.rrsets else None
    if seen.target.role == "primary" and seen.dns_side == to and records_side in (to, None):
        result["already"] = True
        if records_side is None:
            result["warnings"].append("record roles not confirmed: the Route53 control plane is unreachable")
        return result
    changes = dnsrecords.plan_switch(db, seen.rrsets, to) if seen.rrsets else None
    result["changeBatch"] = dnsrecords.change_batch(db, changes, to) if changes else None
    # Fence the old side only when the target can take over; a forced cutover to an unreachable
    # target just moves DNS (the operator knows it is coming up).
    live_source = seen.source.role == "primary" and seen.target.reachable
    if dry_run:
        result["plan"] = [
            f"fence the {other(to)} database read-only and wait for {to} to catch up" if live_source
            else f"{other(to)} is not a live primary: no fence (data-plane failover)",
            f"promote the {to} database" if seen.target.in_recovery else f"{to} is already a primary",
            _records_plan(seen.rrsets, changes),
            f"verify every authoritative nameserver answers {to} "
            f"({', '.join(map(str, dnscheck.authoritative_servers(contract)))})",
            f"record the active side: {pulumi_command(contract, to)}",
        ]
        return result
    _switch_database(contract, db, to, steps, seen, live_source)
    result["changed"] = True
    _switch_dns(contract, db, to, steps, seen, changes, result, dns_timeout)
    with steps.step("record active side") as s:
        s.note(record_active_side(contract, to, outputs))
    result["pulumiConfig"] = pulumi_command(contract, to)
    return result


def _inspect(contract: Contract, db: Database, to: str, steps: Steps, result: dict[str, Any], *,
             force: bool, dry_run: bool) -> _Seen:
    """DNS answers, both databases, and (unless that would delay an emergency promotion) the records."""
    with steps.step("check dns") as s:
        result["dnsBefore"] = dnscheck.answers(contract, db)
        s.note(_answers_line(db, result["dnsBefore"]))
    answered = {dnscheck.side_of(db, t) for t in result["dnsBefore"].values()}
    dns_side = answered.pop() if len(answered) == 1 else None
    with steps.step(f"check {to} database") as s:
        target = dbstate.state(contract, db, to)
        s.note(f"{target.role}" + (f", last transaction replayed {target.replay_lag_seconds:.1f} s ago"
                                   if target.replay_lag_seconds is not None else ""))
        if not target.reachable:
            if not force:
                s.note(f"not healthy: {target.error}", FAILED)
                raise Refused(f"the {to} database is not healthy ({target.error}); fix it or re-run with --force")
            s.note(f"not healthy, continuing because of --force: {target.error}", WARNING)
    with steps.step(f"check {other(to)} database") as s:
        source = dbstate.state(contract, db, other(to))
        s.note(source.role if source.reachable else f"unreachable: {source.error}")
    seen = _Seen(dns_side, target, source)
    emergency = dns_side == to and target.role == "replica"
    if not emergency or dry_run:  # in an emergency, promotion never waits on the control plane
        with steps.step("read dns records") as s:
            try:
                seen.rrsets = dnsrecords.fetch(contract, db)
                s.note(f"records send traffic to {dnsrecords.records_side(db, seen.rrsets)}")
            except (BotoCoreError, ClientError) as exc:
                s.note(_control_plane_error(exc), WARNING)
    return seen


def _switch_database(contract: Contract, db: Database, to: str, steps: Steps, seen: _Seen, live_source: bool) -> None:
    """Fence the old side (if alive), let the target catch up, promote it; a failure lifts the fence."""
    frm, target = other(to), seen.target
    fenced = False
    try:
        with steps.step(f"fence {frm}") as s:
            if live_source:
                s.note(f"read-only, {dbstate.fence(contract, db, frm)} session(s) ended")
                fenced = True
            else:
                s.note(f"{seen.source.role}: nothing to fence (data-plane failover)", SKIPPED)
        with steps.step(f"wait for {to} to catch up") as s:
            if fenced and target.in_recovery:
                dbstate.wait_caught_up(contract, db, to, frm, CATCH_UP_TIMEOUT)
            elif not fenced:
                s.note("the old primary is gone: what it had not streamed is the RPO", SKIPPED)
            else:
                s.note(f"{to} is already a primary", SKIPPED)
        with steps.step(f"promote {to}") as s:
            if not target.reachable:
                s.note("unreachable: not promoted (--force)", WARNING)
            elif target.in_recovery:
                platform_for(contract).promote(db, to)
                dbstate.unfence(contract, db, to)
                s.note("promoted, accepting writes")
            else:
                dbstate.unfence(contract, db, to)
                s.note("already a primary", SKIPPED)
    except Exception:
        if fenced:
            dbstate.unfence(contract, db, frm)  # leave the previous good state intact
        raise


def _switch_dns(contract: Contract, db: Database, to: str, steps: Steps, seen: _Seen, changes: list | None,
                result: dict[str, Any], dns_timeout: float) -> None:
    """The record change (best effort: the control plane may be down), then verification (must pass)."""
    with steps.step("change dns records") as s:
        try:
            if seen.rrsets is None:
                seen.rrsets = dnsrecords.fetch(contract, db)
                changes = dnsrecords.plan_switch(db, seen.rrsets, to)
                result["changeBatch"] = dnsrecords.change_batch(db, changes, to) if changes else None
            if not changes:
                s.note(f"records already send traffic to {to}", SKIPPED)
            else:
                s.note(f"{dnsrecords.apply(contract, result['changeBatch'])} INSYNC")
        except (BotoCoreError, ClientError) as exc:
            msg = _control_plane_error(exc) + "; relying on the failover records and health check"
            s.note(msg, WARNING)
            result["warnings"].append(msg)
    with steps.step("verify dns") as s:
        result["dnsAfter"] = dnscheck.wait_for(contract, db, to, dns_timeout)
        s.note(_answers_line(db, result["dnsAfter"]))


def _records_plan(rrsets: list | None, changes: list | None) -> str:
    if rrsets is None:
        return "records unreadable now (control plane down): retried after promotion"
    return "apply the change batch below and wait for INSYNC" if changes else "records need no change"


def _answers_line(db: Database, seen: dict[str, str | None]) -> str:
    return ", ".join(f"{server} -> {dnscheck.side_of(db, t) or t}" for server, t in seen.items())
