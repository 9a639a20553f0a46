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

``--jobs N`` without a spool: ``pg_restore -j`` needs a seekable archive, the download is a
stream. So the stream's pre-data and data sections go through one ``pg_restore`` (download,
decryption and loading overlap, no plaintext on disk); the post-data section (index builds,
constraints, triggers: most of a restore after the data) is built from the small post-data
archive each backup keeps beside its dump, each table's indexes as soon as the stream has
loaded it, the rest by ``pg_restore -j N`` at the end (scripts.vault.postdata). A backup made
before that archive was kept restores with one job. Partial restore (``--tables``
with ``--into-schema``) restores just those tables into a scratch database, moves them into the
new schema and copies that schema into the live database; nothing existing is modified.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping

import psycopg
import zstandard
from psycopg import sql

from scripts import progress
from scripts.application import hooks as app_hooks
from scripts.application import smoke
from scripts.postgres import client as pg
from scripts.common import PilotlightError, Refused, UsageError, camel, log, shown, utcnow
from scripts.contract import Contract, Database
from stacks.vocabulary import SIDES
from scripts.postgres.dsn import parse_dsn, redact, with_dbname
from scripts.postgres import rolemap
from scripts.postgres.globals import create_missing_roles
from scripts.postgres.kept import KEPT, drop, list_kept, scratch_name
from scripts.steps import Steps
from scripts.units import size
from scripts.vault.envelope import IntegrityError
from scripts.vault.pipeline import widen_pipe
from scripts.vault.postdata import PostData
from scripts.vault.stream import BackupStream, read_globals, read_post_data
from scripts.vault.layout import Manifest, filing_name, id_database, select_backup, validate_backup_id

LOAD, INDEXES = "download, verify, load", "indexes and constraints (pg_restore)"
COUNTS, SWAP = "row counts against the manifest", "swap"
MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_RESERVED_SCHEMAS = {"information_schema"}
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
    roles_created: list[str] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    phases: list[dict] = field(default_factory=list)  # [{name, seconds}]: where the time went
    application: list[dict] = field(default_factory=list)  # the stop/start steps, timed (scripts.application.hooks)
    smoke_checks: list[dict] = field(default_factory=list)  # each with its result and time (scripts.application.smoke)
    rollback_command: str | None = None  # how to swap the kept copy back, when there is one

    def to_dict(self) -> dict:
        """camelCase keys, like every JSON output (the values, e.g. table names, are kept as they are)."""
        return {camel(k): v for k, v in asdict(self).items()}


def validate_request(target_dsn: str, from_side: str, tables, into_schema, jobs: int, backup_id) -> tuple[dict, str]:
    parts = parse_dsn(target_dsn, "--target")
    target = parts.get("dbname")
    if not target:
        raise UsageError("--target must name a database (dbname=... or postgresql://host/NAME)")
    if len(target.encode()) > MAX_IDENTIFIER_BYTES:
        raise UsageError(f"--target database name {shown(target)} is {len(target.encode())} bytes; PostgreSQL names "
                         f"are at most {MAX_IDENTIFIER_BYTES} bytes (longer ones are silently truncated)")
    if target in ("postgres", "template0", "template1"):
        raise UsageError(f"--target database {target!r} is a system database; restore into the service's database")
    if from_side not in SIDES:
        raise UsageError(f"--from-region must be one of {', '.join(SIDES)}, not {from_side!r}")
    if bool(tables) != bool(into_schema):
        raise UsageError("--tables and --into-schema go together (partial restore into a new schema)")
    if into_schema and not _IDENT.match(into_schema):
        raise UsageError(f"--into-schema {shown(into_schema)} is not a plain identifier (letters, digits and _, "
                         f"at most {MAX_IDENTIFIER_BYTES} characters)")
    if into_schema and (into_schema.lower().startswith("pg_") or into_schema.lower() in _RESERVED_SCHEMAS):
        raise UsageError(f"--into-schema {into_schema!r} is reserved by PostgreSQL (pg_* and information_schema); "
                         "pick a new schema name such as recovered")
    for t in tables or ():
        if not _TABLE.match(t):
            raise UsageError(f"--tables entry {shown(t)} is not a table name (name or schema.name, each at most "
                             f"{MAX_IDENTIFIER_BYTES} characters)")
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if backup_id is not None:
        validate_backup_id(backup_id)
    return parts, target


