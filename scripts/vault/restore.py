"""The restore engine: restore a backup into a NEW database, prove it, then swap names atomically (`pilotlight restore`).

Order of operations (the target is never touched until the restored copy is proven):

1. select the backup (newest valid, ``--backup ID``, or newest strictly before ``--before``) and
   check its metadata — manifest, object size, version, S3 checksum — before any database;
2. refuse while other sessions use the target, unless ``--terminate-sessions``;
3. stream download -> authenticate/decrypt -> zstd -d into ``pg_restore --exit-on-error`` on a
   scratch database ``<target>_restore_<ts>`` (dropped on any failure);
4. when the stream ends, both SHA-256s must match the manifest, then the row counts of every
   table (and the large objects) must equal the manifest's;
5. one transaction renames target -> ``<target>_pre_restore_<ts>`` and scratch -> target
   (PostgreSQL allows ALTER DATABASE RENAME inside a transaction block, so either both happen
   or neither); the old database is kept for rollback. On any failure the scratch is dropped.

Streaming single-job vs ``-j`` from a spool: streaming overlaps the download with pg_restore and
keeps plaintext off disk; ``pg_restore -j`` needs a seekable file, so ``--jobs N`` (N > 1) spools
the verified plaintext to a private 0600 file (in a 0700 temp dir, removed whatever happens)
first, which serialises download and restore, and the archive pg_dump wrote to a pipe has no data
offsets, so -j workers must scan it. Measured on this 2-core box (137 MB dump, 38 MB stored,
load average 5-10 from other work): streamed restore 4.4-7.4 s end to end, spooled ``--jobs 2``
6.2-13.9 s; for reference ``pg_restore -j1`` 2.2-3.5 s from a file, 3.9-4.2 s from a pipe, and
``-j2`` 3.0 s on an archive without offsets. Streaming is the default. Partial restore (``--tables``
with ``--into-schema``) restores just those tables into a scratch database, moves them into the
new schema and copies that schema into the live database; nothing existing is modified.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime

import psycopg
import zstandard
from psycopg import sql

from scripts import progress
from scripts.postgres import client as pg
from scripts.common import PilotlightError, Refused, UsageError, log, utcnow
from scripts.contract import SIDES, Contract
from scripts.postgres.dsn import parse_dsn, redact, with_dbname
from scripts.vault.envelope import IntegrityError
from scripts.vault.pipeline import widen_pipe
from scripts.vault.stream import BackupStream
from scripts.vault.layout import Manifest, select_backup, validate_backup_id

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_TABLE = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_$]{0,62}\.)?[A-Za-z_][A-Za-z0-9_$]{0,62}$")


@dataclass
class RestoreResult:
    backup_id: str
    side: str
    target: str
    mode: str  # "full" | "partial"
    executed: bool
    plan: list[str]
    snapshot_at: str
    restored_database: str | None = None
    kept_previous_as: str | None = None
    row_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def validate_request(target_dsn: str, from_side: str, tables, into_schema, jobs: int, backup_id) -> tuple[dict, str]:
    parts = parse_dsn(target_dsn, "--target")
    target = parts.get("dbname")
    if not target:
        raise UsageError("--target must name a database (dbname=... or postgresql://host/NAME)")
    if target in ("postgres", "template0", "template1"):
        raise UsageError(f"--target database {target!r} is a system database; restore into the service's database")
    if from_side not in SIDES:
        raise UsageError(f"--from-region must be one of {', '.join(SIDES)}, not {from_side!r}")
    if bool(tables) != bool(into_schema):
        raise UsageError("--tables and --into-schema go together (partial restore into a new schema)")
    if into_schema and not _IDENT.match(into_schema):
        raise UsageError(f"--into-schema {into_schema!r} is not a plain identifier")
    for t in tables or ():
        if not _TABLE.match(t):
            raise UsageError(f"--tables entry {t!r} is not a table name (name or schema.name)")
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if backup_id is not None:
        validate_backup_id(backup_id)
    return parts, target


def _stamp(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ")


def scratch_name(base: str, suffix: str) -> str:
    return f"{base[: 63 - len(suffix)]}{suffix}"


def perform_restore(contract: Contract, target_dsn: str, *, backup_id: str | None = None,
                    before: datetime | None = None, latest: bool = False, from_side: str = "primary",
                    tables: list[str] | None = None, into_schema: str | None = None,
                    terminate_sessions: bool = False, jobs: int = 1, dry_run: bool = False,
                    db: str | None = None, args=None) -> RestoreResult:
    """Restore a backup into ``target_dsn``'s database (or, partially, into a schema of it)."""
    _, target = validate_request(target_dsn, from_side, tables, into_schema, jobs, backup_id)
    started = time.monotonic()
    manifest, _head = select_backup(contract, from_side, db, backup_id=backup_id, before=before, latest=latest)
    stamp = _stamp(utcnow())
    scratch = scratch_name(target, f"_restore_{stamp}")
    previous = scratch_name(target, f"_pre_restore_{stamp}")
    bucket = contract.buckets[from_side].bucket
    plan = [f"backup {manifest.id} (snapshot {manifest.doc['times']['snapshot']}) from s3://{bucket} ({from_side})",
            f"metadata checked: {manifest.stored_bytes} stored bytes, version and checksum match the manifest"]
    if tables:
        plan += [f"restore tables {', '.join(tables)} into scratch database {scratch}",
                 f"copy them into new schema {into_schema} of the live database {target}; drop {scratch}"]
    else:
        plan += [f"restore into new database {scratch}, verify SHA-256 and row counts of {len(manifest.row_counts)} tables",
                 f"swap in one transaction: {target} (if it exists) -> {previous}, {scratch} -> {target} (old kept for rollback)"]
    result = RestoreResult(manifest.id, from_side, redact(target_dsn), "partial" if tables else "full", False, plan,
                           manifest.doc["times"]["snapshot"])
    if dry_run:
        return result
    admin = with_dbname(target_dsn, "postgres")
    with pg.connect(admin, autocommit=True) as guard:
        owner = _prepare(guard, target_dsn, target, scratch, tables, into_schema, terminate_sessions)
        scratch_dsn = with_dbname(target_dsn, scratch)
        swapped = False
        try:
            if tables:
                copy_extensions(with_dbname(target_dsn, target), scratch_dsn)
                _stream_restore(contract, from_side, manifest, scratch_dsn, jobs, args, tables)
                restored = pg.tables(scratch_dsn)
                if not restored:
                    raise PilotlightError(f"backup {manifest.id} has none of the requested tables")
                check_counts(scratch_dsn, manifest, only=restored)
                result.row_counts = move_tables(scratch_dsn, with_dbname(target_dsn, target), into_schema,
                                                {n: manifest.row_counts[n] for n in restored}, f"backup {manifest.id}")
            else:
                _stream_restore(contract, from_side, manifest, scratch_dsn, jobs, args)
                result.row_counts = check_counts(scratch_dsn, manifest)
                if owner is not None:
                    _copy_database_settings(guard, target, scratch)
                try:
                    with pg.connect(admin, autocommit=True) as conn:
                        previous = _swap(conn, target, scratch, previous, owner is not None, terminate_sessions)
                except psycopg.Error as exc:
                    raise PilotlightError(f"swap rolled back, {target} unchanged: {_pg_reason(exc)}") from None
                swapped = True
                result.restored_database = target
                result.kept_previous_as = previous if owner is not None else None
        finally:
            if not swapped:
                drop_database(admin, scratch)
    result.executed = True
    result.seconds = round(time.monotonic() - started, 3)
    return result


