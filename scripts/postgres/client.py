"""PostgreSQL plumbing shared by backup, verify and restore: client binaries, snapshots, row counts.

A password in a user-given DSN is moved into the child's environment (PGPASSWORD) so it never
appears in a process listing; the sandbox and AWS use a passfile or libpq's environment anyway.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from scripts.common import Exit, PilotlightError, Refused
from scripts.postgres.dsn import redact

PG_ROOT = Path("/usr/lib/postgresql")
PG_BIN_ENV = "PILOTLIGHT_PG_BIN"


def default_pg_bin(root: Path = PG_ROOT) -> Path:
    """Where the client binaries are: ``$PILOTLIGHT_PG_BIN``, else the newest major installed under
    ``/usr/lib/postgresql`` (Debian's layout; a newer pg_dump dumps older servers, never the
    reverse), else 15's directory (absent: the binaries are then looked up on PATH).
    """
    if os.environ.get(PG_BIN_ENV):
        return Path(os.environ[PG_BIN_ENV])
    majors = sorted((int(d.name) for d in root.glob("*") if d.name.isdigit() and (d / "bin" / "pg_dump").exists()),
                    reverse=True)
    return root / str(majors[0] if majors else 15) / "bin"


PG_BIN = default_pg_bin()

# Leaf tables whose rows pg_dump writes: ordinary tables (partitions included, partitioned parents
# have no rows of their own), not catalogs, not tables owned by an extension.
_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1
"""
LARGE_OBJECTS = "(large objects)"


def binary(name: str) -> str:
    """A PostgreSQL client binary: the server's major version first, then PATH."""
    path = PG_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        raise PilotlightError(f"{name} not found (set PILOTLIGHT_PG_BIN to PostgreSQL's bin directory)")
    return found


def require_dump_client_for(server_version: str) -> None:
    """Refuse a ``pg_dump`` older than the server: it cannot dump a newer server's catalogs reliably.

    PostgreSQL's pg_dump docs: "pg_dump cannot dump from PostgreSQL servers newer than its own
    major version". The image pins the client of the declared major (PILOTLIGHT_PG_BIN); elsewhere
    :func:`default_pg_bin` picks the newest installed.
    """
    exe = binary("pg_dump")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    client = int(match.group(1)) if match else 0
    server = int(re.match(r"\d+", server_version).group(0))
    if client < server:
        raise Refused(f"pg_dump {client} ({exe}) is older than the server ({server_version}) and cannot dump it: install "
                      f"postgresql-client-{server} and set {PG_BIN_ENV}=/usr/lib/postgresql/{server}/bin "
                      "(default: the newest major under /usr/lib/postgresql)")


# What pg_dump, pg_restore and pg_dumpall must not inherit from the database either: pg_dump's first
# query runs before it sets statement_timeout itself. Encoding and DateStyle stay the tools' own
# business (pg_dump writes the database's encoding unless told otherwise).
CLIENT_TIMEOUTS = "-c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0"


def client_args(dsn: str) -> tuple[str, dict[str, str]]:
    """(DSN without password for ``--dbname``, with :data:`CLIENT_TIMEOUTS`; environment carrying the password if any)."""
    parts = conninfo_to_dict(dsn)
    parts["options"] = f"{parts.get('options', '')} {CLIENT_TIMEOUTS}".strip()
    env = dict(os.environ)
    password = parts.pop("password", None)
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**parts), env


# Our own sessions must not inherit what a database or role sets for the application: a short
# statement_timeout or idle_in_transaction_session_timeout would kill the snapshot or a row count,
# a DateStyle like 'SQL, DMY' breaks parsing timestamps, and a SQL_ASCII database hands text back
# as bytes. Startup options outrank ALTER DATABASE/ROLE ... SET (GUC source "client").
SESSION_OPTIONS = ("-c DateStyle=ISO -c IntervalStyle=postgres -c statement_timeout=0 -c lock_timeout=0"
                   " -c idle_in_transaction_session_timeout=0 -c client_encoding=UTF8")


def tool_dsn(dsn: str) -> str:
    """``dsn`` with :data:`SESSION_OPTIONS` added to any ``options`` it already has."""
    parts = conninfo_to_dict(dsn)
    parts["options"] = f"{parts.get('options', '')} {SESSION_OPTIONS}".strip()
    return make_conninfo(**parts)


def connect(dsn: str, **kwargs) -> psycopg.Connection:
    """psycopg connect (with :data:`SESSION_OPTIONS`) with a one-line, password-free error that names the fix."""
    try:
        return psycopg.connect(tool_dsn(dsn), **kwargs)
    except psycopg.OperationalError as exc:
        reason, code = connect_failure(dsn, exc)
        raise PilotlightError(f"cannot connect to {redact(dsn)}: {reason}", code) from None