def _stamp(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ")


def perform_restore(contract: Contract, target_dsn: str, *, backup_id: str | None = None,
                    before: datetime | None = None, latest: bool = False, from_side: str = "primary",
                    tables: list[str] | None = None, into_schema: str | None = None,
                    terminate_sessions: bool = False, jobs: int = 1, dry_run: bool = False,
                    db: str | None = None, no_owner: bool = False, allow_rename: bool = False,
                    role_map: Mapping[str, str] | None = None, args=None, steps: Steps | None = None,
                    checks: bool = True) -> RestoreResult:
    """Restore a backup into ``target_dsn``'s database (or, partially, into a schema of it).

    A whole-database restore recreates the database as the backup knew it (scripts.postgres.globals):
    the roles the server lacks first, then the database with its encoding and locale, its contents,
    and only once those are verified its owner, comment, limits, settings and grants — so neither a
    short statement_timeout nor a CONNECTION LIMIT of the restored database gets in pg_restore's way.
    ``no_owner`` restores into another environment: objects owned by the restoring user, no grants,
    no roles created; ``role_map`` (old -> new) gives the source roles' objects and grants to the
    target's roles instead (scripts.postgres.rolemap).

    When the target is a protected database with an ``application`` in the contract, a whole-database
    restore stops it before the target is fenced and starts it after the swap — and again when the
    restore fails (scripts.application.hooks); the stop/start steps go to ``steps``. Then (unless
    ``checks`` is off: a drill runs them itself) the database's smoke checks run on the restored
    database; a failure is in ``smoke_checks``, and ``rollback_command`` says how to undo the swap.
    """
    _, target = validate_request(target_dsn, from_side, tables, into_schema, jobs, backup_id)
    started = time.monotonic()
    admin = with_dbname(target_dsn, "postgres")
    filed = db or (id_database(backup_id) if backup_id else filing_name(contract, target))
    manifest, _head = select_backup(contract, from_side, filed, backup_id=backup_id, before=before, latest=latest)
    target_checked = check_target(admin)  # before anything is downloaded
    role_map = dict(role_map or {})
    if role_map and (tables or no_owner):
        raise UsageError("--role-map is for whole-database restores, without --no-owner")
    mapped = _check_role_map(admin, role_map) if role_map else None
    came_from = manifest.doc["source"]["dbname"]
    if came_from != target and not allow_rename:
        raise Refused(f"backup {manifest.id} is of database {came_from!r}, not {target!r}; "
                      "pass --allow-rename to restore it under another name")
    if tables:
        _require_tables(manifest, tables)
    stamp = _stamp(utcnow())
    scratch = scratch_name(target, f"_restore_{stamp}")
    previous = scratch_name(target, f"{KEPT}{stamp}")
    bucket = contract.buckets[from_side].bucket
    protected = None if tables else protected_database(contract, target_dsn, target)
    hooks = app_hooks.for_database(contract, protected, "restore", steps)
    around = hooks.plan() if hooks is not None else []  # [stop, start]
    plan = [target_checked, check_space(admin, manifest),
            f"backup {manifest.id} (snapshot {manifest.doc['times']['snapshot']}) from s3://{bucket} ({from_side})",
            f"metadata checked: {size(manifest.stored_bytes)} stored, version and checksum match the manifest"]
    if tables:
        plan += [f"restore tables {', '.join(tables)} into scratch database {scratch}",
                 f"copy them into new schema {into_schema} of the live database {target}; drop {scratch}"]
    else:
        owned = "objects owned by the restoring user, no grants" if no_owner else \
            f"{mapped}; create the other roles the server lacks (without passwords)" if mapped else \
            "create the roles the server lacks (without passwords)"
        plan += [*around[:1], f"{owned}; restore into new database {scratch} with the backup's encoding and locale",
                 f"verify SHA-256 and row counts of {len(manifest.row_counts)} tables, then give it the backup's "
                 "owner, comment, connection limit, settings and grants",
                 f"fence {target} (if it exists: new sessions read-only, so no write lands in the kept copy)",
                 f"swap in one transaction: {target} (if it exists) -> {previous}, {scratch} -> {target} (old kept for rollback)",
                 *around[1:]]
    plan += smoke.plan(protected) if checks else []
    result = RestoreResult(manifest.id, from_side, redact(target_dsn), "partial" if tables else "full", False, plan,
                           manifest.doc["times"]["snapshot"])
    if dry_run:
        return result
    globals_ = None if tables else read_globals(contract, from_side, manifest)
    with app_hooks.stopped(hooks, f", {target} unchanged"), pg.connect(admin, autocommit=True) as guard, \
            progress.bar(args, f"restore {manifest.id}: download, verify, load", total=manifest.stored_bytes,
                         phase=LOAD) as bar:
        owner, fenced = _prepare(guard, target_dsn, target, scratch, tables, into_schema, terminate_sessions)
        properties, stand_ins = None, []
        swapped = False
        try:
            if role_map:
                stand_ins = _roles(rolemap.create_stand_ins, guard, role_map)
            if globals_ is not None:
                properties = globals_.for_database(scratch, owners=not no_owner, role_map=role_map)
                if not no_owner:
                    result.roles_created = _roles(create_missing_roles, guard, globals_, frozenset(role_map))
            _create_scratch(guard, scratch, properties, owner)
        except BaseException:
            _roles(rolemap.drop_stand_ins, guard, stand_ins)
            if fenced:
                _unfence(guard, target)
            raise
        scratch_dsn = with_dbname(target_dsn, scratch)
        try:
            if tables:
                copy_extensions(with_dbname(target_dsn, target), scratch_dsn)
                with tempfile.TemporaryDirectory(prefix="pilotlight-toc-") as tmp:
                    listing = os.path.join(tmp, "toc")
                    _write_listing(contract, from_side, manifest, tables, listing)
                    _stream_restore(contract, from_side, manifest, scratch_dsn, jobs, args, listing, bar=bar)
                bar.phase(f"copy {', '.join(tables)} into schema {into_schema}")
                restored = pg.tables(scratch_dsn)
                if not restored:
                    raise PilotlightError(f"backup {manifest.id} has none of the requested tables")
                check_counts(scratch_dsn, manifest, only=restored)
                result.row_counts = move_tables(scratch_dsn, with_dbname(target_dsn, target), into_schema,
                                                {n: manifest.row_counts[n] for n in restored}, f"backup {manifest.id}")
            else:
                _stream_restore(contract, from_side, manifest, scratch_dsn, jobs, args, no_owner=no_owner, bar=bar)
                bar.phase(COUNTS)
                result.row_counts = check_counts(scratch_dsn, manifest)
                if properties is not None:
                    _apply(guard, scratch, properties[1])
                elif owner is not None:
                    _copy_database_settings(guard, target, scratch)  # a backup from before globals were captured
                if role_map:
                    with pg.connect(scratch_dsn, autocommit=True) as conn:
                        _roles(rolemap.hand_over, conn, role_map)
                bar.phase(SWAP)
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
                if fenced:
                    _unfence(guard, target)
            rolemap.drop_stand_ins(guard, stand_ins)
        result.phases = bar.close()
    result.application = hooks.timings() if hooks is not None else []
    result.executed = True
    result.seconds = round(time.monotonic() - started, 3)
    if checks and protected is not None:
        result.smoke_checks = smoke.run_checks(protected, with_dbname(target_dsn, target))
    if result.kept_previous_as:
        result.rollback_command = f"pilotlight restore --target {shlex.quote(redact(target_dsn))} --rollback --yes"
    return result


def protected_database(contract: Contract, target_dsn: str, target: str) -> Database | None:
    """The stack's database this restore replaces: same name on one of its endpoints (or its service name).

    Only then are its application hooks run: a restore of ``orders`` into a scratch server must
    never stop production's application.
    """
    host = parse_dsn(target_dsn, "--target").get("host", "")
    for db in contract.databases:
        if db.db_name == target and host in (db.primary.host, db.standby.host, db.dns.record_name):
            return db
    return None


def check_target(admin_dsn: str) -> str:
    """Before any backup is read: the target server answers, takes writes, and lets us create databases."""
    with pg.connect(admin_dsn, autocommit=True) as conn:
        in_recovery, read_only, user, createdb = conn.execute(
            "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only') = 'on', current_user,"
            " (SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user)").fetchone()
        where = f"{conn.info.host}:{conn.info.port}"
    if in_recovery:
        raise Refused(f"target {where} is a read-only standby: promote it first or choose another target")
    if read_only:
        raise Refused(f"target {where} refuses writes (default_transaction_read_only is on): lift it or choose "
                      "another target")
    if not createdb:
        raise Refused(f"role {user} on {where} may not create databases: restore as a role with CREATEDB")
    return f"target {where} checked: reachable, a writable primary, {user} may create databases"


def check_space(admin_dsn: str, manifest: Manifest) -> str:
    """Free space for the restored copy, where it is knowable: a data directory on this machine.

    The restored database needs about the dump's size (the old one is kept until dropped). On a
    managed server the file system is not visible from SQL (RDS: the FreeStorageSpace metric).
    """
    need = int(manifest.doc["dump"]["bytes"])
    free = _free_bytes(admin_dsn)
    if free is None:
        return f"free space: not visible from here; the restored copy needs about {need >> 20} MiB"
    if free < need:
        raise Refused(f"the target's data directory has {free >> 20} MiB free; the restored copy needs about "
                      f"{need >> 20} MiB (drop kept copies or grow the volume)")
    return f"free space: {free >> 20} MiB free on the target's data directory, about {need >> 20} MiB needed"


def _free_bytes(admin_dsn: str) -> int | None:
    try:
        with pg.connect(admin_dsn, autocommit=True) as conn:
            # The server's own address, not the name dialled: a DNS name can still lead to this machine.
            directory, address = conn.execute(
                "SELECT current_setting('data_directory'), host(inet_server_addr())").fetchone()
        if address not in ("127.0.0.1", "::1") or not os.path.isdir(directory):
            return None
        st = os.statvfs(directory)
    except (psycopg.Error, OSError):  # data_directory is for superusers and pg_read_all_settings only
        return None
    return st.f_bavail * st.f_frsize


def trial_restore(contract: Contract, side: str, manifest: Manifest, server_dsn: str, args=None) -> dict[str, Any]:
    """Restore into a throwaway database on ``server_dsn``'s server, check it, drop it (verify --test-restore).

    Returns what was restored and checked: the scratch database, the server, tables and rows
    compared with the manifest, and how long it took.
    """
    started = time.monotonic()
    scratch = scratch_name(manifest.database, f"_verify_{_stamp(utcnow())}")
    globals_ = read_globals(contract, side, manifest)
    admin = with_dbname(server_dsn, "postgres")
    with pg.connect(admin, autocommit=True) as conn:
        _create_scratch(conn, scratch, globals_.for_database(scratch, owners=False) if globals_ else None, None)
    try:
        _stream_restore(contract, side, manifest, with_dbname(server_dsn, scratch), 1, args, no_owner=True)
        counts = check_counts(with_dbname(server_dsn, scratch), manifest)
    finally:
        drop_database(admin, scratch)
    parts = parse_dsn(server_dsn, "--server")
    return {"database": scratch, "server": f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}",
            "tables": len(counts), "rows": sum(counts.values()), "rowCounts": counts,
            "dumpBytes": manifest.doc["dump"]["bytes"], "seconds": round(time.monotonic() - started, 3), "dropped": True}