def trial_restore(contract: Contract, side: str, manifest: Manifest, server_dsn: str, args=None) -> dict[str, int]:
    """Restore into a throwaway database on ``server_dsn``'s server, check it, drop it (verify --test-restore)."""
    scratch = scratch_name(manifest.database, f"_verify_{_stamp(utcnow())}")
    admin = with_dbname(server_dsn, "postgres")
    with pg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(scratch)))
    try:
        _stream_restore(contract, side, manifest, with_dbname(server_dsn, scratch), 1, args)
        return check_counts(with_dbname(server_dsn, scratch), manifest)
    finally:
        drop_database(admin, scratch)


def _prepare(conn, target_dsn: str, target: str, scratch: str, tables, into_schema, terminate: bool) -> str | None:
    """Claim the target, clear what killed runs left, check it may be restored, create the scratch DB.

    A session advisory lock on ``conn`` (held until the restore ends) makes restores of one
    target run one at a time; so any ``<target>_restore_<ts>`` database found now was left by a
    run that was killed, and is dropped. Returns the target's owner (None if it does not exist).
    """
    try:
        (got,) = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (f"pilotlight-restore:{target}",)).fetchone()
        if not got:
            raise Refused(f"another restore of {target} is running on this server")
        pattern = re.compile(re.escape(scratch_name(target, "_restore_00000000T000000Z")[:-25]) + r"_restore_\d{8}T\d{6}Z")
        for (name,) in conn.execute("SELECT datname FROM pg_database").fetchall():
            if pattern.fullmatch(name):  # under the lock, even one named like ours (same second) is an orphan
                log.warning("dropping %s, left by an interrupted restore", name)
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        owner = _owner(conn, target)
        if tables:
            if owner is None:
                raise UsageError(f"--target database {target!r} does not exist; partial restore needs the live database")
            _require_new_schema(with_dbname(target_dsn, target), into_schema)
        elif owner is not None:
            _sessions(conn, target, terminate)
        create = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(scratch))
        if owner:
            create = sql.SQL("{} OWNER {}").format(create, sql.Identifier(owner))
        conn.execute(create)
        return owner
    except psycopg.Error as exc:
        raise PilotlightError(f"cannot prepare the restore of {target}: {_pg_reason(exc)}") from None


