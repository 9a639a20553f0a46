"""data-corruption: a bad deploy rewrites a table; restore it from the newest good backup and write it back
(or, with ``--recover-with pitr``, restore to just before the damage, see :func:`_pitr_drill`).

Steps: create and fingerprint the drill's own table → the newest scheduled backup holding it (the
"newest good" one; the drill takes one, filed under ``<db>--drill/``, only when the vault has none)
→ corrupt the table for real (an UPDATE that scrambles amounts and tokens) → confirm the damage is
visible → restore the table from the newest backup taken before the corruption into a new schema of
the live database, verified (checksums, row counts) → replace the rows that differ, in one
transaction → the fingerprint must equal the one before the damage. RTO = corruption → verified data
back; RPO = the age of the restored backup at the corruption. Cleanup drops the recovery schema. A
backup the drill took stays in the vault: Object Lock forbids deleting it before its retention ends.
"""
from __future__ import annotations

import time
from datetime import datetime

import psycopg
from psycopg import sql

from scripts.common import PilotlightError, iso, utcnow
from scripts.pitr import engine as pitr_engine
from scripts.pitr import rds as pitr_rds
from scripts.drills.scenarios import DrillContext
from scripts.drills.scenarios.data import (TABLE, age_at, describe, drop_schema, dsn, fingerprint, measure_rpo,
                                           put_back, restore_table, run_data_drill, scheduled_backup)

WINDOW_WAIT_SECONDS = 900  # RDS: transaction logs every 5 min, plus the cross-region copy
CORRUPT = f"update {TABLE} set amount = -amount, token = 'corrupted' where id % 3 = 0"


def run(ctx: DrillContext) -> None:
    run_data_drill(ctx, _pitr_drill if ctx.options.get("recover_with") == "pitr" else _drill)


def _pitr_drill(ctx: DrillContext, side: str, before: tuple[int, str]) -> None:
    """The PITR variant: restore the automated backups to just before the damage into a new instance,
    copy the table back over the corrupted rows, prove the data equals the pre-damage state.

    RPO is the real distance between the damage's commit and the last commit the restored instance
    has (both server timestamps); acknowledged heartbeat writes the live database lost are counted.
    """
    steps, from_side = ctx.steps, ctx.options.get("from_region", "dr")
    restored = None
    with steps.step("inject: corrupt table") as s:
        t_fail = time.monotonic()
        with psycopg.connect(dsn(ctx, side), autocommit=True) as conn:
            restore_to = conn.execute("select clock_timestamp()").fetchone()[0]  # before the damage commits
            changed = conn.execute(CORRUPT).rowcount
            damaged_at = conn.execute("select clock_timestamp()").fetchone()[0]  # at or after its commit
        ctx.measured["damageAt"] = iso(damaged_at)
        s.note(f"{changed} rows of {TABLE} scrambled; restore point {iso(restore_to)}")
    try:
        with steps.step("detect: data differs") as s:
            if fingerprint(dsn(ctx, side)) == before:
                raise PilotlightError("the corruption is not visible in the table fingerprint")
            s.note("fingerprint changed")
        with steps.step(f"wait for the restorable window ({from_side})") as s:
            found = _wait_window(ctx, from_side, damaged_at)
            s.note(f"{found.describe()}")
        with steps.step("restore to just before the damage; copy the table back") as s:
            restored = pitr_engine.restore_to_time(ctx.contract, restore_to, side=from_side, db=ctx.db.name,
                                                   copy_back_tables=[TABLE], overwrite=True,
                                                   target_dsn=dsn(ctx, side), yes=True)
            ctx.backup = {"id": restored.instance, "tier": "point-in-time", "takenAt": restored.to_time,
                          "restoreSeconds": restored.restore_seconds}
            s.note(f"{restored.instance} restored in {restored.restore_seconds:.1f} s; "
                   f"{sum(restored.copy_back['inserted'].values())} rows written back")
        with steps.step("verify data") as s:
            after = fingerprint(dsn(ctx, side))
            ctx.measured["rtoSeconds"] = round(time.monotonic() - t_fail, 3)
            ctx.check("table equals its state before the corruption", after == before,
                      f"{after[0]} rows, fingerprint {'matches' if after == before else 'DIFFERS'}")
            last = datetime.fromisoformat(restored.last_commit.replace("Z", "+00:00")) if restored.last_commit else None
            ctx.check("the restored instance stops before the damage", last is not None and last <= restore_to,
                      f"last commit {restored.last_commit}, restore point {iso(restore_to)}")
            s.note(f"{after[0]} rows, fingerprint {'matches' if after == before else 'differs'}")
        measure_rpo(ctx, side, (damaged_at - last).total_seconds() if last else float("inf"), damaged_at.timestamp())
    finally:
        with steps.step("cleanup: restored instance and staged schema"):
            if restored is not None:
                pitr_rds.delete_restored(ctx.contract, from_side, restored.instance)
                with psycopg.connect(dsn(ctx, side), autocommit=True) as conn:
                    conn.execute(sql.SQL("drop schema if exists {} cascade").format(
                        sql.Identifier(restored.copy_back["schema"])))


def _wait_window(ctx: DrillContext, side: str, moment: datetime, timeout: float = WINDOW_WAIT_SECONDS):
    """Until the region's latest restorable time passes ``moment`` (on AWS: minutes; the sandbox: seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        found = pitr_rds.window(ctx.contract, ctx.db, side)
        if found.latest >= moment or time.monotonic() > deadline:
            if found.latest < moment:
                raise PilotlightError(f"the restorable window ({found.describe()}) did not reach {iso(moment)} "
                                      f"within {timeout:.0f} s")
            return found
        time.sleep(1)


def _drill(ctx: DrillContext, side: str, before: tuple[int, str]) -> None:
    steps = ctx.steps
    restored = schema = None
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
        with steps.step("restore the table from the newest good backup") as s:
            schema, restored = restore_table(ctx, side, manifest, at_fail)
            ctx.backup = describe(manifest, restored) | {"id": restored.backup_id}
            s.note(f"{TABLE} from {restored.backup_id} in schema {schema}, {restored.seconds:.2f} s")
        with steps.step("write the good rows back") as s:
            done = put_back(ctx, side, schema, overwrite=True)
            ctx.measured["rowsReplaced"] = done["replaced"]
            s.note(f"{done['replaced']} corrupted rows replaced, {done['inserted']} missing rows inserted")
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
        with steps.step("cleanup: drop the recovery schema"):
            if schema is not None:
                drop_schema(ctx, side, schema)
    ctx.notes.append(f"backup {manifest.id} stays in the vault: Object Lock keeps it until its retention ends")