def _prepare(conn, target_dsn: str, target: str, scratch: str, tables, into_schema,
             terminate: bool) -> tuple[str | None, bool]:
    """Claim the target, clear what killed runs left, check it may be restored, fence it.

    Returns the target's owner (None if it does not exist) and whether this run fenced it. The
    fence (``default_transaction_read_only`` on the target, set before its sessions are checked)
    holds from here to the swap: a session that connects meanwhile can read but not write, so
    no write is stranded in the copy the swap keeps. A failed restore lifts it again.

    A session advisory lock on ``conn`` (held until the restore ends) makes restores of one
    target run one at a time; so any ``<target>_restore_<ts>`` database found now was left by a
    run that was killed, and is dropped.
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
        owner, fenced = _owner(conn, target), False
        if tables:
            if owner is None:
                raise UsageError(f"--target database {target!r} does not exist; partial restore needs the live database")
            _require_new_schema(with_dbname(target_dsn, target), into_schema)
        elif owner is not None:
            fenced = _fence(conn, target)
            try:
                _sessions(conn, target, terminate)
            except BaseException:
                if fenced:
                    _unfence(conn, target)
                raise
        return owner, fenced
    except psycopg.Error as exc:
        raise PilotlightError(f"cannot prepare the restore of {target}: {_pg_reason(exc)}") from None


_FENCE = "default_transaction_read_only"


def _fence(conn, target: str) -> bool:
    """Make new sessions on ``target`` read-only; False if it already was (a cutover's fence is left as found)."""
    row = conn.execute("SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
                       " WHERE d.datname = %s AND s.setrole = 0 AND %s = ANY(s.setconfig)",
                       (target, f"{_FENCE}=on")).fetchone()
    if row:
        return False
    conn.execute(sql.SQL("ALTER DATABASE {} SET {} = on").format(sql.Identifier(target), sql.Identifier(_FENCE)))
    return True


def _unfence(conn, target: str) -> None:
    try:
        conn.execute(sql.SQL("ALTER DATABASE {} RESET {}").format(sql.Identifier(target), sql.Identifier(_FENCE)))
    except psycopg.Error as exc:
        log.error("could not lift the restore's fence on %s (ALTER DATABASE %s RESET %s): %s",
                  target, target, _FENCE, _pg_reason(exc))


def _roles(step, conn, *args):
    """A step on roles (recreate, stand in, hand over, drop), its PostgreSQL error as one line."""
    try:
        return step(conn, *args)
    except psycopg.Error as exc:
        raise PilotlightError(f"cannot {step.__name__.replace('_', ' ')} for the restore: {_pg_reason(exc)}") from None


def _check_role_map(admin_dsn: str, role_map: Mapping[str, str]) -> str:
    with pg.connect(admin_dsn, autocommit=True) as conn:
        return rolemap.check(conn, role_map, f"{conn.info.host}:{conn.info.port}")


def _create_scratch(conn, scratch: str, properties: tuple[str, list[str]] | None, owner: str | None) -> None:
    """The scratch database: as the backup's CREATE DATABASE says (encoding, locale, ICU), else plain."""
    if properties is not None:
        create = sql.SQL(properties[0])
    else:
        create = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(scratch))
        if owner:
            create = sql.SQL("{} OWNER {}").format(create, sql.Identifier(owner))
    try:
        conn.execute(create)
    except psycopg.Error as exc:
        raise PilotlightError(f"cannot create the scratch database {scratch}: {_pg_reason(exc)}") from None


