"""Did the old primary take writes the promoted side never got? Asked in SQL, on RDS or the sandbox.

When cutover promotes a side it records, on that side, the promotion point: the next
transaction id as far as the replica had replayed (``pilotlight.promotion`` in the ``postgres``
database, so it travels with the instance and its future replicas). Transaction ids are shared
history up to that point, so if the old primary's next id is beyond it, the old primary began
transactions after the split that the promoted side never received: it diverged. The rows
those transactions left in the application's database (``xmin`` in that range: inserted or
updated there) are counted per table; any such row is a divergence, and the refusal says what
failing back would discard. Ids used without leaving a row (autovacuum, other databases) are
not; a divergence made only of DELETEs is not seen (a limit of reading it in SQL). Without a
promotion record (promoted by hand) the check says it cannot prove there was no divergence,
and refuses like a divergence.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import psycopg
from psycopg import sql

from scripts.contract import Contract, Database
from scripts.postgres.dsn import side_dsn
from scripts.postgres.replication import connect, state, xid_horizon

SCHEMA = "pilotlight"
TABLE = f"{SCHEMA}.promotion"
XID_MOD = 2 ** 32


@dataclass
class Divergence:
    diverged: bool
    summary: str
    transactions: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    dsn: str | None = None  # the old primary, for a backup before it is discarded

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "dsn"}


def record_promotion(contract: Contract, db: Database, side: str, from_xid: int | None) -> None:
    """Keep the promotion point on the promoted ``side`` (nothing when it was not promoted by us)."""
    if from_xid is None:
        return
    with connect(contract, db, side, dbname="postgres") as conn:
        conn.execute(f"create schema if not exists {SCHEMA}")
        conn.execute(f"create table if not exists {TABLE} (promoted_at timestamptz not null default now(),"
                     " side text not null, database text not null, next_xid bigint not null)")
        conn.execute(f"insert into {TABLE} (side, database, next_xid) values (%s, %s, %s)",
                     (side, db.db_name, from_xid))


def _promotion_point(contract: Contract, db: Database, side: str) -> int | None:
    try:
        with connect(contract, db, side, dbname="postgres") as conn:
            row = conn.execute(f"select next_xid from {TABLE} where side = %s and database = %s"
                               " order by promoted_at desc limit 1", (side, db.db_name)).fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    return row[0] if row else None


def check_divergence(contract: Contract, db: Database, old: str = "primary", new: str = "dr") -> Divergence:
    """Compare the old primary ``old`` with the promoted ``new``."""
    before = state(contract, db, old)
    if not before.reachable:
        return Divergence(False, f"the old {old} database is unreachable: what it had not streamed before the "
                                 "failure is the RPO, and goes with it")
    if before.in_recovery:
        return Divergence(False, f"the old {old} database is a replica: nothing of its own")
    point = _promotion_point(contract, db, new)
    dsn = side_dsn(contract, old, db, superuser=True)
    if point is None:
        return Divergence(True, f"no promotion record on {new} (promoted outside pilotlight): cannot prove the "
                                f"old {old} took no writes after it", dsn=dsn)
    now = xid_horizon(contract, db, old)
    if now <= point:
        return Divergence(False, f"no transaction on the old {old} after {new} was promoted")
    rows = _rows_since(contract, db, old, point, now)
    if not rows:  # ids were used (autovacuum, other databases) but no row of the application's changed
        return Divergence(False, f"no row written in {db.db_name} on the old {old} after {new} was promoted "
                                 f"({now - point} transaction id(s) used elsewhere)", transactions=now - point)
    listed = ", ".join(f"{t}: {n}" for t, n in rows.items())
    return Divergence(True, f"{now - point} transaction(s) on the old {old} after {new} was promoted; rows only it "
                            f"has: {listed}", transactions=now - point, rows=rows, dsn=dsn)


def _rows_since(contract: Contract, db: Database, side: str, first: int, end: int) -> dict[str, int]:
    """Rows per user table whose inserting/updating transaction is in [first, end)."""
    lo, hi = first % XID_MOD, end % XID_MOD
    out: dict[str, int] = {}
    try:
        with connect(contract, db, side) as conn:
            tables = conn.execute(
                "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema')"
                " and n.nspname not like 'pg_toast%%' order by 1, 2").fetchall()
            for schema, name in tables:
                query = sql.SQL("select count(*) from {}.{} where xmin::text::bigint >= %s and xmin::text::bigint < %s"
                                if lo <= hi else
                                "select count(*) from {}.{} where xmin::text::bigint >= %s or xmin::text::bigint < %s")
                count = conn.execute(query.format(sql.Identifier(schema), sql.Identifier(name)), (lo, hi)).fetchone()[0]
                if count:
                    out[f"{schema}.{name}"] = count
    except psycopg.Error:
        return out  # the database takes no session (fenced before the split): nobody wrote there since
    return out
