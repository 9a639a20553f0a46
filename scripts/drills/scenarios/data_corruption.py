"""data-corruption: a bad deploy rewrites a table; restore the newest good backup and swap it in.

Steps: fingerprint the table → take a backup (the "newest good" one) → corrupt the table for
real (an UPDATE that scrambles amounts and tokens) → confirm the damage is visible → restore the
newest backup taken before the corruption into a new database, verified (checksums, row counts)
and swapped in atomically by ``restore`` → the fingerprint must equal the one before the damage.
RTO = corruption → verified data back; RPO = the age of the restored backup at the corruption.
Cleanup drops the damaged database the swap kept for rollback. The drill's backup stays in the
vault: Object Lock forbids deleting it before its retention ends (that is the point of the vault).
"""
from __future__ import annotations

import time

import psycopg

from scripts.drills import heartbeat
from scripts.common import PilotlightError, utcnow
from scripts.vault.restore import perform_restore
from scripts.drills.scenarios import DrillContext
from scripts.drills.scenarios.data import (TABLE, age_at, describe, drop_kept_database, dsn, fingerprint,
                                           measure_rpo, run_data_drill, scheduled_backup)

CORRUPT = f"update {TABLE} set amount = -amount, token = 'corrupted' where id % 3 = 0"


def run(ctx: DrillContext) -> None:
    run_data_drill(ctx, _drill)


def _drill(ctx: DrillContext, side: str, before: tuple[int, str]) -> None:
    steps = ctx.steps
    restored = None
    with steps.step("newest scheduled backup") as s:
        manifest = scheduled_backup(ctx, side)
        ctx.backup = describe(manifest)
        s.note(f"{manifest.id} ({manifest.stored_bytes} bytes)")
    with steps.step("inject: corrupt table") as s:
        t_fail, at_fail = time.monotonic(), utcnow()
        with psycopg.connect(dsn(ctx, side), autocommit=True) as conn:
            changed = conn.execute(CORRUPT).rowcount
        s.note(f"{changed} rows of {TABLE} scrambled")
    try:
        with steps.step("detect: data differs") as s:
            if fingerprint(dsn(ctx, side)) == before:
                raise PilotlightError("the corruption is not visible in the table fingerprint")
            s.note("fingerprint changed")
        with steps.step("restore newest good backup and swap") as s:
            restored = perform_restore(ctx.contract, dsn(ctx, side), before=at_fail, terminate_sessions=True,
                                       db=ctx.db.name)
            ctx.backup = describe(manifest, restored) | {"id": restored.backup_id}
            heartbeat.create_table(ctx.contract, ctx.db, side)  # the backup may predate the heartbeat table
            s.note(f"backup {restored.backup_id} restored and swapped in {restored.seconds:.2f} s")
        with steps.step("verify data") as s:
            after = fingerprint(dsn(ctx, side))
            ctx.measured["rtoSeconds"] = round(time.monotonic() - t_fail, 3)
            ctx.check("table equals its state before the corruption", after == before,
                      f"{after[0]} rows, fingerprint {'matches' if after == before else 'DIFFERS'}")
            ctx.check("the backup restored predates the corruption", restored.backup_id == manifest.id,
                      restored.backup_id)
            s.note(f"{after[0]} rows, fingerprint {'matches' if after == before else 'differs'}")
        measure_rpo(ctx, side, age_at(manifest, at_fail), at_fail.timestamp())
    finally:
        with steps.step("cleanup: drop the damaged database kept for rollback"):
            drop_kept_database(ctx, side, restored)
    ctx.notes.append(f"backup {manifest.id} stays in the vault: Object Lock keeps it until its retention ends")