def _apply(conn, scratch: str, statements: list[str]) -> None:
    """The backup's database statements (owner, comment, limits, settings, grants) on the restored copy."""
    for stmt in statements:
        try:
            conn.execute(sql.SQL(stmt))
        except psycopg.Error as exc:
            raise PilotlightError(f"cannot give {scratch} the backup's database properties: {_pg_reason(exc)}") from None


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
            if name == _FENCE:
                continue
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
    if name.lower() not in _LIST_SETTINGS:
        return sql.Literal(value)
    return sql.SQL(", ").join(sql.Literal(item) for item in split_guc_list(value))


def split_guc_list(value: str) -> list[str]:
    """PostgreSQL's SplitGUCList: commas outside double quotes separate; quotes are removed, ``""`` is ``"``."""
    items, cur, quoted, i = [], "", False, 0
    while i < len(value):
        ch = value[i]
        if ch == '"':
            if quoted and value[i + 1:i + 2] == '"':
                cur += '"'
                i += 1
            else:
                quoted = not quoted
        elif ch == "," and not quoted:
            items.append(cur.strip())
            cur = ""
        else:
            cur += ch
        i += 1
    return items + [cur.strip()]


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


def restore_cmd(dsn: str, jobs: int, listing: str | None, source: str | None,
                atomic: bool = False, no_owner: bool = False, sections: tuple[str, ...] = ()) -> tuple[list[str], dict]:
    """pg_restore stopping at the first error. Into a scratch database one transaction buys
    nothing (a failure drops the database) and would take a lock per large object, which
    exhausts max_locks_per_transaction on databases with many; into the live one (``atomic``) it
    makes a failed copy leave nothing behind."""
    conninfo, env = pg.client_args(dsn)
    cmd = [pg.binary("pg_restore"), "--exit-on-error", "--no-password", f"--dbname={conninfo}"]
    cmd += ["--single-transaction"] if atomic else [f"--jobs={jobs}"] if jobs > 1 else []
    cmd += ["--no-owner", "--no-acl"] if no_owner else []
    cmd += [f"--use-list={listing}"] if listing else []
    cmd += [f"--section={section}" for section in sections]
    if source:
        cmd.append(source)
    return cmd, env


