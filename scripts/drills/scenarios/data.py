"""What the three data scenarios share: the drill's own table, its fingerprint, the recovery point, cleanup.

The data drills never touch the application's data, on the sandbox or a real stack (one code
path): each creates its OWN table, :data:`TABLE` (in the heartbeat's ``pilotlight_drill`` schema,
dropped with it at the end), damages that, and recovers it from the vault by a partial restore
(``restore --tables`` into a new schema of the live database) and a copy back — never a restore
and swap of the whole database, which would roll back every write the application made since
the backup.

Each data drill proves recovery by DATA, not by exit codes: it fingerprints the table (row count
and an md5 over every row in key order) before the damage and requires the same fingerprint
after the recovery.

RPO is measured honestly: a drill recovers from what the stack would really have at the moment
of the damage — the newest backup the schedule left in the vault (taken by the drill only when
the vault has none holding the drill's table, filed apart under ``<db>--drill/`` so it never
becomes a real restore's ``--latest``, and then said so) — while the heartbeat keeps writing through the service
name up to the damage. ``rpoSeconds`` is that backup's age at the damage and
``acknowledgedRowsLost`` the heartbeat writes acknowledged before the damage that the recovered
database does not have.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import datetime
from typing import Callable, Iterator

import psycopg
from psycopg import sql

from scripts.postgres import replication as dbstate
from scripts.failover import dns as dnscheck
from scripts.drills import heartbeat
from scripts.vault.backup import perform_backup
from scripts.common import PilotlightError
from scripts.postgres.dsn import side_dsn
from scripts.vault.restore import RestoreResult, perform_restore
from scripts.drills.scenarios import DrillContext
from scripts.vault.layout import Manifest, id_database, select_backup

TABLE = f"{heartbeat.SCHEMA}.orders"  # the drill's own: never an application table
ROWS = 2000
TIER = "hourly"
_SEED = (f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, amount numeric(12, 2) NOT NULL, token text NOT NULL,"
         " created_at timestamptz NOT NULL DEFAULT '2026-01-01 00:00:00+00')",
         f"INSERT INTO {TABLE} (id, amount, token) SELECT g, (g * 37 % 100000) / 100.0, md5(g::text)"
         f" FROM generate_series(1, {ROWS}) g")


def serving_side(ctx: DrillContext) -> str:
    """The side DNS sends the service to; it must be a writable primary."""
    side = dnscheck.answering_side(ctx.contract, ctx.db)
    if side is None or dbstate.state(ctx.contract, ctx.db, side).role != "primary":
        raise PilotlightError(f"the service is not served by a healthy primary (dns -> {side})")
    return side


def dsn(ctx: DrillContext, side: str) -> str:
    return side_dsn(ctx.contract, side, ctx.db, superuser=True)


def fingerprint(target_dsn: str, table: str = TABLE) -> tuple[int, str]:
    """(rows, md5 of all rows in primary-key order): equal fingerprints mean equal data."""
    schema, name = table.split(".", 1)
    ident = sql.Identifier(schema, name)
    query = sql.SQL("select count(*), coalesce(md5(string_agg(t::text, ',' order by t.id)), '') from {} t").format(ident)
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        rows, digest = conn.execute(query).fetchone()
    return rows, digest


def take_backup(ctx: DrillContext, side: str) -> Manifest:
    return perform_backup(ctx.contract, TIER, source_dsn=dsn(ctx, side), db=ctx.db.name, drill=True)


def filed_under(manifest: Manifest) -> str:
    """Where ``manifest`` is filed (what a restore of it reads): the real backups' name, or, for a
    backup the drill took itself, the drill's own prefix (scripts.vault.layout.drill_name)."""
    return id_database(manifest.id)


def create_drill_table(ctx: DrillContext, side: str) -> tuple[int, str]:
    """The drill's own table with :data:`ROWS` rows (the heartbeat's schema exists); its fingerprint."""
    with psycopg.connect(dsn(ctx, side), autocommit=True) as conn, conn.transaction():
        for stmt in _SEED:
            conn.execute(stmt)
    return fingerprint(dsn(ctx, side))


def scheduled_backup(ctx: DrillContext, side: str) -> Manifest:
    """The newest complete backup in the vault (what the stack would restore after damage now), if it
    holds the drill's table; else one the drill takes, filed apart, and says so."""
    try:
        manifest, _ = select_backup(ctx.contract, "primary", ctx.db.name, latest=True)
        if TABLE in manifest.row_counts:
            return manifest
        held = f"the vault's newest backup of {ctx.db.name} ({manifest.id}) predates the drill's table"
    except PilotlightError:
        held = f"the vault held no backup of {ctx.db.name}"
    finest = min(ctx.contract.tiers.values(), key=lambda t: t.interval_seconds)
    ctx.notes.append(f"{held}, so the drill took one; on schedule the newest backup can be up to "
                     f"{finest.interval_seconds} s ({finest.name}) old at the damage")
    return take_backup(ctx, side)


