"""Connection strings for the protected databases, without ever holding a password.

Every DSN the tools build comes from here (:func:`side_dsn`, :func:`endpoint_dsn`, :func:`login`).
The login, in this order: the contract's ``access.database`` users with its passfile when it
names them (the sandbox's application stand-in, an operator's own), the database's
``credentials`` (a Secrets Manager secret or an RDS IAM token, fetched at run time into a 0600
passfile by scripts/postgres/credentials.py), else libpq's environment (PGUSER, PGPASSWORD,
PGPASSFILE). For admin work (backup, restore, verify, status) the database's credentials come
first: they are the tools' own login; ``access.database.adminUser`` is the fallback.

TLS is ``sslmode=verify-full`` against a CA bundle unless the contract says otherwise: the
image's RDS bundle, ``$PILOTLIGHT_SSLROOTCERT``, or ``access.database.sslrootcert`` (the
sandbox's own CA). libpq checks the certificate against ``host`` (the endpoint's DNS name) even
when ``hostaddr`` says where to connect, so a name resolved by the contract's resolver is still
verified. A DSN given by the user is parsed with libpq's rules, and never echoed with its password.
"""
from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from scripts.common import UsageError
from scripts.contract import Contract, Database, default_sslrootcert
from scripts.postgres.credentials import login_params

VERIFYING = ("verify-ca", "verify-full")


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
    host, port = db.endpoint(side).host, db.port_of(side)
    return make_conninfo(host=host, port=port, dbname=dbname or db.db_name, connect_timeout=10,
                         **resolved(contract, host), **login(contract, superuser, db, side, host, port))


def endpoint_dsn(contract: Contract, host: str, port: int, dbname: str, superuser: bool = False,
                 db: Database | None = None, side: str = "primary") -> str:
    """A DSN for an instance endpoint the contract does not list (e.g. a restored instance of ``db`` on ``side``)."""
    return make_conninfo(host=host, port=port, dbname=dbname, connect_timeout=10, application_name="pilotlight-restore",
                         **resolved(contract, host), **login(contract, superuser, db, side, host, port))


def resolved(contract: Contract, host: str) -> dict[str, str]:
    """``hostaddr`` for ``host`` from the contract's resolver (``access.dnsResolver``), if it names one.

    Endpoint names may live in a zone only that resolver serves; libpq would ask the system's.
    Nothing when there is no resolver or it has no answer (libpq then resolves, and reports).
    """
    if contract.access.dns_resolver is None:
        return {}
    import dns.exception  # noqa: PLC0415 - only a contract naming a resolver needs dnspython (asyncio and all)
    import dns.resolver  # noqa: PLC0415

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [contract.access.dns_resolver[0]], contract.access.dns_resolver[1]
    resolver.cache, resolver.lifetime = None, 2.0
    try:
        return {"hostaddr": resolver.resolve(host, "A", search=False)[0].address}
    except dns.exception.DNSException:
        return {}


def login(contract: Contract, admin: bool = False, db: Database | None = None, side: str = "primary",
          host: str | None = None, port: int | None = None) -> dict[str, str]:
    """user/passfile and TLS settings for libpq (the order is the module docstring's)."""
    access = contract.access.database
    params = tls(contract)
    user = access.admin_user if admin else access.user
    credentials = db.credentials if db is not None else None
    if credentials is not None and host is not None and (admin or not user):
        return params | login_params(contract, credentials, side, host, port or db.port)
    if user:
        params["user"] = user
    if access.passfile:
        params["passfile"] = access.passfile
    return params


def tls(contract: Contract) -> dict[str, str]:
    """``sslmode`` and, when it verifies, ``sslrootcert``: the contract's CA bundle or the default."""
    access = contract.access.database
    params = {"sslmode": access.sslmode}
    if access.sslmode in VERIFYING:
        params["sslrootcert"] = access.sslrootcert or default_sslrootcert()
    return params


def with_dbname(dsn: str, dbname: str) -> str:
    """The same connection, to another database of the same server."""
    parts = conninfo_to_dict(dsn)
    parts["dbname"] = dbname
    return make_conninfo(**parts)