def _pg_reason(exc: psycopg.Error) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _owner(conn, name: str) -> str | None:
    row = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row[0] if row else None


def _sessions(conn, target: str, terminate: bool) -> None:
    """Refuse while others are connected, or end their sessions when told to."""
    rows = conn.execute(
        "SELECT pid, usename, application_name FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
        " AND backend_type = 'client backend'",  # autovacuum workers are ended by PostgreSQL itself on rename
        (target,),
    ).fetchall()
    if not rows:
        return
    if not terminate:
        who = ", ".join(sorted({f"{r[1]}/{r[2] or '?'}" for r in rows}))
        raise Refused(f"{len(rows)} session(s) connected to {target} ({who}); stop the application or pass --terminate-sessions")
    for pid, *_ in rows:
        conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))  # waits until the backend has exited
    log.warning("terminated %d session(s) on %s", len(rows), target)


def _copy_database_settings(conn, target: str, scratch: str) -> None:
    """Carry the live database's own settings and grants over to its replacement.

    pg_dump (without --create) does not include ``ALTER DATABASE ... SET`` or ``GRANT ... ON
    DATABASE``; they belong to the database, not its contents, so the restored one gets the
    live one's (e.g. a search_path, CONNECT revoked from PUBLIC and granted to the app role).
    """
    ident = sql.Identifier(scratch)
    try:
        for role, setting in conn.execute(
            "SELECT r.rolname, unnest(s.setconfig) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
            " LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE d.datname = %s", (target,)).fetchall():
            name, _, value = setting.partition("=")
            scope = sql.SQL("ROLE {} IN DATABASE").format(sql.Identifier(role)) if role else sql.SQL("DATABASE")
            conn.execute(sql.SQL("ALTER {} {} SET {} = {}").format(scope, ident, sql.Identifier(name), _setting(name, value)))
        acl = conn.execute(
            "SELECT a.grantee, a.privilege_type, a.is_grantable FROM pg_database d, aclexplode(d.datacl) a"
            " WHERE d.datname = %s AND a.grantee <> d.datdba", (target,)).fetchall()
        explicit = conn.execute("SELECT datacl IS NOT NULL FROM pg_database WHERE datname = %s", (target,)).fetchone()[0]
        if explicit:
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident))
        for grantee, privilege, grantable in acl:
            who = sql.SQL("PUBLIC") if grantee == 0 else sql.Identifier(
                conn.execute("SELECT rolname FROM pg_roles WHERE oid = %s", (grantee,)).fetchone()[0])
            conn.execute(sql.SQL("GRANT {} ON DATABASE {} TO {}{}").format(
                sql.SQL(privilege), ident, who, sql.SQL(" WITH GRANT OPTION" if grantable else "")))
    except psycopg.Error as exc:
        raise PilotlightError(f"cannot copy {target}'s database settings: {_pg_reason(exc)}") from None


_LIST_SETTINGS = {"search_path", "temp_tablespaces", "local_preload_libraries", "session_preload_libraries"}


