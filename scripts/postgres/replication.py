"""What a side's database is doing, asked in SQL — the same on RDS and the sandbox.

Role (primary or replica), replication position, and the fence a planned switchover puts on
the side it leaves: ``ALTER DATABASE … SET default_transaction_read_only`` plus ending the
application's sessions, so no write lands on the old side after the new one has caught up.
The setting is a catalog row, so it replicates; the new side lifts it right after promotion.
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
        with connect(contract, db, side) as conn:
            in_recovery, lsn, lag = conn.execute(
                "select pg_is_in_recovery(),"
                " case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end::text,"
                " extract(epoch from now() - pg_last_xact_replay_timestamp())::float8"
            ).fetchone()
            return SideState(side, True, in_recovery, lsn, lag if in_recovery else None)
    except psycopg.Error as exc:
        return SideState(side, False, error=_pg_error(exc))


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
    with connect(contract, db, source) as conn:
        target = conn.execute("select pg_current_wal_lsn()::text").fetchone()[0]
    while True:
        try:
            with connect(contract, db, replica) as conn:
                behind = conn.execute(
                    "select pg_wal_lsn_diff(%s::pg_lsn, coalesce(pg_last_wal_replay_lsn(), '0/0'))", (target,)
                ).fetchone()[0]
            if behind <= 0:
                return time.monotonic() - start
        except psycopg.OperationalError:
            pass  # still starting up
        if time.monotonic() - start > timeout:
            raise PilotlightError(f"{replica} did not catch up with {source} within {timeout:.0f} s", Exit.FAILED)
        time.sleep(0.1)


def fence(contract: Contract, db: Database, side: str) -> int:
    """Make ``side`` refuse application writes; returns how many sessions were ended."""
    with connect(contract, db, side, dbname="postgres") as conn:  # a session the fence does not cover
        conn.execute(sql.SQL("alter database {} set default_transaction_read_only = on").format(
            sql.Identifier(db.db_name)))
        return conn.execute(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity"
            " where datname = %s and pid <> pg_backend_pid() and backend_type = 'client backend'"
            " and usename <> current_user",
            (db.db_name,),
        ).fetchone()[0]


def unfence(contract: Contract, db: Database, side: str) -> None:
    """Lift a (replicated) fence on the side that now serves."""
    with connect(contract, db, side, dbname="postgres") as conn:
        conn.execute(sql.SQL("alter database {} reset default_transaction_read_only").format(
            sql.Identifier(db.db_name)))
