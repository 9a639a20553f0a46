"""What the three data scenarios share: a table fingerprint, a fresh backup, the serving DSN, cleanup.

Each data drill proves recovery by DATA, not by exit codes: it fingerprints a table (row count
and an md5 over every row in key order) before the damage and requires the same fingerprint
after the recovery. The drill takes its own backup first, so it is self-contained and its RPO
(the age of the backup restored, at the moment of the damage) is known exactly.
"""
from __future__ import annotations

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
from scripts.postgres.dsn import side_dsn, with_dbname
from scripts.vault.restore import RestoreResult, drop_database
from scripts.drills.scenarios import DrillContext
from scripts.vault.layout import Manifest, drill_name

TABLE = "public.orders"  # the sandbox's demo table (docs/drills.md: what data drills touch on a real stack)
TIER = "hourly"


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


def drill_backups(ctx: DrillContext) -> str:
    """Where the drill's own backups are filed (what its restores read): never the real ones."""
    return drill_name(ctx.db.name)


def describe(manifest: Manifest, restored: RestoreResult | None = None) -> dict:
    doc = {"id": manifest.id, "tier": manifest.tier, "takenAt": manifest.doc["times"]["snapshot"],
           "storedBytes": manifest.stored_bytes, "dumpBytes": manifest.doc["dump"]["bytes"]}
    if restored is not None:
        doc["restoreSeconds"] = restored.seconds
    return doc


def age_at(manifest: Manifest, moment: datetime) -> float:
    """The RPO of restoring ``manifest`` after a failure at ``moment``."""
    return max(0.0, (moment - manifest.snapshot_at).total_seconds())


def drop_kept_database(ctx: DrillContext, side: str, result: RestoreResult | None) -> None:
    """A full restore keeps the damaged database for rollback; once the drill verified, it goes."""
    if result is not None and result.kept_previous_as:
        drop_database(with_dbname(dsn(ctx, side), "postgres"), result.kept_previous_as)


@contextmanager
def heartbeat_running(ctx: DrillContext, side: str) -> Iterator[heartbeat.Heartbeat]:
    """The application's writes through the service name during the drill; the longest gap is measured.

    The table exists before the drill's backup, so a full restore brings it back and the writer
    simply reconnects to the swapped-in database.
    """
    heartbeat.create_table(ctx.contract, ctx.db, side)
    beat = heartbeat.Heartbeat(ctx.contract, ctx.db).start()
    try:
        yield beat
    finally:
        beat.stop()
        gaps = [b.at - a.at for a, b in zip(beat.acks, beat.acks[1:])]
        ctx.measured["heartbeat"] = beat.summary(origin=ctx.steps.t0)
        ctx.measured["longestWriteGapSeconds"] = round(max(gaps, default=0.0), 3)
        with ctx.steps.step("cleanup: drop heartbeat table"):
            heartbeat.drop_table(ctx.contract, ctx.db, side)


def run_data_drill(ctx: DrillContext, drill: Callable[[DrillContext, str, tuple[int, str]], None]) -> None:
    """What every data drill does around its own steps: find who serves, fingerprint the table,
    and keep the heartbeat writing through the service name while ``drill`` runs."""
    with ctx.steps.step("check starting state") as s:
        side = serving_side(ctx)
        before = fingerprint(dsn(ctx, side))
        s.note(f"{side} serves; {TABLE}: {before[0]} rows")
    with heartbeat_running(ctx, side):
        drill(ctx, side, before)
