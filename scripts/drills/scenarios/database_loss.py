"""database-loss: the primary instance is lost while its region stays up; the standby is promoted (or a new instance is built from the newest backup).

Default (``--recover-with standby``): the regional-outage drill with a smaller failure. Sandbox:
only the primary cluster is SIGKILLed — its region's AWS endpoints and Route 53 keep answering,
so the cutover also changes the records through the control plane. Real stack: the primary is
fenced (scripts.drills.scenarios.regional_outage.StackOutage). A heartbeat commits through the
service name all along; RTO = failure → first commit on the promoted standby through DNS, RPO =
acknowledged writes the standby does not have. A real failback restores the service afterwards.

``--recover-with new-instance`` (the standby is unusable too, or the stack wants the vault path
measured): the newest backup in ``--from-region``'s vault is restored into a NEW instance with
the stack's settings (``restore --new-instance``), verified against its manifest. RTO = failure
→ data verified on the new instance; RPO = the backup's age at the failure. The service name is
not moved (the stack's records name the primary and the standby): the report says so, the new
instance is deleted and the primary brought back afterwards.
"""
from __future__ import annotations

import time

from scripts.common import PilotlightError, utcnow
from scripts.drills.scenarios import DrillContext
from scripts.drills.scenarios import regional_outage
from scripts.drills.scenarios.data import age_at, describe, take_backup
from scripts.failover import dns as dnscheck
from scripts.pitr import rds
from scripts.postgres import replication as dbstate
from scripts.vault import newinstance
from scripts.vault.layout import id_database, select_backup

REPLICATION_WAIT_SECONDS = 120


def run(ctx: DrillContext) -> None:
    if ctx.options.get("recover_with") == "new-instance":
        _new_instance(ctx)
    else:
        regional_outage.run_failover(ctx, regional_outage.outage_for(ctx, "database-loss"))


def _newest_backup(ctx: DrillContext, side: str):
    """The newest backup in ``side``'s vault; none there: one the drill takes (filed apart), once replicated."""
    try:
        return select_backup(ctx.contract, side, ctx.db.name, latest=True)[0]
    except PilotlightError:
        taken = take_backup(ctx, "primary")
        ctx.notes.append(f"the {side} vault held no backup of {ctx.db.name}, so the drill took {taken.id} "
                         "(filed under the drill's own prefix)")
        deadline = time.monotonic() + REPLICATION_WAIT_SECONDS
        while True:
            try:
                return select_backup(ctx.contract, side, id_database(taken.id), backup_id=taken.id)[0]
            except PilotlightError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)


def _new_instance(ctx: DrillContext) -> None:
    contract, db, steps = ctx.contract, ctx.db, ctx.steps
    side = ctx.options.get("from_region", "dr")
    with steps.step("check starting state") as s:
        primary = dbstate.state(contract, db, "primary")
        if primary.role != "primary" or dnscheck.answering_side(contract, db) != "primary":
            raise PilotlightError("the service is not in its normal state (primary serving); "
                                  "run `pilotlight failback --to primary --yes` first")
        s.note("primary serves")
    with steps.step(f"newest backup ({side} vault)") as s:
        manifest = _newest_backup(ctx, side)
        ctx.backup = describe(manifest)
        s.note(manifest.id)
    outage = regional_outage.outage_for(ctx, "database-loss")
    result = None
    try:
        with steps.step("inject failure") as s:
            t_fail, at_fail = time.monotonic(), utcnow()
            s.note(outage.inject())
        with steps.step("restore --new-instance") as s:
            result = newinstance.restore_new_instance(contract, side=side, db=db.name, backup_id=manifest.id,
                                                      filed=id_database(manifest.id), yes=True)
            ctx.measured["rtoSeconds"] = round(time.monotonic() - t_fail, 3)
            restored = result.restore or {}
            ctx.measured.update(newInstance=result.instance, instanceCreateSeconds=result.create_seconds,
                                restoreSeconds=restored.get("seconds"))
            ctx.backup = describe(manifest) | {"restoreSeconds": restored.get("seconds")}
            s.note(f"{result.instance} available after {result.create_seconds:.1f} s; backup restored")
        with steps.step("verify data") as s:
            counts = restored.get("rowCounts", {})
            ctx.check("every table's rows on the new instance equal the backup manifest's",
                      counts == manifest.row_counts, f"{sum(counts.values())} rows in {len(counts)} tables")
            s.note(f"{sum(counts.values())} rows in {len(counts)} tables match the manifest")
        ctx.measured["rpoSeconds"] = round(age_at(manifest, at_fail), 3)
        ctx.notes.append(f"the service name still names the lost primary: on a real loss point the application at "
                         f"{result.endpoint} (or promote the standby: the default drill)")
    finally:
        with steps.step("cleanup: delete the new instance, bring the primary back"):
            if result is not None:
                rds.delete_restored(contract, side, result.instance)
            outage.rollback()
            dnscheck.wait_for(contract, db, "primary", 60)