def restore_table(ctx: DrillContext, side: str, manifest: Manifest, before: datetime) -> tuple[str, RestoreResult]:
    """The drill's table from the newest backup before ``before`` (filed as ``manifest``) into a new schema."""
    schema = f"pilotlight_recovered_{int(time.time())}"
    restored = perform_restore(ctx.contract, dsn(ctx, side), before=before, tables=[TABLE], into_schema=schema,
                               db=filed_under(manifest))
    return schema, restored


def put_back(ctx: DrillContext, side: str, schema: str, overwrite: bool) -> dict[str, int]:
    """In one transaction: rows of the recovered copy the table lacks are inserted; with ``overwrite``
    the rows that differ from it are replaced first. Rows the copy does not have are never touched."""
    live = sql.Identifier(*TABLE.split(".", 1))
    rec = sql.Identifier(schema, TABLE.split(".", 1)[1])
    with psycopg.connect(dsn(ctx, side), autocommit=True) as conn, conn.transaction():
        replaced = conn.execute(sql.SQL("DELETE FROM {live} l USING {rec} r WHERE l.id = r.id"
                                        " AND row(l.*) IS DISTINCT FROM row(r.*)").format(live=live, rec=rec)
                                ).rowcount if overwrite else 0
        inserted = conn.execute(sql.SQL("INSERT INTO {live} SELECT r.* FROM {rec} r WHERE NOT EXISTS"
                                        " (SELECT 1 FROM {live} l WHERE l.id = r.id)").format(live=live, rec=rec)
                                ).rowcount
    return {"replaced": replaced, "inserted": inserted}


def drop_schema(ctx: DrillContext, side: str, schema: str) -> None:
    with psycopg.connect(dsn(ctx, side), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def acknowledged_rows_lost(ctx: DrillContext, side: str, damage_at: float) -> int:
    """Heartbeat writes acknowledged before ``damage_at`` (epoch seconds) that ``side`` no longer has."""
    beat = ctx.heartbeat
    acked = [a.id for a in beat.acks if a.at < damage_at] if beat is not None else []
    if not acked:
        return 0
    try:
        present = heartbeat.present_ids(ctx.contract, ctx.db, side, acked)
    except psycopg.Error:  # the recovered database predates the heartbeat table: every write is gone
        present = set()
    return len(set(acked) - present)


def measure_rpo(ctx: DrillContext, side: str, seconds: float, damage_at: float) -> None:
    ctx.measured["rpoSeconds"] = round(seconds, 3)
    ctx.measured["acknowledgedRowsLost"] = acknowledged_rows_lost(ctx, side, damage_at)


def describe(manifest: Manifest, restored: RestoreResult | None = None) -> dict:
    doc = {"id": manifest.id, "tier": manifest.tier, "takenAt": manifest.doc["times"]["snapshot"],
           "storedBytes": manifest.stored_bytes, "dumpBytes": manifest.doc["dump"]["bytes"]}
    if restored is not None:
        doc["restoreSeconds"] = restored.seconds
    return doc


def age_at(manifest: Manifest, moment: datetime) -> float:
    """The RPO of restoring ``manifest`` after a failure at ``moment``."""
    return max(0.0, (moment - manifest.snapshot_at).total_seconds())


@contextmanager
def heartbeat_running(ctx: DrillContext, side: str) -> Iterator[heartbeat.Heartbeat]:
    """The application's writes through the service name during the drill; the longest gap is measured.

    Its schema holds the drill's table too: both are dropped at the end, whatever happened.
    """
    heartbeat.create_table(ctx.contract, ctx.db, side)
    beat = heartbeat.Heartbeat(ctx.contract, ctx.db).start()
    ctx.heartbeat = beat
    try:
        yield beat
    finally:
        beat.stop()
        ctx.heartbeat = None
        gaps = [b.at - a.at for a, b in zip(beat.acks, beat.acks[1:])]
        ctx.measured["heartbeat"] = beat.summary(origin=ctx.steps.t0)
        ctx.measured["longestWriteGapSeconds"] = round(max(gaps, default=0.0), 3)
        with ctx.steps.step("cleanup: drop heartbeat table"):
            heartbeat.drop_table(ctx.contract, ctx.db, side)


def run_data_drill(ctx: DrillContext, drill: Callable[[DrillContext, str, tuple[int, str]], None]) -> None:
    """What every data drill does around its own steps: find who serves, create and fingerprint the
    drill's table, and keep the heartbeat writing through the service name while ``drill`` runs."""
    with ctx.steps.step("check starting state") as s:
        side = serving_side(ctx)
        s.note(f"{side} serves")
    ctx.measured["table"] = TABLE
    with heartbeat_running(ctx, side):
        with ctx.steps.step("create the drill's own table") as s:
            before = create_drill_table(ctx, side)
            s.note(f"{TABLE}: {before[0]} rows (the application's tables are never touched)")
        drill(ctx, side, before)
