"""Whole-database fidelity: the database's own properties and its roles come back wherever it is restored.

A fingerprint of everything ``pg_dump --create`` and ``pg_dumpall --globals-only`` know about
one database (owner, encoding, locale/ICU, comment, connection limit, ACL, per-database and
per-role settings, the roles themselves, object ownership, collation order) must match after a
restore onto an EMPTY server (no roles, no extensions), over the same name, and from the DR
vault; databases in SQL_ASCII and LATIN1, or with a DMY DateStyle and short timeouts, back up
and restore.
"""
from __future__ import annotations

import json

import psycopg
import pytest

from scripts.commands import backup, restore
from tests.vault.test_faults import wait_replicated

ROLES = ["fid_app", "fid_ro"]
SETUP_ROLES = [
    "DROP ROLE IF EXISTS fid_app", "DROP ROLE IF EXISTS fid_ro",
    "CREATE ROLE fid_ro NOLOGIN", "CREATE ROLE fid_app LOGIN CONNECTION LIMIT 5", "GRANT fid_ro TO fid_app",
    "ALTER ROLE fid_app SET lock_timeout = '3s'",
]
DATABASE = [
    "CREATE DATABASE fid OWNER fid_app CONNECTION LIMIT 7 TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'de-DE'",
    "COMMENT ON DATABASE fid IS E'the \\'fid\\' database\\nsecond line'",
    """ALTER DATABASE fid SET search_path = "a,b", public""",
    "ALTER DATABASE fid SET statement_timeout = '50ms'",
    "ALTER DATABASE fid SET idle_in_transaction_session_timeout = '100ms'",
    "ALTER DATABASE fid SET DateStyle = 'SQL, DMY'",
    "ALTER ROLE fid_app IN DATABASE fid SET work_mem = '8MB'",
    "REVOKE ALL ON DATABASE fid FROM PUBLIC", "GRANT CONNECT ON DATABASE fid TO fid_ro",
    "GRANT CONNECT, TEMP ON DATABASE fid TO fid_app WITH GRANT OPTION",
]
CONTENT = [
    "SET statement_timeout = 0",
    'CREATE SCHEMA "a,b" AUTHORIZATION fid_app',
    "CREATE TABLE words (w text, at timestamptz DEFAULT '2026-03-04 05:06:07+00')",
    "INSERT INTO words (w) VALUES ('z'), ('ä'), ('o'), ('Ö'), ('a')",
    "INSERT INTO words (w) SELECT 'w' || g FROM generate_series(1, 200000) g",
    "ALTER TABLE words OWNER TO fid_app", "GRANT SELECT ON words TO fid_ro",
]

DB_PROPS = ("SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype, datlocprovider,"
            " daticulocale, datconnlimit, datacl::text, shobj_description(oid, 'pg_database')"
            " FROM pg_database WHERE datname = %s")
DB_SETTINGS = ("SELECT coalesce(r.rolname, '-'), s.setconfig FROM pg_db_role_setting s JOIN pg_database d"
               " ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE d.datname = %s ORDER BY 1")
ROLE_PROPS = ("SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication,"
              " rolbypassrls, rolconnlimit, rolconfig, array(SELECT b.rolname FROM pg_auth_members m"
              " JOIN pg_roles b ON b.oid = m.roleid WHERE m.member = r.oid ORDER BY 1)"
              " FROM pg_roles r WHERE rolname = ANY(%s) ORDER BY 1")
INSIDE = {
    "rows": """SELECT count(*), md5(string_agg(w || at::text, ',' ORDER BY w COLLATE "C")) FROM words""",
    "order": "SELECT string_agg(w, ',' ORDER BY w) FROM words WHERE w !~ '^w[0-9]'",
    "search_path": "SELECT current_setting('search_path')",
    "owners": "SELECT string_agg(tableowner || ':' || tablename, ',') FROM pg_tables WHERE schemaname = 'a,b'",
    "acl": "SELECT relacl::text FROM pg_class WHERE relname = 'words'",
    "schema": """SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'a,b'""",
}


def fingerprint(dsn_of, dbname: str) -> dict:
    """Database-level properties, the roles, and what they mean inside the database."""
    with psycopg.connect(dsn_of("postgres")) as conn:
        out = {"database": conn.execute(DB_PROPS, (dbname,)).fetchall(),
               "settings": conn.execute(DB_SETTINGS, (dbname,)).fetchall(),
               "roles": conn.execute(ROLE_PROPS, (ROLES,)).fetchall()}
    with psycopg.connect(dsn_of(dbname), options="-c statement_timeout=0") as conn:
        out.update({k: conn.execute(q).fetchall() for k, q in INSIDE.items()})
    return out


