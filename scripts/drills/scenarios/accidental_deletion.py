"""accidental-deletion: someone deletes rows; restore just that table beside the live one and copy them back.

Steps: fingerprint the table → the newest scheduled backup → delete every 10th row for real → partial
restore of the table from the newest backup before the deletion into a new schema of the LIVE
database (``restore --tables T --into-schema S``: nothing existing is modified, the service
keeps running) → copy back exactly the rows that are missing → the fingerprint must equal the
one before the deletion → drop the schema. RTO = deletion → rows verified back; RPO = the age
of the backup at the deletion (rows both written after it and deleted would be lost).
"""
from __future__ import annotations

import time

import psycopg
from psycopg import sql

from scripts.common import utcnow
from scripts.vault.restore import perform_restore
from scripts.drills.scenarios import DrillContext
from scripts.drills.scenarios.data import (TABLE, age_at, describe, dsn, filed_under, fingerprint, measure_rpo,
                                           run_data_drill, scheduled_backup)

DELETE = f"delete from {TABLE} where id % 10 = 0"


def run(ctx: DrillContext) -> None:
    run_data_drill(ctx, _drill)


def _drill(ctx: DrillContext, side: str, before: tuple[int, str]) -> None:
    steps = ctx.steps
    schema = f"pilotlight_recovered_{int(time.time())}"
    schema_id, table_name = sql.Identifier(schema), TABLE.split(".", 1)[1]
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
            restored = perform_restore(ctx.contract, dsn(ctx, side), before=at_fail, tables=[TABLE],
                                       into_schema=schema, db=filed_under(manifest))
            ctx.backup = describe(manifest, restored) | {"id": restored.backup_id}
            s.note(f"{TABLE} from {restored.backup_id} is now {schema}.{table_name}")
        with steps.step("copy missing rows back") as s:
            copy = sql.SQL("insert into {live} overriding system value select r.* from {rec} r "
                           "where not exists (select 1 from {live} l where l.id = r.id)").format(
                live=sql.Identifier(*TABLE.split(".", 1)), rec=sql.Identifier(schema, table_name))
            with psycopg.connect(dsn(ctx, side), autocommit=True) as conn:
                copied = conn.execute(copy).rowcount
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
            with psycopg.connect(dsn(ctx, side), autocommit=True) as conn:
                conn.execute(sql.SQL("drop schema if exists {} cascade").format(schema_id))
    ctx.notes.append(f"backup {manifest.id} stays in the vault: Object Lock keeps it until its retention ends")