def _stream_restore(contract: Contract, side: str, manifest: Manifest, dsn: str, jobs: int, args,
                    listing: str | None = None, no_owner: bool = False, bar: progress.Bar | None = None) -> None:
    """Feed the verified dump to pg_restore; every check passes or the caller drops the scratch."""
    if bar is None:
        with progress.bar(args, f"restore {manifest.id}: download, verify, load", total=manifest.stored_bytes,
                          phase=LOAD) as own:
            return _stream_restore(contract, side, manifest, dsn, jobs, args, listing, no_owner, own)
    post_data = read_post_data(contract, side, manifest) if jobs > 1 and listing is None else None
    if jobs > 1 and listing is None and post_data is None:
        log.warning("backup %s has no post-data archive (made by an older version): restoring with one pg_restore job",
                    manifest.id)
    stream = BackupStream(contract, side, manifest, bar)
    try:
        if post_data is not None:
            _parallel(stream, dsn, jobs, post_data, no_owner, bar)
        else:
            _piped(stream, dsn, listing, no_owner, bar)
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"backup {manifest.id}: compressed dump is corrupt ({exc})") from None
    finally:
        stream.close()


def _run_tail(stream, into: list[str], on_line=None) -> None:
    for line in iter(stream.readline, b""):
        into.append(line.decode(errors="replace").rstrip())
        if on_line is not None:
            on_line(into[-1])
        del into[:-20]


