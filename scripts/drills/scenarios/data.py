"""What the three data scenarios share: a table fingerprint, the recovery point, the serving DSN, cleanup.

Each data drill proves recovery by DATA, not by exit codes: it fingerprints a table (row count
and an md5 over every row in key order) before the damage and requires the same fingerprint
after the recovery.

RPO is measured honestly: a drill recovers from what the stack would really have at the moment
of the damage — the newest backup the schedule left in the vault (taken by the drill only when
the vault has none, filed apart under ``<db>--drill/`` so it never becomes a real restore's
``--latest``, and then said so) — while the heartbeat keeps writing through the service
name up to the damage. ``rpoSeconds`` is that backup's age at the damage and
``acknowledgedRowsLost`` the heartbeat writes acknowledged before the damage that the recovered
database does not have.
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
from scripts.vault.layout import Manifest, id_database, select_backup

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


def filed_under(manifest: Manifest) -> str:
    """Where ``manifest`` is filed (what a restore of it reads): the real backups' name, or, for a
    backup the drill took itself, the drill's own prefix (scripts.vault.layout.drill_name)."""
    return id_database(manifest.id)


def scheduled_backup(ctx: DrillContext, side: str) -> Manifest:
    """The newest complete backup in the vault: what the stack would restore after damage now."""
    try:
        manifest, _ = select_backup(ctx.contract, "primary", ctx.db.name, latest=True)
        return manifest
    except PilotlightError:
        finest = min(ctx.contract.tiers.values(), key=lambda t: t.interval_seconds)
        ctx.notes.append(f"the vault held no backup of {ctx.db.name}, so the drill took one; on schedule the newest "
                         f"backup can be up to {finest.interval_seconds} s ({finest.name}) old at the damage")
        return take_backup(ctx, side)


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
    """What every data drill does around its own steps: find who serves, fingerprint the table,
    and keep the heartbeat writing through the service name while ``drill`` runs."""
    with ctx.steps.step("check starting state") as s:
        side = serving_side(ctx)
        before = fingerprint(dsn(ctx, side))
        s.note(f"{side} serves; {TABLE}: {before[0]} rows")
    with heartbeat_running(ctx, side):
        drill(ctx, side, before)