def connect_failure(dsn: str, exc: BaseException) -> tuple[str, Exit]:
    """libpq's connection error as one line: host, port and the cause kept, the hint folded in.

    libpq puts the cause on the first line ("connection to server at "h", port p failed:
    Connection refused") and a tab-indented hint after it; a missing passfile only shows as
    "no password supplied", so the passfile's path is checked and named here.
    """
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    causes = [line for line in lines if not line.startswith(("Is the server running", "HINT:"))]
    reason = "; ".join(dict.fromkeys(causes)) or "connection failed"
    if any(line.startswith("Is the server running") for line in lines):
        reason += " (is the server running and accepting TCP/IP connections there?)"
    tls = _tls_hint(dsn, reason)
    if tls:
        return tls, Exit.FAILED
    if "no password supplied" in reason:
        try:
            parts = conninfo_to_dict(dsn)
        except psycopg.ProgrammingError:
            parts = {}
        passfile = parts.get("passfile") or os.environ.get("PGPASSFILE")
        where = Path(str(passfile)).expanduser() if passfile else Path.home() / ".pgpass"
        named = "passfile= in the DSN" if parts.get("passfile") else "PGPASSFILE" if passfile else "libpq's default"
        if not where.is_file():
            return (f"no password: the passfile {where} ({named}) does not exist; create it (mode 0600) or point "
                    "passfile= / PGPASSFILE at the right one", Exit.USAGE)
        return (f"no password: the passfile {where} ({named}) has no line for this host, port, database and user",
                Exit.USAGE)
    return reason, Exit.NETWORK


def _tls_hint(dsn: str, reason: str) -> str | None:
    """libpq's certificate errors as one line that names the CA bundle and the fix; None if not one."""
    try:
        rootcert = str(conninfo_to_dict(dsn).get("sslrootcert") or "~/.postgresql/root.crt")
    except psycopg.ProgrammingError:
        rootcert = "sslrootcert"
    where = reason.split(": ", 1)[0] if reason.startswith("connection to server") else "the server"
    if "root certificate file" in reason and "does not exist" in reason:
        return (f"{where}: no CA bundle at {rootcert} to verify the server's certificate (sslmode=verify-full); "
                "the image carries AWS's RDS bundle, elsewhere set PILOTLIGHT_SSLROOTCERT or access.database.sslrootcert")
    if "certificate verify failed" in reason:
        return (f"{where}: TLS refused: the server's certificate is not signed by a CA in {rootcert} "
                "(not the RDS CA bundle this stack trusts); check the endpoint, or the bundle")
    if "does not match host name" in reason:
        return f"{where}: TLS refused: {reason.rsplit(': ', 1)[-1]} (sslmode=verify-full checks the endpoint's name)"
    if "does not support SSL" in reason:
        return f"{where}: the server does not offer TLS, and the tools require it (sslmode=verify-full)"
    return None


@dataclass
class Snapshot:
    id: str
    at: datetime
    server_version: str
    system_identifier: str | None
    host: str
    port: int
    dbname: str
    tables: list[str]


@contextmanager
def exported_snapshot(dsn: str, lock: str | None = None) -> Iterator[Snapshot]:
    """A REPEATABLE READ transaction exporting its snapshot, open for the duration of the block.

    pg_dump ``--snapshot`` and the row counts both read this exact snapshot, so the manifest's
    counts describe precisely the rows in the dump, even under concurrent writes. ``lock`` names
    a session advisory lock held for the block (one backup per database at a time).
    """
    conn = connect(dsn)
    try:
        if lock is not None:
            (got,) = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (lock,)).fetchone()
            conn.rollback()
            if not got:
                raise Refused(f"another run holds {lock!r} on {redact(dsn)}; try again when it has finished")
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        snap_id, at, version = conn.execute(
            "SELECT pg_export_snapshot(), statement_timestamp(), current_setting('server_version')"
        ).fetchone()
        (sysid,) = conn.execute(
            "SELECT CASE WHEN has_function_privilege('pg_control_system()', 'EXECUTE')"
            " THEN (SELECT system_identifier::text FROM pg_control_system()) END"
        ).fetchone()  # may be NULL on managed services; identity then rests on host/port/dbname
        tables = [r[0] for r in conn.execute(_TABLES).fetchall()]
        info = conn.info
        yield Snapshot(snap_id, at, version, sysid, info.host, int(info.port), info.dbname, tables)
    finally:
        conn.close()


def count_rows(dsn: str, tables: list[str], snapshot: str | None = None, workers: int = 2) -> dict[str, int]:
    """Exact row counts per table (and large objects), ``workers`` connections in parallel.

    With ``snapshot`` every connection imports it first (same rows as the dump).
    """
    groups = [tables[i::workers] for i in range(workers)]
    groups[0] = groups[0] + [LARGE_OBJECTS]
    lock = threading.Lock()
    counts: dict[str, int] = {}

    def work(group: list[str]) -> None:
        with connect(dsn) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            if snapshot:
                conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
            for name in group:
                if name == LARGE_OBJECTS:
                    query = sql.SQL("SELECT count(*) FROM pg_catalog.pg_largeobject_metadata")
                else:
                    schema, _, table = split_name(name)
                    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
                (n,) = conn.execute(query).fetchone()
                with lock:
                    counts[name] = int(n)
            conn.rollback()

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pilotlight-count") as pool:
        for f in [pool.submit(work, g) for g in groups if g]:
            f.result()
    return dict(sorted(counts.items()))


def tables(dsn: str) -> list[str]:
    with connect(dsn) as conn:
        return [r[0] for r in conn.execute(_TABLES).fetchall()]


def split_name(name: str) -> tuple[str, str, str]:
    """Split ``format('%I.%I')`` output back into schema and table (quotes handled)."""
    parts, cur, quoted, i = [], "", False, 0
    while i < len(name):
        ch = name[i]
        if ch == '"':
            if quoted and i + 1 < len(name) and name[i + 1] == '"':
                cur += '"'
                i += 1
            else:
                quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    parts.append(cur)
    return parts[0], ".", parts[1]
