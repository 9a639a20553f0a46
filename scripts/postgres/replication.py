"""What a side's database is doing, asked in SQL — the same on RDS and the sandbox.

Role (primary or replica), replication position, a paused WAL replay, and the fence a planned
switchover puts on the side it leaves.

The fence is ``ALTER DATABASE … ALLOW_CONNECTIONS false`` and then ending EVERY session in that
database (superusers' too) until none is left. A client cannot override it: there is no
session to set ``default_transaction_read_only=off`` in (``PGOPTIONS`` is what defeated the
old ``ALTER DATABASE … SET default_transaction_read_only`` fence), and no new connection to the
database is accepted, superuser or not (``datallowconn``). It is plain SQL, so it works on RDS
(the master user owns, or is a member of the owner of, the application's database; no
``ALTER SYSTEM`` or parameter group needed) and takes effect at once, unlike a parameter-group
reboot; unlike ``StopDBInstance`` it keeps the old side streaming to the standby until it has
caught up (RDS refuses to stop an instance that has a replica). Only a deliberate
``ALTER DATABASE … ALLOW_CONNECTIONS true`` from another database lifts it. The flag is a
catalog row, so it replicates: the new side lifts it right after promotion. Failback then stops
the retired instances (``StopDBInstance``).

The admin session runs in the ``postgres`` database, which the fence does not cover.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from scripts.common import Exit, PilotlightError
from scripts.contract import Contract, Database
from scripts.postgres.dsn import side_dsn


@dataclass(frozen=True)
class SideState:
    side: str
    reachable: bool
    in_recovery: bool | None = None
    lsn: str | None = None  # current WAL (primary) or last replayed (replica)
    replay_lag_seconds: float | None = None
    error: str | None = None
    replay_paused: bool = False
    fenced: bool = False  # the application's database refuses connections (datallowconn false)

    @property
    def role(self) -> str:
        if not self.reachable:
            return "unreachable"
        return "replica" if self.in_recovery else "primary"


def connect(contract: Contract, db: Database, side: str, timeout: int = 3,
            dbname: str | None = None) -> psycopg.Connection:
    dsn = side_dsn(contract, side, db, dbname=dbname, superuser=True)
    return psycopg.connect(dsn, autocommit=True, connect_timeout=timeout)


def state(contract: Contract, db: Database, side: str) -> SideState:
    try:
        with connect(contract, db, side, dbname="postgres") as conn:
            in_recovery, lsn, lag, paused, allowed = conn.execute(
                "select pg_is_in_recovery(),"
                " case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end::text,"
                " extract(epoch from now() - pg_last_xact_replay_timestamp())::float8,"
                " pg_is_in_recovery() and pg_get_wal_replay_pause_state() <> 'not paused',"
                " (select datallowconn from pg_database where datname = %s)",
                (db.db_name,),
            ).fetchone()
            return SideState(side, True, in_recovery, lsn, lag if in_recovery else None,
                             replay_paused=bool(paused), fenced=allowed is False)
    except psycopg.Error as exc:
        return SideState(side, False, error=_pg_error(exc))


class ReplayPaused(PilotlightError):
    def __init__(self, side: str):
        super().__init__(f"WAL replay on the {side} database is paused (pg_wal_replay_pause): it will not catch up; "
                         "resume it with `SELECT pg_wal_replay_resume()` on that side, then re-run", Exit.FAILED)


def _pg_error(exc: psycopg.Error) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def wait_writable(contract: Contract, db: Database, side: str, timeout: float) -> None:
    """Until ``side`` is out of recovery (a promotion finished)."""
    deadline = time.monotonic() + timeout
    while True:
        now = state(contract, db, side)
        if now.reachable and not now.in_recovery:
            return
        if time.monotonic() > deadline:
            raise PilotlightError(f"{side} database still {now.role} after {timeout:.0f} s", Exit.FAILED)
        time.sleep(0.05)


def wait_caught_up(contract: Contract, db: Database, replica: str, source: str, timeout: float) -> float:
    """Until ``replica`` has replayed everything ``source`` has written; returns the wait in seconds."""
    start = time.monotonic()
    with connect(contract, db, source, dbname="postgres") as conn:
        target = conn.execute("select pg_current_wal_lsn()::text").fetchone()[0]
    while True:
        try:
            with connect(contract, db, replica, dbname="postgres") as conn:
                behind, paused = conn.execute(
                    "select pg_wal_lsn_diff(%s::pg_lsn, coalesce(pg_last_wal_replay_lsn(), '0/0')),"
                    " pg_is_in_recovery() and pg_get_wal_replay_pause_state() <> 'not paused'", (target,)
                ).fetchone()
            if behind <= 0:
                return time.monotonic() - start
            if paused:
                raise ReplayPaused(replica)
        except psycopg.OperationalError:
            pass  # still starting up
        if time.monotonic() - start > timeout:
            raise PilotlightError(f"{replica} did not catch up with {source} within {timeout:.0f} s", Exit.FAILED)
        time.sleep(0.1)


FENCE_SECONDS = 10.0


def fence(contract: Contract, db: Database, side: str) -> int:
    """Make ``side``'s database take no session at all; returns how many sessions were ended.

    Raises if sessions are still there after ``FENCE_SECONDS`` (the fence did not hold).
    """
    ended = 0
    with connect(contract, db, side, dbname="postgres") as conn:  # a session the fence does not cover
        conn.execute(sql.SQL("alter database {} allow_connections false").format(sql.Identifier(db.db_name)))
        deadline = time.monotonic() + FENCE_SECONDS
        while True:
            left = conn.execute(
                "select count(*), count(pg_terminate_backend(pid)) from pg_stat_activity"
                " where datname = %s and pid <> pg_backend_pid() and backend_type = 'client backend'",
                (db.db_name,),
            ).fetchone()[0]
            if left == 0:
                return ended
            ended += left
            if time.monotonic() > deadline:
                raise PilotlightError(f"fence on {side}: {left} session(s) still in {db.db_name} after "
                                      f"{FENCE_SECONDS:.0f} s", Exit.FAILED)
            time.sleep(0.05)


def unfence(contract: Contract, db: Database, side: str) -> None:
    """Lift a (replicated) fence on the side that now serves (and the old read-only default, if set)."""
    with connect(contract, db, side, dbname="postgres") as conn:
        name = sql.Identifier(db.db_name)
        conn.execute(sql.SQL("alter database {} allow_connections true").format(name))
        conn.execute(sql.SQL("alter database {} reset default_transaction_read_only").format(name))


@dataclass(frozen=True)
class ClientActivity:
    """Client sessions of the application's database: those ever established, and those there now.

    The fence's check counts these, not ``pg_stat_database.xact_commit``: PostgreSQL counts the
    transactions of every backend of a database in ``xact_commit``, autovacuum workers' included
    (``AtEOXact_PgStat_Database`` in src/backend/utils/activity/pgstat_database.c), and the fence
    rightly does not stop autovacuum, so a fenced database's commits still grow. ``sessions``
    counts only regular client backends (``pgstat_should_report_connstat``: ``B_BACKEND``), which
    is exactly what the fence forbids.
    """

    established: int
    present: int

    def joined_since(self, fenced: "ClientActivity") -> int:
        """Client sessions that reached the database after ``fenced`` was read (0 when the fence held)."""
        return max(self.established - fenced.established, self.present)


def client_activity(contract: Contract, db: Database, side: str) -> ClientActivity:
    """Read :class:`ClientActivity` for ``db`` on ``side`` (from the ``postgres`` database)."""
    with connect(contract, db, side, dbname="postgres") as conn:
        conn.execute("select pg_stat_clear_snapshot()")
        established, present = conn.execute(
            "select (select sessions from pg_stat_database where datname = %s),"
            " (select count(*) from pg_stat_activity where datname = %s and backend_type = 'client backend')",
            (db.db_name, db.db_name),
        ).fetchone()
        return ClientActivity(int(established or 0), int(present))


def xid_horizon(contract: Contract, db: Database, side: str) -> int:
    """The next transaction id ``side`` would assign (on a replica: as far as it has replayed)."""
    with connect(contract, db, side, dbname="postgres") as conn:
        return int(conn.execute("select pg_snapshot_xmax(pg_current_snapshot())::text").fetchone()[0])