@pytest.fixture(scope="module")
def fid(env):
    env.execute("postgres", "DROP DATABASE IF EXISTS fid WITH (FORCE)", *SETUP_ROLES, *DATABASE)
    env.execute("fid", *CONTENT)
    before = fingerprint(env.dsn, "fid")
    assert before["owners"] == [("fid_app:words",)] and before["order"] == [("a,ä,o,Ö,z",)] and before["search_path"] == [('"a,b", public',)]
    return before


def take(env, capsys, dbname: str) -> dict:
    assert backup.main(env.args("--tier", "daily", "--source", env.dsn(dbname), "--json")) == 0, capsys.readouterr()
    return json.loads(capsys.readouterr().out)


def test_database_properties_and_roles_survive_onto_an_empty_server(env, fid, empty_server, capsys):
    manifest = take(env, capsys, "fid")
    assert {"fid_app", "fid_ro"} <= set(manifest["globals"]["roles"]) and manifest["globals"]["owner"] == "fid_app"
    raw = env.s3().get_object(Bucket=env.bucket(), Key=manifest["globals"]["key"])["Body"].read()
    assert b"fid_app" not in raw and b"CONNECTION LIMIT" not in raw  # sealed like the dump
    assert empty_server.query("postgres", "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'fid%'") == [(0,)]

    rc = restore.main(env.args("--target", empty_server.dsn("fid"), "--backup", manifest["id"], "--yes", "--json"))
    result = json.loads(capsys.readouterr().out)
    assert rc == 0, result
    assert result["rolesCreated"] == ROLES
    assert fingerprint(empty_server.dsn, "fid") == fid


def test_database_properties_survive_over_the_same_name_and_from_dr(env, fid, capsys):
    manifest = take(env, capsys, "fid")
    env.execute("postgres", "ALTER DATABASE fid RESET ALL", "COMMENT ON DATABASE fid IS NULL",
                "ALTER DATABASE fid CONNECTION LIMIT -1")  # lost since the backup
    assert restore.main(env.args("--target", env.dsn("fid"), "--backup", manifest["id"], "--yes")) == 0
    capsys.readouterr()
    assert fingerprint(env.dsn, "fid") == fid

    wait_replicated(env, manifest["id"])
    assert restore.main(env.args("--target", env.dsn("fid"), "--backup", manifest["id"], "--from-region", "dr",
                                 "--terminate-sessions", "--yes")) == 0, capsys.readouterr()
    capsys.readouterr()
    assert fingerprint(env.dsn, "fid") == fid


def test_no_owner_restores_into_another_environment(env, fid, empty_server, capsys):
    manifest = take(env, capsys, "fid")
    rc = restore.main(env.args("--target", empty_server.dsn("fid_other_env"), "--backup", manifest["id"],
                               "--no-owner", "--allow-rename", "--yes", "--json"))
    assert rc == 0, capsys.readouterr()
    assert json.loads(capsys.readouterr().out)["rolesCreated"] == []
    props = empty_server.query("postgres", "SELECT pg_get_userbyid(datdba), datacl IS NULL, datconnlimit, "
                                           "shobj_description(oid, 'pg_database') FROM pg_database "
                                           "WHERE datname = 'fid_other_env'")
    assert props == [("postgres", True, 7, fid["database"][0][8])]
    assert empty_server.query("fid_other_env", INSIDE["owners"]) == [("postgres:words",)]


