"""Copy chosen tables/rows from a restored instance back into the live database.

"Row X was fine at 10:42": the restored instance has it, the live database does not (or has it
damaged). The copy goes through the verified partial-restore path of ``scripts.vault.restore``:

1. ``pg_dump`` of the chosen tables from the restored instance into a scratch database on the
   live server (with the live database's extensions), row counts checked against the source;
2. the tables are moved into a NEW schema and that schema is copied into the live database in one
   transaction (``restore.move_tables``), counts checked again;
3. one transaction inserts, per table, the staged rows (optionally only those matching
   ``--where``, a condition on the staged row ``s``) whose primary key the live table does not
   have; with ``overwrite`` (``--overwrite``: corrupted rows) staged rows also replace the live
   rows with the same key that differ. Rows are never deleted, and rows the staged copy does
   not have are never touched; the staged schema is kept for comparison.

On any failure before step 3 commits the live tables are untouched (the scratch database is
dropped; a half-copied schema is rolled back by ``pg_restore --single-transaction``).
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from scripts.postgres import client as pg
from scripts.common import PilotlightError, Refused, UsageError
from scripts.postgres.dsn import with_dbname
from scripts.vault.restore import copy_extensions, drop_database, first_error, move_tables, restore_cmd


@dataclass
class CopyBack:
    schema: str
    tables: list[str]
    inserted: dict[str, int] = field(default_factory=dict)
    staged: dict[str, int] = field(default_factory=dict)


def _qualified(name: str) -> str:
    return name if "." in name else f"public.{name}"


def _primary_key(conn, table: str) -> list[str]:
    schema, _, name = pg.split_name(table)
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = format('%%I.%%I', %s::text, %s::text)::regclass AND i.indisprimary ORDER BY a.attnum",
        (schema, name)).fetchall()
    return [r[0] for r in rows]


def check_tables(live_dsn: str, tables: list[str]) -> dict[str, list[str]]:
    """Each table exists in the live database and has a primary key (rows are matched by it)."""
    keys = {}
    with pg.connect(live_dsn) as conn:
        for table in tables:
            schema, _, name = pg.split_name(table)
            if not conn.execute("SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))", (schema, name)).fetchone()[0]:
                raise UsageError(f"--copy-back table {table} does not exist in the live database")
            keys[table] = _primary_key(conn, table)
            if not keys[table]:
                raise UsageError(f"--copy-back table {table} has no primary key; copy it with `restore --tables` instead")
    return keys


def copy_back(source_dsn: str, live_dsn: str, tables: list[str], schema: str, where: str | None,
              stamp: str, overwrite: bool = False) -> CopyBack:
    """Stage ``tables`` from ``source_dsn`` into ``schema`` of the live database, then insert what is missing."""
    tables = [_qualified(t) for t in tables]
    keys = check_tables(live_dsn, tables)
    with pg.connect(live_dsn) as conn:
        if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone():
            raise Refused(f"schema {schema!r} already exists in the live database; pick another --into-schema")
    expected = pg.count_rows(source_dsn, tables)
    expected.pop(pg.LARGE_OBJECTS, None)
    live_db = psycopg.conninfo.conninfo_to_dict(live_dsn)["dbname"]
    scratch = f"{live_db[:40]}_pitr_{stamp}"
    admin = with_dbname(live_dsn, "postgres")
    with pg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(scratch)))
    result = CopyBack(schema, tables)
    try:
        scratch_dsn = with_dbname(live_dsn, scratch)
        copy_extensions(live_dsn, scratch_dsn)
        _dump_into(source_dsn, scratch_dsn, tables)
        got = pg.count_rows(scratch_dsn, tables)
        got.pop(pg.LARGE_OBJECTS, None)
        if got != expected:
            raise PilotlightError(f"copy of {', '.join(tables)} from the restored instance is incomplete: {got} != {expected}")
        result.staged = move_tables(scratch_dsn, live_dsn, schema, expected, "restored instance")
    finally:
        drop_database(admin, scratch)
    result.inserted = _insert_missing(live_dsn, schema, keys, where, overwrite)
    return result


def _dump_into(source_dsn: str, scratch_dsn: str, tables: list[str]) -> None:
    src_info, src_env = pg.client_args(source_dsn)
    cmd = [pg.binary("pg_dump"), "-Fc", "-Z0", "--no-password", "--no-owner", f"--dbname={src_info}"]
    cmd += [f"--table={t}" for t in tables]
    dump = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=src_env)
    load_cmd, env = restore_cmd(scratch_dsn, 1, None, None, no_owner=True)
    for t in tables:  # -t: the tables, not constraints on others
        schema, _, name = t.rpartition(".")
        load_cmd += [f"--schema={schema}"] if schema else []
        load_cmd += [f"--table={name}"]
    load = subprocess.run(load_cmd, stdin=dump.stdout, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, env=env)
    dump.stdout.close()
    dump_err = dump.stderr.read().decode(errors="replace").splitlines()
    if dump.wait() != 0 or load.returncode != 0:
        tail = load.stderr.decode(errors="replace").splitlines() or dump_err
        raise PilotlightError(f"copying {', '.join(tables)} from the restored instance failed: {first_error(tail)}")


def _insert_missing(live_dsn: str, schema: str, keys: dict[str, list[str]], where: str | None,
                    overwrite: bool) -> dict[str, int]:
    """One transaction: the staged rows the live tables lack (by primary key), and with ``overwrite``
    the staged version of rows that differ; nothing else touched. Returns rows written per table."""
    inserted = {}
    try:
        with pg.connect(live_dsn) as conn, conn.transaction():
            for table, key in keys.items():
                live_schema, _, name = pg.split_name(table)
                live, staged = sql.Identifier(live_schema, name), sql.Identifier(schema, name)
                cols = conn.execute(
                    "SELECT attname, attidentity <> '' FROM pg_attribute WHERE attrelid = "
                    "format('%%I.%%I', %s::text, %s::text)::regclass AND attnum > 0 AND NOT attisdropped "
                    "AND attgenerated = '' ORDER BY attnum", (live_schema, name)).fetchall()
                names = [c for c, _ in cols]
                col_list = sql.SQL(", ").join(map(sql.Identifier, names))
                staged_cols = sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in names)
                filter_ = sql.SQL(" WHERE ({})").format(sql.SQL(where)) if where else sql.SQL("")
                if overwrite:
                    settable = [c for c, identity in cols if c not in key and not identity]
                    query = sql.SQL(
                        "INSERT INTO {live} AS l ({cols}) OVERRIDING SYSTEM VALUE SELECT {scols} FROM {staged} s{filter} "
                        "ON CONFLICT ({key}) DO UPDATE SET {sets} WHERE ({lcols}) IS DISTINCT FROM ({ecols})").format(
                        live=live, cols=col_list, scols=staged_cols, staged=staged, filter=filter_,
                        key=sql.SQL(", ").join(map(sql.Identifier, key)),
                        sets=sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in settable),
                        lcols=sql.SQL(", ").join(sql.SQL("l.{}").format(sql.Identifier(c)) for c in settable),
                        ecols=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in settable))
                else:
                    match = sql.SQL(" AND ").join(sql.SQL("l.{k} = s.{k}").format(k=sql.Identifier(k)) for k in key)
                    query = sql.SQL("INSERT INTO {live} ({cols}) OVERRIDING SYSTEM VALUE SELECT {scols} FROM {staged} s "
                                    "WHERE NOT EXISTS (SELECT 1 FROM {live} l WHERE {match}){extra}").format(
                        live=live, cols=col_list, staged=staged, match=match, scols=staged_cols,
                        extra=sql.SQL(" AND ({})").format(sql.SQL(where)) if where else sql.SQL(""))
                inserted[table] = conn.execute(query).rowcount
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PilotlightError(f"copy-back rolled back, live tables unchanged (staged copy kept in schema {schema}): "
                              f"{first}") from None
    return inserted
