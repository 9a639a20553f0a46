"""Backup -> verify -> restore of a database with awkward content, compared table by table."""
from __future__ import annotations

import json

import pytest

from scripts.commands import backup
from scripts.vault import backup as vault_backup
from scripts.commands import backups
from scripts.commands import restore
from scripts.commands import verify
from scripts.common import Exit
from tests.vault.conftest import schema_dump, table_checksums
from tests.vault.test_faults import wait_replicated

AWKWARD = [
    "CREATE EXTENSION citext",
    "CREATE EXTENSION pgcrypto",
    "CREATE TABLE people (id bigserial PRIMARY KEY, name citext UNIQUE, bio text, doc jsonb, photo bytea)",
    """INSERT INTO people (name, bio, doc, photo) VALUES
       ('Zoë', 'naïve café — 日本語 🐘', '{"a": [1, 2, {"b": null}], "ü": "ß"}', '\\x00ff00'),
       ('bob', E'tab\\there\\nnew line, quote '' and backslash \\\\', '[]', gen_random_bytes(64)),
       ('NULLs', NULL, NULL, NULL)""",
    "CREATE SEQUENCE standalone START 100",
    "SELECT setval('standalone', 4242)",
    "SELECT setval('people_id_seq', 777)",
    "CREATE TABLE events (id int, at date, payload text) PARTITION BY RANGE (at)",
    "CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
    "CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
    "INSERT INTO events SELECT i, date '2025-06-01' + i, repeat('x', i % 50) FROM generate_series(1, 400) i",
    "CREATE MATERIALIZED VIEW event_months AS SELECT date_trunc('month', at) AS m, count(*) AS n FROM events GROUP BY 1",
    "CREATE TABLE docs (id serial PRIMARY KEY, body oid)",
    "INSERT INTO docs (body) SELECT lo_from_bytea(0, convert_to(repeat('ünï', 4000), 'UTF8'))",
    "INSERT INTO docs (body) SELECT lo_from_bytea(0, (SELECT string_agg(gen_random_bytes(1000), ''::bytea) FROM generate_series(1, 5)))",
]

PROBES = {
    "sequences": "SELECT (SELECT last_value FROM standalone), (SELECT last_value FROM people_id_seq)",
    "matview": "SELECT md5(string_agg(m::text || n, ',' ORDER BY m)) FROM event_months",
    "large_objects": "SELECT md5(string_agg(md5(lo_get(body)), ',' ORDER BY id)) FROM docs",
    "extensions": "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension",
    "citext": "SELECT count(*) FROM people WHERE name = 'zoË'",
}


def snapshot(env, db: str) -> dict:
    dsn = env.dsn(db)
    return {"tables": table_checksums(dsn), "schema": schema_dump(dsn),
            **{k: env.query(db, q) for k, q in PROBES.items()}}


@pytest.fixture(scope="module")
def awkward(env):
    env.create_db("awkward", *AWKWARD)
    return "awkward"


def test_round_trip_preserves_everything(env, awkward, capsys):
    before = snapshot(env, awkward)
    assert before["sequences"] == [(4242, 777)] and before["citext"] == [(1,)]

    assert backup.main(env.args("--tier", "daily", "--source", env.dsn(awkward), "--json")) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["rowCounts"]["public.people"] == 3
    assert manifest["rowCounts"]["public.events_2025"] == 213
    assert manifest["rowCounts"]["(large objects)"] == 2
    assert "password" not in json.dumps(manifest)

    env.execute(awkward, "DELETE FROM people WHERE name = 'bob'", "SELECT setval('standalone', 9999)")  # later changes

    rc = restore.main(env.args("--target", env.dsn(awkward), "--backup", manifest["id"], "--yes", "--json"))
    result = json.loads(capsys.readouterr().out)
    assert rc == 0, result
    after = snapshot(env, awkward)
    assert after == before  # ...and the restore brings back exactly the snapshot
    previous = result["keptPreviousAs"]
    assert previous.startswith("awkward_pre_restore_") and previous in env.databases()
    assert env.query(previous, "SELECT count(*) FROM people") == [(2,)]  # the pre-restore data kept for rollback
    assert not [d for d in env.databases() if "_restore_" in d and "_pre_restore_" not in d]


def test_backups_list_and_verify_with_test_restore(env, awkward, capsys):
    wait_replicated(env, vault_backup.perform_backup(env.contract, "hourly", source_dsn=env.dsn(awkward)).id)
    assert backups.main(env.args("list", "--json")) == 0
    listed = json.loads(capsys.readouterr().out)["backups"]
    assert listed and all(b["complete"] for b in listed)
    newest = listed[0]["id"]
    rc = verify.main(env.args("--backup", newest, "--test-restore", "--json"))
    report = json.loads(capsys.readouterr().out)
    assert rc == 0, report["failures"]
    assert report["backups"][0]["checks"] == {"primary-object": "ok", "primary-manifest-seal": "ok",
                                              "primary-replication": "ok", "primary-sha256": "ok",
                                              "dr-copy-decrypt-with-dr-key": "ok", "test-restore": "ok"}
    assert not [d for d in env.databases() if "_verify_" in d]


def test_database_settings_and_grants_survive_the_swap(env, awkward, capsys):
    env.execute("postgres", "DROP ROLE IF EXISTS awkward_app", "CREATE ROLE awkward_app LOGIN",
                "ALTER DATABASE awkward SET search_path = public, pg_catalog",
                "ALTER ROLE awkward_app IN DATABASE awkward SET work_mem = '8MB'",
                "REVOKE ALL ON DATABASE awkward FROM PUBLIC", "GRANT CONNECT ON DATABASE awkward TO awkward_app")
    probe = ("SELECT coalesce(r.rolname, '-'), s.setconfig FROM pg_db_role_setting s JOIN pg_database d "
             "ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE d.datname = 'awkward' ORDER BY 1")
    acl = "SELECT datacl::text FROM pg_database WHERE datname = 'awkward'"
    before = env.query("postgres", probe), env.query("postgres", acl)
    vault_backup.perform_backup(env.contract, "hourly", source_dsn=env.dsn(awkward))
    assert restore.main(env.args("--target", env.dsn(awkward), "--latest", "--yes")) == 0
    capsys.readouterr()
    assert (env.query("postgres", probe), env.query("postgres", acl)) == before


def test_dry_run_and_missing_yes_only_plan(env, awkward, capsys):
    vault_backup.perform_backup(env.contract, "hourly", source_dsn=env.dsn(awkward))
    before = env.databases()
    for extra, code in ((["--dry-run", "--yes"], Exit.OK), ([], Exit.REFUSED)):  # README: the plan-only convention
        assert restore.main(env.args("--target", env.dsn(awkward), "--latest", *extra)) == code
        out = capsys.readouterr()
        assert "plan (nothing done" in out.out
        assert ("re-run with --yes" in out.err) == (code == Exit.REFUSED)
    assert env.databases() == before


def test_parallel_restore_under_another_name(env, awkward, capsys):
    vault_backup.perform_backup(env.contract, "hourly", source_dsn=env.dsn(awkward))
    target = env.dsn("awkward_jobs")
    assert restore.main(env.args("--target", target, "--latest", "--database", awkward, "--allow-rename", "--jobs", "2", "--yes")) == 0
    capsys.readouterr()
    assert table_checksums(target) == table_checksums(env.dsn(awkward))