@pytest.mark.parametrize("encoding, value", [("SQL_ASCII", "caf\\xe9 \\xff"), ("LATIN1", "café")])
def test_any_encoding_backs_up_and_comes_back_in_it(env, empty_server, capsys, encoding, value):
    name = f"enc_{encoding.lower()}"
    env.execute("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
                f"CREATE DATABASE {name} ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    literal = f"E'{value}'" if encoding == "SQL_ASCII" else f"'{value}'"
    env.execute(name, "CREATE TABLE t (id int, v text)", f"INSERT INTO t VALUES (1, {literal})")
    manifest = take(env, capsys, name)
    assert manifest["rowCounts"] == {"(large objects)": 0, "public.t": 1}
    assert restore.main(env.args("--target", empty_server.dsn(name), "--backup", manifest["id"], "--yes")) == 0
    capsys.readouterr()
    probe = f"SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = '{name}'"
    assert empty_server.query("postgres", probe) == [(encoding,)]
    md5 = "SELECT md5(v), octet_length(v) FROM t"
    assert empty_server.query(name, md5) == env.query(name, md5)


def test_dmy_datestyle_and_short_timeouts_back_up_and_restore(env, capsys):
    env.execute("postgres", "DROP DATABASE IF EXISTS dmy WITH (FORCE)", "CREATE DATABASE dmy",
                "ALTER DATABASE dmy SET DateStyle = 'SQL, DMY'", "ALTER DATABASE dmy SET statement_timeout = '1ms'",
                "ALTER DATABASE dmy SET idle_in_transaction_session_timeout = '20ms'")
    env.execute("dmy", "SET statement_timeout = 0", "CREATE TABLE t AS SELECT g, now() AS at FROM generate_series(1, 300000) g")
    manifest = take(env, capsys, "dmy")
    assert manifest["rowCounts"]["public.t"] == 300000
    assert restore.main(env.args("--target", env.dsn("dmy"), "--backup", manifest["id"], "--yes")) == 0, \
        capsys.readouterr()
    capsys.readouterr()
    assert env.query("postgres", DB_SETTINGS, ("dmy",)) == [
        ("-", ["DateStyle=SQL, DMY", "statement_timeout=1ms", "idle_in_transaction_session_timeout=20ms"])]


MAPPED = {"fid_app": "stg_app", "fid_ro": "stg_ro"}


def test_role_map_gives_ownership_and_grants_to_the_other_environments_roles(env, fid, empty_server, capsys):
    with psycopg.connect(empty_server.dsn("postgres"), autocommit=True) as conn:  # the other environment:
        conn.execute("DROP DATABASE IF EXISTS fid WITH (FORCE)")  # no role of the source's (an earlier test made them)
        conn.execute("DROP ROLE IF EXISTS fid_app, fid_ro")
        for role in MAPPED.values():
            conn.execute(f"DROP ROLE IF EXISTS {role}")
            conn.execute(f"CREATE ROLE {role}")
    manifest = take(env, capsys, "fid")
    rc = restore.main(env.args("--target", empty_server.dsn("fid_mapped"), "--backup", manifest["id"], "--allow-rename",
                               "--role-map", "fid_app=stg_app,fid_ro=stg_ro", "--yes", "--json"))
    assert rc == 0, capsys.readouterr()
    assert json.loads(capsys.readouterr().out)["rolesCreated"] == []
    assert empty_server.query("postgres", "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'fid%'") == [(0,)]
    inside = {k: empty_server.query("fid_mapped", q) for k, q in INSIDE.items() if k in ("owners", "acl", "schema")}
    expected = {k: [tuple(_mapped(v) for v in row) for row in fid[k]] for k in inside}
    assert inside == expected and inside["owners"] == [("stg_app:words",)]
    db = empty_server.query("postgres", "SELECT pg_get_userbyid(datdba), datacl::text FROM pg_database "
                                        "WHERE datname = 'fid_mapped'")
    assert db == [("stg_app", _mapped(fid["database"][0][7]))]
    settings = empty_server.query("postgres", "SELECT r.rolname, s.setconfig FROM pg_db_role_setting s JOIN pg_database d"
                                              " ON d.oid = s.setdatabase JOIN pg_roles r ON r.oid = s.setrole"
                                              " WHERE d.datname = 'fid_mapped'")
    assert settings == [("stg_app", ["work_mem=8MB"])]


def _mapped(value):
    if not isinstance(value, str):
        return value
    for old, new in MAPPED.items():
        value = value.replace(old, new)
    return value


def test_role_map_to_a_role_the_target_lacks_fails_before_any_download(env, fid, empty_server, capsys):
    manifest = take(env, capsys, "fid")
    rc = restore.main(env.args("--target", empty_server.dsn("fid_nomap"), "--backup", manifest["id"], "--allow-rename",
                               "--role-map", "fid_app=nobody_here", "--yes"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "role nobody_here does not exist on 127.0.0.1:" in err[0], err
    assert empty_server.query("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'fid_nomap%'") == [(0,)]
    assert restore.main(env.args("--target", empty_server.dsn("fid_nomap"), "--latest", "--role-map", "fid_app")) == 2
    assert "is not OLD=NEW" in capsys.readouterr().err