def _piped(stream: BackupStream, dsn: str, listing: str | None, no_owner: bool = False,
           bar: progress.Bar | None = None, sections: tuple[str, ...] = (), on_line=None) -> None:
    cmd, env = restore_cmd(dsn, 1, listing, None, no_owner=no_owner, sections=sections)
    cmd += ["--verbose"] if on_line is not None else []
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    widen_pipe(proc.stdin)  # each 1 MiB chunk in one hand-over
    tail: list[str] = []
    reader = threading.Thread(target=_run_tail, args=(proc.stderr, tail, on_line), daemon=True)
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
        if bar is not None and not sections:
            bar.phase(INDEXES)  # every byte is in: pg_restore finishes the data, then indexes and constraints
        rc = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    reader.join(timeout=10)
    if rc != 0:
        raise PilotlightError(f"pg_restore failed (stopped at the first error): {first_error(tail)}")


def _parallel(stream: BackupStream, dsn: str, jobs: int, post_data: bytes, no_owner: bool = False,
              bar: progress.Bar | None = None) -> None:
    """Pre-data and data from the stream through one pg_restore; post-data beside and after it
    (scripts.vault.postdata) from the backup's post-data archive.

    That archive holds no rows; it is written to a private 0600 file in a 0700 temp dir, removed
    whatever happens. Index builds may start before the stream has ended (on authenticated chunks,
    in the scratch database); the swap waits for every check, and any failure leaves the scratch
    database to the caller, which drops it.
    """
    work = tempfile.mkdtemp(prefix="pilotlight-restore-")
    try:
        path = os.path.join(work, "post-data")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(post_data)
        post = PostData(path, dsn, jobs, work,
                        lambda d, j, listing, source: restore_cmd(d, j, listing, source, no_owner=no_owner))
        try:
            _piped(stream, dsn, None, no_owner, bar, sections=("pre-data", "data"), on_line=post.line)
            if bar is not None:
                bar.phase(f"indexes and constraints (pg_restore -j {jobs})")
            post.finish()
        finally:
            post.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


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


