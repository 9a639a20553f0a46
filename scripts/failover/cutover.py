"""`pilotlight cutover --to dr`: promote the DR database and make the service name answer it.

Data plane first (AWS Well-Architected REL11/REL13). When the primary region dies, the signal
health check fails and the switch (a calculated check on the PRIMARY record) follows it, so the
service name already answers the standby — no API call needed. Cutover then promotes the
standby through RDS (``PromoteReadReplica``), records the active side, sets the switch with the
one change the stack declares for ``active: dr`` (``UpdateHealthCheck`` of its
``HealthThreshold``; the records never change) and *verifies* what every authoritative
nameserver answers. A failing control plane only makes the switch a warning when DNS already
answers the standby. A planned cutover (primary alive) fences the primary first — its database
takes no session at all, see scripts.postgres.replication — waits for the standby to catch up, and after the
promotion checks that no transaction began on the old side since the fence.

Steps, each timed: check DNS → check both databases (a paused WAL replay is named) → read the
switch (after promotion when DNS already answers the standby) → fence + catch up (if the old side
is alive) → promote → check the fence held → record the active side → set the switch → verify
DNS. It converges: a rerun after an interruption finishes what is left; when everything already
agrees it reports "already on <side>" and changes nothing.
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from scripts.application import hooks as app_hooks
from scripts.application import smoke
from scripts.postgres import replication as dbstate
from scripts.postgres.dsn import side_dsn
from scripts.failover import dns as dnscheck
from scripts.failover import records as dnsrecords
from scripts.common import Exit, PilotlightError, Refused
from scripts.contract import Contract, Database
from scripts.failover.divergence import record_promotion
from scripts.failover.rds import platform_for
from scripts.steps import FAILED, SKIPPED, WARNING, Steps

DNS_TIMEOUT = 120.0
CATCH_UP_TIMEOUT = 120.0


def other(side: str) -> str:
    return "primary" if side == "dr" else "dr"


def pulumi_command(contract: Contract, side: str) -> str:
    return (f"pulumi config set pilotlight:active {side} --stack {contract.stack} && "
            f"pulumi up --refresh --stack {contract.stack}")


def record_active_side(contract: Contract, side: str, outputs: Path | None) -> str:
    """Write the new active side into the outputs file the contract came from (atomically).

    Backups are taken from the recorded active side, so this is what makes the next ``backup``
    dump the side that serves. Read from ``pulumi stack output``, the stack itself is the record:
    the operator runs the printed ``pulumi config set``.
    """
    path = Path(outputs) if outputs else contract.source
    if path is None:
        return f"run: {pulumi_command(contract, side)}"
    doc = json.loads(path.read_text())
    doc["active"] = side
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".outputs-")
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=2)
    os.chmod(tmp, path.stat().st_mode & 0o777)  # readers keep the access they had
    os.replace(tmp, path)
    return f"{path} records active={side}; for the stack: {pulumi_command(contract, side)}"


def _control_plane_error(exc: Exception) -> str:
    reason = re.sub(r'"https?://[^"]*"', "the Route53 endpoint", (str(exc).splitlines() or [""])[0])[:160]
    return f"Route53 control plane unavailable ({type(exc).__name__}: {reason})"


@dataclass
class _Seen:
    """What the checks found before anything is changed."""

    dns_side: str | None
    target: dbstate.SideState
    source: dbstate.SideState
    switch_side: str | None = None
    switch_read: bool = False


class CutoverIncomplete(PilotlightError):
    """A step failed after the point of no return: says what is done and that a rerun finishes it."""


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
    checks: bool = True,
) -> dict[str, Any]:
    """Move the service to ``to``; every action is a step in ``steps``. Raises on failure.

    Converges: a rerun after an interruption at any step finishes what is left (fence, promotion,
    unfence, switch, record) and changes nothing that is already done. The database's application
    (contract ``application``) is stopped before the fence and started after DNS is verified — and
    again when the cutover fails; when the old side is not a live primary its application is
    likely gone with it, so a failed stop is then a warning. Afterwards (unless ``checks`` is off:
    a drill runs them itself) the smoke checks run on ``to``'s database: ``result["smokeChecks"]``.
    """
    result: dict[str, Any] = {"to": to, "database": db.name, "dryRun": dry_run, "already": False,
                              "changed": False, "warnings": [], "done": []}
    seen = _inspect(contract, db, to, steps, result, force=force)
    if (seen.target.role == "primary" and not seen.target.fenced and seen.dns_side == to
            and seen.switch_side in (to, None) and contract.active == to
            and not (seen.source.role == "primary" and not seen.source.fenced)):
        result["already"] = True
        if seen.switch_side is None:
            result["warnings"].append("switch not confirmed: the Route53 control plane is unreachable")
        return result
    # Fence the old side only when the target can take over; a forced cutover to an unreachable
    # target just moves DNS (the operator knows it is coming up).
    live_source = seen.source.role == "primary" and seen.target.reachable
    want = db.dns.switch.threshold[to] if db.dns.switch else None
    hooks = app_hooks.for_database(contract, db, "cutover", steps)
    if dry_run:
        around = hooks.plan() if hooks is not None else ["", ""]
        result["plan"] = [p for p in [
            around[0],
            f"fence the {other(to)} database (no session, no new connection) and wait for {to} to catch up"
            if live_source else f"{other(to)} is not a live primary: no fence (data-plane failover)",
            f"promote the {to} database (RDS PromoteReadReplica)" if seen.target.in_recovery
            else f"{to} is already a primary",
            f"record the active side: {pulumi_command(contract, to)}",
            f"UpdateHealthCheck {db.dns.switch.health_check_id if db.dns.switch else '(no switch)'} "
            f"HealthThreshold={want}" if seen.switch_side != to else f"the switch already sends traffic to {to}",
            f"verify every authoritative nameserver answers {to} "
            f"({', '.join(map(str, dnscheck.authoritative_servers(contract)))})",
            around[1], *(smoke.plan(db) if checks else []),
        ] if p]
        return result
    with app_hooks.stopped(hooks, f", the service stays on {other(to)}", f"cutover to {to} complete",
                           must_stop=live_source):
        _switch_database(contract, db, to, steps, seen, live_source, result)
        result["changed"] = True
        with steps.step("record active side") as s:
            s.note(record_active_side(contract, to, outputs))
            result["done"].append(f"active side recorded: {to}")
        try:
            _switch_dns(contract, db, to, steps, seen, result, dns_timeout)
        except PilotlightError as exc:
            raise CutoverIncomplete(f"{exc}; done: {', '.join(result['done'])}; re-run the cutover to finish "
                                    "(it converges)", exc.code) from None
    result["pulumiConfig"] = pulumi_command(contract, to)
    result["application"] = hooks.timings() if hooks is not None else []
    if checks:
        result["smokeChecks"] = smoke.run_checks(db, side_dsn(contract, to, db))
    return result


def _inspect(contract: Contract, db: Database, to: str, steps: Steps, result: dict[str, Any], *,
             force: bool) -> _Seen:
    """DNS answers, both databases, and (best effort: the control plane may be down) the switch."""
    with steps.step("check dns") as s:
        result["dnsBefore"] = dnscheck.answers(contract, db)
        s.note(_answers_line(db, result["dnsBefore"]))
    answered = {dnscheck.side_of(db, t) for t in result["dnsBefore"].values()}
    dns_side = answered.pop() if len(answered) == 1 else None
    with steps.step(f"check {to} database") as s:
        target = dbstate.state(contract, db, to)
        s.note(f"{target.role}" + (f", last transaction replayed {target.replay_lag_seconds:.1f} s ago"
                                   if target.replay_lag_seconds is not None else "")
               + (", WAL replay PAUSED" if target.replay_paused else "") + (", fenced" if target.fenced else ""))
        if target.replay_paused and not force:
            s.note("WAL replay is paused", FAILED)
            raise dbstate.ReplayPaused(to)
        if not target.reachable:
            if not force:
                s.note(f"not healthy: {target.error}", FAILED)
                raise Refused(f"the side {to} database is not healthy ({target.error}); fix it or re-run with --force")
            s.note(f"not healthy, continuing because of --force: {target.error}", WARNING)
    with steps.step(f"check {other(to)} database") as s:
        source = dbstate.state(contract, db, other(to))
        s.note((source.role + (", fenced" if source.fenced else "")) if source.reachable
               else f"unreachable: {source.error}")
    seen = _Seen(dns_side, target, source)
    if not (dns_side == to and target.role == "replica"):  # in an emergency, promotion never waits on Route 53
        with steps.step("read switch") as s:
            try:
                seen.switch_side, seen.switch_read = dnsrecords.switch_side(contract, db), True
                s.note(f"the switch sends traffic to {seen.switch_side}")
            except (BotoCoreError, ClientError) as exc:
                s.note(_control_plane_error(exc), WARNING)
    return seen


def _switch_database(contract: Contract, db: Database, to: str, steps: Steps, seen: _Seen, live_source: bool,
                     result: dict[str, Any]) -> None:
    """Fence the old side (if alive), let the target catch up, promote it, lift the replicated fence.

    A failure (or Ctrl-C) before the promotion is requested lifts the fence again; after it, never:
    the old side must not take writes once the new one may.
    """
    frm, target = other(to), seen.target
    fenced = promoting = False
    try:
        with steps.step(f"fence {frm}") as s:
            if live_source:
                ended = dbstate.fence(contract, db, frm)
                fenced = True
                result["fenceCommits"] = dbstate.commits(contract, db, frm)
                s.note(f"{db.db_name} takes no session: {ended} session(s) ended")
                result["done"].append(f"{frm} fenced")
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
            else:
                if target.in_recovery:
                    result["promotedFromXid"] = dbstate.xid_horizon(contract, db, to)
                    promoting = True
                    platform_for(contract).promote(
                        db, to, db.promotion.backup_retention_days if db.promotion else None)
                    record_promotion(contract, db, to, result["promotedFromXid"])
                    s.note("promoted (RDS PromoteReadReplica), accepting writes")
                else:
                    s.note("already a primary", SKIPPED)
                dbstate.unfence(contract, db, to)
                result["done"].append(f"{to} promoted")
        if fenced:
            with steps.step(f"check the fence on {frm} held") as s:
                late = dbstate.commits(contract, db, frm) - result["fenceCommits"]
                result["fenceHeld"] = late == 0
                if late:
                    s.note(f"FENCE FAILED: {late} transaction(s) committed in {db.db_name} on {frm} after the "
                           "fence; they are not on the new primary", FAILED)
                    raise PilotlightError(f"the fence on {frm} did not hold: {late} transaction(s) committed after "
                                          f"it; {to} is promoted, {frm} stays fenced", Exit.FAILED)
                s.note(f"no transaction committed in {db.db_name} on {frm} after the fence")
    except BaseException:
        if fenced and not promoting:
            dbstate.unfence(contract, db, frm)  # leave the previous good state intact
        raise


def _switch_dns(contract: Contract, db: Database, to: str, steps: Steps, seen: _Seen,
                result: dict[str, Any], dns_timeout: float) -> None:
    """The switch (best effort when DNS already answers ``to``: the control plane may be down), then verify."""
    with steps.step("set the switch") as s:
        try:
            if seen.switch_read and seen.switch_side == to:
                s.note(f"already sends traffic to {to}", SKIPPED)
            else:
                threshold = dnsrecords.set_switch(contract, db, to)
                s.note(f"UpdateHealthCheck {db.dns.switch.health_check_id} HealthThreshold={threshold}")
            result["done"].append(f"switch set to {to}")
        except (BotoCoreError, ClientError) as exc:
            msg = _control_plane_error(exc) + "; relying on the health checks until a rerun sets the switch"
            s.note(msg, WARNING)
            result["warnings"].append(msg)
    with steps.step("verify dns") as s:
        result["dnsAfter"] = dnscheck.wait_for(contract, db, to, dns_timeout)
        s.note(_answers_line(db, result["dnsAfter"]))


def _answers_line(db: Database, seen: dict[str, str | None]) -> str:
    return ", ".join(f"{server} -> {dnscheck.side_of(db, t) or t}" for server, t in seen.items())