def _setting(name: str, value: str) -> sql.Composable:
    """A stored setting as SQL: list settings element by element (as pg_dump does), others as one literal."""
    if name not in _LIST_SETTINGS:
        return sql.Literal(value)
    items = [item.strip() for item in value.split(",")]
    return sql.SQL(", ").join(sql.Literal(item[1:-1].replace('""', '"') if item[:1] == '"' else item) for item in items)


def _swap(conn, target: str, scratch: str, previous: str, exists: bool, terminate: bool) -> str:
    """Both renames in ONE transaction: the service's name always names a complete database.

    Returns the name the old database is kept under: ``previous``, or ``previous`` with a
    counter when a database kept by an earlier restore in the same second already has it.
    """
    with conn.transaction():
        if exists:
            _sessions(conn, target, terminate)
            base, n = previous, 1
            while conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (previous,)).fetchone():
                n += 1
                previous = f"{base[: 62 - len(str(n))]}_{n}"
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(target), sql.Identifier(previous)))
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(scratch), sql.Identifier(target)))
    return previous


def drop_database(admin_dsn: str, name: str) -> None:
    try:
        with pg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    except (psycopg.Error, PilotlightError) as exc:
        log.error("could not drop scratch database %s: %s", name, str(exc).splitlines()[0])


def _require_new_schema(dsn: str, schema: str) -> None:
    with pg.connect(dsn) as conn:
        if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone():
            raise Refused(f"schema {schema!r} already exists in the target; pick a new --into-schema")


def restore_cmd(dsn: str, jobs: int, tables: list[str] | None, source: str | None,
                 atomic: bool = False) -> tuple[list[str], dict]:
    """pg_restore stopping at the first error. Into a scratch database one transaction buys
    nothing (a failure drops the database) and would take a lock per large object, which
    exhausts max_locks_per_transaction on databases with many; into the live one (``atomic``) it
    makes a failed copy leave nothing behind."""
    conninfo, env = pg.client_args(dsn)
    cmd = [pg.binary("pg_restore"), "--exit-on-error", "--no-password", f"--dbname={conninfo}"]
    cmd += ["--single-transaction"] if atomic else [f"--jobs={jobs}"] if jobs > 1 else []
    for t in tables or ():
        schema, _, name = t.rpartition(".")
        if schema:
            cmd += [f"--schema={schema}"]
        cmd += [f"--table={name}"]
    if source:
        cmd.append(source)
    return cmd, env


def _stream_restore(contract: Contract, side: str, manifest: Manifest, dsn: str, jobs: int, args,
                    tables: list[str] | None = None) -> None:
    """Feed the verified dump to pg_restore; every check passes or the caller drops the scratch."""
    with progress.bar(args, f"restore {manifest.id}", total=manifest.stored_bytes) as bar:
        stream = BackupStream(contract, side, manifest, bar)
        try:
            if jobs > 1:
                _spooled(stream, dsn, jobs, tables)
            else:
                _piped(stream, dsn, tables)
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"backup {manifest.id}: compressed dump is corrupt ({exc})") from None
        finally:
            stream.close()


def _run_tail(stream, into: list[str]) -> None:
    for line in iter(stream.readline, b""):
        into.append(line.decode(errors="replace").rstrip())
        del into[:-20]


def _piped(stream: BackupStream, dsn: str, tables) -> None:
    cmd, env = restore_cmd(dsn, 1, tables, None)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    widen_pipe(proc.stdin)  # each 1 MiB chunk in one hand-over
    tail: list[str] = []
    reader = threading.Thread(target=_run_tail, args=(proc.stderr, tail), daemon=True)
    reader.start()
    try:
        open_pipe = True
        for chunk in stream:
            if open_pipe:
                try:
                    proc.stdin.write(chunk)
                except BrokenPipeError:
                    if proc.wait() != 0:  # it stopped at an error: no point reading on
                        break
                    open_pipe = False  # it has all it needs (--table); keep verifying the rest of the stream
        if proc.poll() not in (None, 0):
            reader.join(timeout=10)
            raise PilotlightError(f"pg_restore failed (stopped at the first error): {first_error(tail)}")
        stream.finish()
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        rc = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    reader.join(timeout=10)
    if rc != 0:
        raise PilotlightError(f"pg_restore failed (stopped at the first error): {first_error(tail)}")