def _table_key(name: str) -> tuple[str, str]:
    schema, _, table = name.rpartition(".")
    return schema or "public", table


def _require_tables(manifest: Manifest, tables: list[str]) -> None:
    """Every requested table is in the backup (checked on the manifest, before anything is downloaded)."""
    known = {(schema, table) for schema, _, table in map(pg.split_name, set(manifest.row_counts) - {pg.LARGE_OBJECTS})}
    missing = [t for t in tables if _table_key(t) not in known]
    if missing:
        raise UsageError(f"backup {manifest.id} has no table {', '.join(missing)} (see its manifest's rowCounts)")


# TOC entries a table needs before it can be created: the types and domains of its columns and the
# schemas they live in (pg_restore -t alone brings none of them); the tables' own entries follow.
_TOC_LINE = re.compile(r"^\d+; \d+ \d+ (SCHEMA|TYPE|DOMAIN|COLLATION|TABLE DATA|TABLE) (.*)$")


def _write_listing(contract: Contract, side: str, manifest: Manifest, tables: list[str], path: str) -> None:
    """A ``pg_restore --use-list`` file: the requested tables and their data, with every type they may use.

    The archive's table of contents comes from the backup's first bytes (``pg_restore --list``
    stops reading after it); entries keep the archive's order, as a piped restore needs.
    """
    wanted = [f"{schema} {table} " for schema, table in map(_table_key, tables)]
    keep = []
    for line in _archive_toc(contract, side, manifest):
        m = _TOC_LINE.match(line)
        if not m or (m.group(1) == "SCHEMA" and m.group(2).startswith("- public ")):
            continue
        if m.group(1).startswith("TABLE") and not any(m.group(2).startswith(w) for w in wanted):
            continue
        keep.append(line)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(keep) + "\n")


