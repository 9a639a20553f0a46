"""Connection strings for the protected databases, without ever holding a password.

The contract's ``access.database`` may name the users and a libpq password file (the sandbox's
does, mode 0600); otherwise libpq's own environment (PGUSER, PGPASSWORD or PGPASSFILE, or RDS
IAM tokens in PGPASSWORD) supplies them. A DSN
given by the user is parsed with libpq's rules, and never echoed with its password.
"""
from __future__ import annotations

import dns.exception
import dns.resolver
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
    """A DSN for the primary or DR instance of ``db``: its endpoint, the application or admin user."""
    db = db or contract.database()
    host = db.endpoint(side).host
    return make_conninfo(host=host, port=db.port_of(side), dbname=dbname or db.db_name,
                         connect_timeout=10, **resolved(contract, host), **login(contract, superuser))


def endpoint_dsn(contract: Contract, host: str, port: int, dbname: str, superuser: bool = False) -> str:
    """A DSN for an instance endpoint the contract does not list (e.g. a restored instance)."""
    return make_conninfo(host=host, port=port, dbname=dbname, connect_timeout=10, application_name="pilotlight-restore",
                         **resolved(contract, host), **login(contract, superuser))


def resolved(contract: Contract, host: str) -> dict[str, str]:
    """``hostaddr`` for ``host`` from the contract's resolver (``access.dnsResolver``), if it names one.

    Endpoint names may live in a zone only that resolver serves; libpq would ask the system's.
    Nothing when there is no resolver or it has no answer (libpq then resolves, and reports).
    """
    if contract.access.dns_resolver is None:
        return {}
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [contract.access.dns_resolver[0]], contract.access.dns_resolver[1]
    resolver.cache, resolver.lifetime = None, 2.0
    try:
        return {"hostaddr": resolver.resolve(host, "A", search=False)[0].address}
    except dns.exception.DNSException:
        return {}


def login(contract: Contract, admin: bool = False) -> dict[str, str]:
    """user/passfile/sslmode for libpq from ``access.database``; nothing set means libpq's environment."""
    access = contract.access.database
    params = {"sslmode": access.sslmode}
    user = access.admin_user if admin else access.user
    if user:
        params["user"] = user
    if access.passfile:
        params["passfile"] = access.passfile
    return params


def with_dbname(dsn: str, dbname: str) -> str:
    """The same connection, to another database of the same server."""
    parts = conninfo_to_dict(dsn)
    parts["dbname"] = dbname
    return make_conninfo(**parts)
