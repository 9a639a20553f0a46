"""Failback: move the service back once the primary region is usable again (`pilotlight failback`).

The old primary's data is stale (and may have diverged: it acknowledged writes the standby
never received), so it is never reused as is. The steps, each timed:

1. pin DNS to the DR side: if the failover happened through health checks only (the control
   plane was down), the records still name the old primary PRIMARY — and the moment it comes
   back healthy, even as a read-only replica, DNS would send traffic to it. So the records are
   swapped to name DR first (this needs the Route53 control plane; failback refuses without it);
2. re-seed the primary side as a streaming replica of DR (sandbox: ``pg_basebackup`` from the
   DR cluster; AWS: a new cross-region read replica in the primary region, see docs/drills.md);
3. wait until it has replayed everything DR has written;
4. switch over: fence DR read-only, wait, promote the primary side, re-point DNS, verify
   (the same code as a planned ``cutover``);
5. re-seed DR as a replica of the primary again, so the topology is where it began.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from scripts.postgres import replication as dbstate
from scripts.failover import dns as dnscheck
from scripts.failover import records as dnsrecords
from scripts.common import Exit, PilotlightError, Refused
from scripts.contract import Contract, Database
from scripts.failover.cutover import CATCH_UP_TIMEOUT, DNS_TIMEOUT, perform_cutover, pulumi_command
from scripts.failover.rds import platform_for
from scripts.steps import SKIPPED, Steps


def perform_failback(contract: Contract, db: Database, steps: Steps, *, dry_run: bool = False,
                     outputs: Path | None = None, dns_timeout: float = DNS_TIMEOUT) -> dict[str, Any]:
    """Return the service to the primary side and DR to a replica of it. Raises on failure."""
    result: dict[str, Any] = {"to": "primary", "database": db.name, "dryRun": dry_run, "already": False}
    with steps.step("check databases") as s:
        primary, dr = dbstate.state(contract, db, "primary"), dbstate.state(contract, db, "dr")
        serving = dnscheck.answering_side(contract, db)
        s.note(f"primary {primary.role}, dr {dr.role}, dns -> {serving}")
    if primary.reachable and not primary.in_recovery and dr.reachable and dr.in_recovery and serving == "primary":
        result["already"] = True
        return result
    if not (dr.reachable and not dr.in_recovery):
        raise Refused(f"nothing to fail back from: the dr database is {dr.role}, not a serving primary")
    if dry_run:
        result["plan"] = [
            "swap the failover records so DR is PRIMARY (if they still name the old primary)",
            "re-seed the primary side as a streaming replica of DR",
            "wait until it has caught up",
            "fence DR, promote the primary side, re-point DNS, verify every nameserver",
            "re-seed DR as a streaming replica of the primary",
            f"record the active side: {pulumi_command(contract, 'primary')}",
        ]
        return result
    platform = platform_for(contract)
    with steps.step("pin dns to dr") as s:
        try:
            rrsets = dnsrecords.fetch(contract, db)
            changes = dnsrecords.plan_switch(db, rrsets, "dr")
            if changes:
                s.note(f"{dnsrecords.apply(contract, dnsrecords.change_batch(db, changes, 'dr'))} INSYNC")
            else:
                s.note("records already name dr", SKIPPED)
        except (BotoCoreError, ClientError) as exc:
            raise PilotlightError(
                f"the Route53 control plane is needed to fail back safely ({type(exc).__name__}); retry when it is up",
                Exit.NETWORK) from None
    with steps.step("re-seed primary from dr") as s:
        platform.reseed(db, "primary", "dr")
        s.note("streaming replica of dr")
    with steps.step("wait for primary to catch up") as s:
        s.note(f"caught up after {dbstate.wait_caught_up(contract, db, 'primary', 'dr', CATCH_UP_TIMEOUT):.2f} s")
    result["switchover"] = perform_cutover(contract, db, "primary", steps.child("switch back: "),
                                           outputs=outputs, dns_timeout=dns_timeout)
    with steps.step("re-seed dr from primary") as s:
        platform.reseed(db, "dr", "primary")
        s.note("streaming replica of primary")
    with steps.step("wait for dr to catch up") as s:
        s.note(f"caught up after {dbstate.wait_caught_up(contract, db, 'dr', 'primary', CATCH_UP_TIMEOUT):.2f} s")
    result["pulumiConfig"] = pulumi_command(contract, "primary")
    return result