def _spooled(stream: BackupStream, dsn: str, jobs: int, tables) -> None:
    """``pg_restore -j`` needs a seekable archive: a private 0600 file, removed whatever happens."""
    spool_dir = tempfile.mkdtemp(prefix="pilotlight-restore-")
    try:
        path = os.path.join(spool_dir, "dump")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            for chunk in stream:
                out.write(chunk)
        stream.finish()
        cmd, env = restore_cmd(dsn, jobs, tables, path)
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").splitlines()
            raise PilotlightError(f"pg_restore failed (stopped at the first error): {first_error(tail)}")
    finally:
        shutil.rmtree(spool_dir, ignore_errors=True)


def first_error(tail: list[str]) -> str:
    errors = [line for line in tail if "error" in line.lower()]
    return (errors or tail or ["no message"])[0]


def check_counts(dsn: str, manifest: Manifest, only: list[str] | None = None) -> dict[str, int]:
    """Row counts of the restored database equal the manifest's (all tables, or ``only``)."""
    expected = manifest.row_counts
    if only is not None:
        expected = {k: v for k, v in expected.items() if k in only}
    actual = pg.count_rows(dsn, sorted(k for k in expected if k != pg.LARGE_OBJECTS))
    if only is not None:
        actual.pop(pg.LARGE_OBJECTS, None)
    else:
        present = set(pg.tables(dsn))
        missing = sorted(set(expected) - present - {pg.LARGE_OBJECTS})
        if missing:
            raise IntegrityError(f"backup {manifest.id}: restored database lacks tables {', '.join(missing)}")
    diff = {k: (expected[k], actual.get(k)) for k in expected if actual.get(k) != expected[k]}
    if diff:
        shown = ", ".join(f"{k}: manifest {a}, restored {b}" for k, (a, b) in sorted(diff.items())[:5])
        raise IntegrityError(f"backup {manifest.id}: row counts differ from the manifest ({shown})")
    return actual


def copy_extensions(live_dsn: str, scratch_dsn: str) -> None:
    """Give the scratch database the live one's extensions before a table-only restore.

    ``pg_restore -t`` brings the tables but not the extensions their defaults, types or
    indexes use (e.g. pgcrypto's ``gen_random_bytes`` in a column default), so it would stop on
    the first such table. The extensions stay in the scratch database: only the restored
    tables' schema is copied into the live one.
    """
    try:
        with pg.connect(live_dsn, autocommit=True) as conn:
            rows = conn.execute("SELECT e.extname, n.nspname FROM pg_extension e"
                                " JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'").fetchall()
        with pg.connect(scratch_dsn, autocommit=True) as conn:
            for name, schema in rows:
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
                conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {}").format(
                    sql.Identifier(name), sql.Identifier(schema)))
    except psycopg.Error as exc:
        raise PilotlightError(f"cannot prepare the scratch database's extensions: {_pg_reason(exc)}") from None


def move_tables(scratch_dsn: str, live_dsn: str, schema: str, expected: dict[str, int], source: str) -> dict[str, int]:
    """Put the (verified) tables of the scratch database in ``schema`` and copy that schema into the
    live database in one transaction; the copied row counts must equal ``expected`` (table -> rows)."""
    restored = sorted(expected)
    with pg.connect(scratch_dsn, autocommit=True) as conn, conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        for name in restored:
            src, _, table = pg.split_name(name)
            conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(sql.Identifier(src, table), sql.Identifier(schema)))
    src_info, src_env = pg.client_args(scratch_dsn)
    dump = subprocess.Popen([pg.binary("pg_dump"), "-Fc", "-Z0", "--no-password", f"--schema={schema}",
                             f"--dbname={src_info}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=src_env)
    cmd, env = restore_cmd(live_dsn, 1, None, None, atomic=True)
    load = subprocess.run(cmd, stdin=dump.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    dump.stdout.close()
    dump_err = dump.stderr.read().decode(errors="replace").splitlines()
    if dump.wait() != 0 or load.returncode != 0:
        tail = load.stderr.decode(errors="replace").splitlines() or dump_err
        raise PilotlightError(f"copying schema {schema} into the live database failed: {first_error(tail)}")
    moved = {f"{schema}.{pg.split_name(n)[2]}": expected[n] for n in restored}
    live = pg.count_rows(live_dsn, sorted(moved))
    live.pop(pg.LARGE_OBJECTS, None)
    if live != moved:
        raise IntegrityError(f"{source}: rows copied into {schema} differ from the source's")
    return live