def _archive_toc(contract: Contract, side: str, manifest: Manifest) -> list[str]:
    stream = BackupStream(contract, side, manifest)
    proc = subprocess.Popen([pg.binary("pg_restore"), "--list"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout.read().decode(errors="replace").splitlines()),
                              daemon=True)
    reader.start()
    try:
        for chunk in stream:
            try:
                proc.stdin.write(chunk)
            except BrokenPipeError:
                break
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"backup {manifest.id}: compressed dump is corrupt ({exc})") from None
    finally:
        stream.close()
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        rc = proc.wait(timeout=60)
        reader.join(timeout=10)
    if rc != 0:
        raise PilotlightError(f"backup {manifest.id}: pg_restore cannot read the archive's table of contents")
    return lines


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
    dump = subprocess.Popen([pg.binary("pg_dump"), "-Fc", "-Z0", "--no-password",
                             f'--schema="{schema}"',  # a pattern: quoted, so a mixed-case name keeps its case
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


def rollback(target_dsn: str, *, terminate_sessions: bool = False, dry_run: bool = False) -> dict:
    """Swap the newest kept copy back in; the database it replaces becomes a kept copy itself.

    Both renames in one transaction (as the restore's swap), and the restore's fence on the kept
    copy is lifted in the same transaction, so the name always names a complete, writable database.
    """
    _, target = validate_request(target_dsn, "primary", None, None, 1, None)
    admin = with_dbname(target_dsn, "postgres")
    with pg.connect(admin, autocommit=True) as conn:
        (got,) = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (f"pilotlight-restore:{target}",)).fetchone()
        if not got:
            raise Refused(f"a restore of {target} is running on this server")
        kept = list_kept(conn, target)
        if not kept:
            raise Refused(f"no kept copy of {target} to roll back to (restore keeps one per swap)")
        aside = scratch_name(target, f"{KEPT}{_stamp(utcnow())}")
        out = {"target": target, "restoredFrom": kept[0].name, "keptAs": aside, "executed": False,
               "plan": [f"swap in one transaction: {target} -> {aside} (kept), {kept[0].name} -> {target}, "
                        f"and lift the restore's fence on it"]}
        if dry_run:
            return out
        try:
            with conn.transaction():
                exists = _owner(conn, target) is not None
                aside = _swap(conn, target, kept[0].name, aside, exists, terminate_sessions) if exists else None
                if not exists:  # the target is gone: the kept copy simply takes its name
                    _swap(conn, target, kept[0].name, "", False, terminate_sessions)
                conn.execute(sql.SQL("ALTER DATABASE {} RESET {}").format(sql.Identifier(target), sql.Identifier(_FENCE)))
        except psycopg.Error as exc:
            raise PilotlightError(f"rollback undone, {target} unchanged: {_pg_reason(exc)}") from None
        out.update(keptAs=aside, executed=True)
        return out


def drop_kept(target_dsn: str, older_than: timedelta, *, dry_run: bool = False) -> dict:
    """Drop the kept copies of the target older than ``older_than``; the newer ones stay."""
    _, target = validate_request(target_dsn, "primary", None, None, 1, None)
    with pg.connect(with_dbname(target_dsn, "postgres"), autocommit=True) as conn:
        kept = list_kept(conn, target)
        cut = utcnow() - older_than
        old = [k for k in kept if k.kept_at < cut]
        if not dry_run:
            for k in old:
                try:
                    drop(conn, k)
                except psycopg.Error as exc:
                    raise PilotlightError(f"cannot drop kept copy {k.name}: {_pg_reason(exc)}") from None
    return {"target": target, "executed": not dry_run, "dropped" if not dry_run else "wouldDrop": [k.to_dict() for k in old],
            "kept": [k.to_dict() for k in kept if k not in old]}


def kept_copies(target_dsn: str) -> dict:
    _, target = validate_request(target_dsn, "primary", None, None, 1, None)
    with pg.connect(with_dbname(target_dsn, "postgres"), autocommit=True) as conn:
        kept = list_kept(conn, target)
    return {"target": target, "kept": [k.to_dict() for k in kept], "bytes": sum(k.bytes for k in kept)}


_AGE = re.compile(r"^(\d+)([smhdw])$")


def parse_age(text: str) -> timedelta:
    m = _AGE.match(text or "")
    if not m:
        raise UsageError(f"--drop-kept {text!r} is not an age like 7d, 12h or 30m")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
    return timedelta(**{unit: int(m.group(1))})
