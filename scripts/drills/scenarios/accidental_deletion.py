"""accidental-deletion: someone deletes rows; restore just that table beside the live one and copy them back.

Steps: create and fingerprint the drill's own table → the newest scheduled backup holding it → delete every
10th row for real → partial restore of the table from the newest backup before the deletion into a new
schema of the LIVE database (``restore --tables T --into-schema S``: nothing existing is modified, the
service keeps running) → copy back exactly the rows that are missing → the fingerprint must equal the one
before the deletion → drop the schema. RTO = deletion → rows verified back; RPO = the age of the backup at
the deletion (rows both written after it and deleted would be lost).
"""
from __future__ import annotations

import time

import psycopg

from scripts.common import utcnow
from scripts.drills.scenarios import DrillContext
from scripts.drills.scenarios.data import (TABLE, age_at, describe, drop_schema, dsn, fingerprint, measure_rpo,
                                           put_back, restore_table, run_data_drill, scheduled_backup)

DELETE = f"delete from {TABLE} where id % 10 = 0"


def run(ctx: DrillContext) -> None:
    run_data_drill(ctx, _drill)


def _drill(ctx: DrillContext, side: str, before: tuple[int, str]) -> None:
    steps = ctx.steps
    schema = None
    with steps.step("newest scheduled backup") as s:
        manifest = scheduled_backup(ctx, side)
        ctx.backup = describe(manifest)
        s.note(manifest.id)
    with steps.step("inject: delete rows") as s:
        t_fail, at_fail = time.monotonic(), utcnow()
        with psycopg.connect(dsn(ctx, side), autocommit=True) as conn:
            deleted = conn.execute(DELETE).rowcount
        ctx.measured["rowsDeleted"] = deleted
        s.note(f"{deleted} rows deleted from {TABLE}")
    try:
        with steps.step("partial restore into a schema") as s:
            schema, restored = restore_table(ctx, side, manifest, at_fail)
            ctx.backup = describe(manifest, restored) | {"id": restored.backup_id}
            s.note(f"{TABLE} from {restored.backup_id} is now in schema {schema}")
        with steps.step("copy missing rows back") as s:
            copied = put_back(ctx, side, schema, overwrite=False)["inserted"]
            ctx.measured["rowsCopiedBack"] = copied
            s.note(f"{copied} rows copied back")
        with steps.step("verify rows are back") as s:
            after = fingerprint(dsn(ctx, side))
            ctx.measured["rtoSeconds"] = round(time.monotonic() - t_fail, 3)
            ctx.check("every deleted row is back, unchanged", after == before and copied == deleted,
                      f"{deleted} deleted, {copied} copied back, fingerprint {'matches' if after == before else 'DIFFERS'}")
            s.note(f"{after[0]} rows, fingerprint {'matches' if after == before else 'differs'}")
        measure_rpo(ctx, side, age_at(manifest, at_fail), at_fail.timestamp())
    finally:
        with steps.step("cleanup: drop the recovery schema"):
            if schema is not None:
                drop_schema(ctx, side, schema)
    ctx.notes.append(f"backup {manifest.id} stays in the vault: Object Lock keeps it until its retention ends")
