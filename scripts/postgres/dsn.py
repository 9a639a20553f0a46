"""Connection strings for the protected databases, without ever holding a password.

On the sandbox, passwords live in a libpq password file (``sandbox.passfile``, mode 0600);
on AWS, libpq's own environment (PGUSER, PGPASSWORD or PGPASSFILE) supplies them. A DSN
given by the user is parsed with libpq's rules, and never echoed with its password.
"""
from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from scripts.common import UsageError
from scripts.contract import Contract, Database


def parse_dsn(dsn: str, flag: str = "--target") -> dict[str, str]:
    """libpq-parse a DSN or URI; one line naming the flag if it is not one."""
    try:
        return {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    except psycopg.ProgrammingError:
        raise UsageError(f"{flag} is not a valid PostgreSQL connection string (key=value or postgresql:// URI)") from None


def redact(dsn: str) -> str:
    """The DSN as it may be shown: the password replaced."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>"
    if "password" in parts:
        parts["password"] = "***"
    return make_conninfo(**parts)


def side_dsn(contract: Contract, side: str, db: Database | None = None, dbname: str | None = None,
             superuser: bool = False) -> str:
    """A DSN for the primary or DR database of ``db`` (sandbox: local clusters; AWS: the RDS endpoints)."""
    db = db or contract.database()
    name = dbname or db.db_name
    if contract.sandbox is not None:
        cluster = contract.sandbox.clusters[side]
        user = contract.sandbox.superuser if superuser else contract.sandbox.app_user
        return make_conninfo(host=cluster.host, port=cluster.port, dbname=name, user=user,
                             passfile=contract.sandbox.passfile, connect_timeout=5)
    endpoint = db.primary if side == "primary" else db.standby
    return make_conninfo(host=endpoint.host, port=db.port, dbname=name, connect_timeout=10, sslmode="require")


def with_dbname(dsn: str, dbname: str) -> str:
    """The same connection, to another database of the same server."""
    parts = conninfo_to_dict(dsn)
    parts["dbname"] = dbname
    return make_conninfo(**parts)
