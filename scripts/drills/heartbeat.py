"""A heartbeat writer: the application's view of an outage, measured.

A thread commits one row every ~100 ms into ``pilotlight_drill.heartbeat`` THROUGH THE SERVICE'S
DNS NAME, exactly as an application would: it resolves the name on every (re)connect, and on
any error drops the connection and starts over. Each commit that returns is an acknowledged
write, recorded with the side that acknowledged it and when. From that record a drill reads
its RTO (failure → first acknowledged write on the new side) and, by looking for the
acknowledged ids on the new primary, its RPO (acknowledged writes that did not survive).
Ids are assigned by the writer, so an id never means two different rows.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from scripts.common import iso
from scripts.contract import Contract, Database
from scripts.postgres.dsn import login, side_dsn
from scripts.postgres.replication import connect
from scripts.failover.service import resolve

SCHEMA = "pilotlight_drill"
TABLE = f"{SCHEMA}.heartbeat"
INTERVAL = 0.1
CONNECT_TIMEOUT = 2
MAX_PLOTTED = 3000  # commits kept for a report's picture


@dataclass(frozen=True)
class Ack:
    id: int
    side: str
    at: float  # time.time() when the commit returned
    mono: float  # time.monotonic() at the same moment, for durations


def create_table(contract: Contract, db: Database, side: str) -> None:
    """On the serving primary (it replicates); the application role may write it."""
    with connect(contract, db, side) as conn:
        conn.execute(f"create schema if not exists {SCHEMA}")
        conn.execute(f"create table if not exists {TABLE} (id bigint primary key, written_at timestamptz not null)")
        user = contract.access.database.user or conn.execute("select current_user").fetchone()[0]
        conn.execute(sql.SQL("grant usage on schema {} to {}").format(sql.Identifier(SCHEMA), sql.Identifier(user)))
        conn.execute(sql.SQL("grant insert, select on {} to {}").format(sql.SQL(TABLE), sql.Identifier(user)))


def drop_table(contract: Contract, db: Database, side: str) -> None:
    with connect(contract, db, side) as conn:
        conn.execute(f"drop schema if exists {SCHEMA} cascade")


def present_ids(contract: Contract, db: Database, side: str, ids: list[int]) -> set[int]:
    """Which of ``ids`` the database on ``side`` holds."""
    with connect(contract, db, side) as conn:
        rows = conn.execute(f"select id from {TABLE} where id = any(%s)", (ids,)).fetchall()
    return {r[0] for r in rows}


def service_conninfo(contract: Contract, db: Database) -> tuple[str, str]:
    """(side, conninfo) for the service name as DNS answers it right now."""
    found = resolve(contract, db)
    info = make_conninfo(host=found.target, hostaddr=found.address, port=found.port, dbname=db.db_name,
                         connect_timeout=CONNECT_TIMEOUT,
                         **login(contract, db=db, side=found.side or "primary", host=found.target, port=found.port))
    return found.side, info


@dataclass
class Heartbeat:
    """Start it, break things, stop it; then read ``acks`` and ``failures``."""

    contract: Contract
    db: Database
    interval: float = INTERVAL
    acks: list[Ack] = field(default_factory=list)
    failures: int = 0
    last_error: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _next_id: int = 0

    def start(self) -> "Heartbeat":
        self._next_id = self._first_id()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _first_id(self) -> int:
        return int(time.time() * 1000) * 1000  # unique across drills sharing a table

    def _conninfo(self) -> tuple[str, str]:
        return service_conninfo(self.contract, self.db)

    def wait_for(self, predicate, timeout: float) -> Ack | None:
        """The first acknowledged write matching ``predicate`` (waiting up to ``timeout``)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            acks = self.acks[seen:]
            for ack in acks:
                if predicate(ack):
                    return ack
            seen += len(acks)
            time.sleep(0.02)
        return None

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        side = ""
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                if conn is None:
                    side, info = self._conninfo()
                    conn = psycopg.connect(info, autocommit=True)
                self._next_id += 1
                conn.execute(f"insert into {TABLE} (id, written_at) values (%s, now())", (self._next_id,))
                self.acks.append(Ack(self._next_id, side, time.time(), time.monotonic()))
            except Exception as exc:  # noqa: BLE001 - an outage looks like anything; count it, reconnect
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                if conn is not None:
                    conn.close()
                conn = None
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        if conn is not None:
            conn.close()

    def summary(self, origin: float | None = None) -> dict:
        """Counts, first/last; with ``origin`` (a time.monotonic() value, the drill's step clock) also
        ``commits``: each acknowledged commit's offset from it, per side, for the report's picture."""
        by_side: dict[str, int] = {}
        for ack in self.acks:
            by_side[ack.side] = by_side.get(ack.side, 0) + 1
        doc = {"acknowledged": len(self.acks), "bySide": by_side, "failedAttempts": self.failures,
               "lastError": self.last_error,
               "first": iso_of(self.acks[0]) if self.acks else None,
               "last": iso_of(self.acks[-1]) if self.acks else None}
        if origin is not None:
            step = max(1, len(self.acks) // MAX_PLOTTED)  # a long drill keeps every n-th commit
            commits: dict[str, list[float]] = {}
            for ack in self.acks[::step]:
                commits.setdefault(ack.side, []).append(round(ack.mono - origin, 3))
            doc["commits"] = commits
        return doc


@dataclass
class StaleWriter(Heartbeat):
    """A client the fence must stop: it keeps writing to ``side`` directly (an old connection or a cached
    DNS answer) and overrides the read-only default per session, as pools and ORMs may
    (``-c default_transaction_read_only=off``). Its ids start far above the heartbeat's."""

    side: str = "primary"
    superuser: bool = False

    def _first_id(self) -> int:
        return 9 * 10 ** 17 + super()._first_id() % 10 ** 15

    def _conninfo(self) -> tuple[str, str]:
        info = side_dsn(self.contract, self.side, self.db, superuser=self.superuser)
        return self.side, f"{info} options='-c default_transaction_read_only=off' application_name=pilotlight-stale"

    def lost_after(self, contract: Contract, db: Database, new_side: str) -> list[Ack]:
        """Acknowledged writes of this writer that the new primary does not have."""
        if not self.acks:
            return []
        present = present_ids(contract, db, new_side, [a.id for a in self.acks])
        return [a for a in self.acks if a.id not in present]


def iso_of(ack: Ack) -> str:
    return iso(datetime.fromtimestamp(ack.at, timezone.utc))

