"""``restore --jobs N``: the data streams through one pg_restore, post-data is built with pg_restore -j N
from the backup's post-data archive; every failure leaves the target as it was."""
from __future__ import annotations

import json
import subprocess

import pytest

from scripts.commands import restore
from scripts.common import Exit
from scripts.postgres import client as pg
from scripts.vault import backup as vault_backup
from scripts.vault import postdata
from scripts.vault import restore as vault_restore
from tests.vault.conftest import one_line_error, table_checksums
from tests.vault.test_faults import put_object, scratch_left, stored, wait_replicated
from tests.vault.test_roundtrip import AWKWARD, snapshot

LEDGER = ["CREATE TABLE ledger (id int PRIMARY KEY, a text, b text)",
          "CREATE INDEX ledger_a ON ledger (a)",
          "INSERT INTO ledger SELECT i, md5(i::text), md5((i * 7)::text) FROM generate_series(1, 100000) i"]

# An index over a function that reads a table by an unqualified name: pg_restore runs with an empty
# search_path, so building it fails on restore, as it does for real databases with such indexes.
FRAGILE = ["CREATE TABLE lookup (k int PRIMARY KEY, v int)", "INSERT INTO lookup VALUES (1, 10)",
           "CREATE FUNCTION weight(k int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT v FROM lookup WHERE lookup.k = $1'",
           "CREATE TABLE parcels (id int PRIMARY KEY, k int)", "INSERT INTO parcels SELECT i, 1 FROM generate_series(1, 50) i",
           "CREATE INDEX parcels_weight ON parcels (weight(k))"]


def fenced(env, db: str) -> bool:
    return bool(env.query("postgres", "SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
                                      "WHERE d.datname = %s AND 'default_transaction_read_only=on' = ANY(s.setconfig)",
                          (db,)))


@pytest.fixture(scope="module")
def awkward(env):
    env.create_db("awkward_par", *AWKWARD)
    return "awkward_par"


@pytest.fixture(scope="module")
def ledger(env):
    env.create_db("ledger_par", *LEDGER)
    return "ledger_par"


def test_jobs_restore_keeps_everything_and_builds_post_data_in_parallel(env, awkward, capsys):
    before = snapshot(env, awkward)
    manifest = vault_backup.perform_backup(env.contract, "hourly", source_dsn=env.dsn(awkward))
    assert manifest.doc["postData"]["storedBytes"] > 0
    env.execute(awkward, "DELETE FROM people WHERE name = 'bob'", "REFRESH MATERIALIZED VIEW event_months",
                "ALTER TABLE people DROP CONSTRAINT people_name_key")
    rc = restore.main(env.args("--target", env.dsn(awkward), "--backup", manifest.id, "--jobs", "2", "--yes", "--json"))
    result = json.loads(capsys.readouterr().out)
    assert rc == 0, result
    assert snapshot(env, awkward) == before  # tables, schema (indexes, constraints), sequences, matview, large objects
    assert "indexes and constraints (pg_restore -j 2)" in [p["name"] for p in result["phases"]]
    assert not scratch_left(env)


def test_a_stream_failing_midway_leaves_the_target_as_it_was(env, ledger, capsys):
    m = vault_backup.perform_backup(env.contract, "hourly", source_dsn=env.dsn(ledger))
    wait_replicated(env, m.id)
    blob = bytearray(stored(env, m, "dr"))
    assert len(blob) > 2 << 20  # several encrypted chunks: earlier ones are already loaded when it fails
    blob[len(blob) // 2] ^= 0x01
    put_object(env, m, bytes(blob), side="dr")
    before = table_checksums(env.dsn(ledger))
    assert restore.main(env.args("--target", env.dsn(ledger), "--backup", m.id, "--from-region", "dr", "--jobs", "2",
                                 "--yes")) == Exit.FAILED
    assert "fails authentication" in one_line_error(capsys)
    assert table_checksums(env.dsn(ledger)) == before and not scratch_left(env) and not fenced(env, ledger)


def test_an_index_build_failing_swaps_nothing(env, capsys):
    env.create_db("fragile_par", *FRAGILE)
    m = vault_backup.perform_backup(env.contract, "hourly", source_dsn=env.dsn("fragile_par"))
    env.execute("fragile_par", "INSERT INTO parcels VALUES (51, 1)")  # written after the backup: must survive
    before = table_checksums(env.dsn("fragile_par"))
    assert restore.main(env.args("--target", env.dsn("fragile_par"), "--backup", m.id, "--jobs", "2", "--yes")) == Exit.FAILED
    line = one_line_error(capsys)
    assert "building indexes and constraints of table public.parcels failed" in line and "lookup" in line
    assert table_checksums(env.dsn("fragile_par")) == before and not scratch_left(env)
    assert not fenced(env, "fragile_par")
    env.execute("fragile_par", "INSERT INTO parcels VALUES (52, 1)")  # still writable


def test_a_backup_without_a_post_data_archive_restores_with_one_job(env, ledger, capsys, monkeypatch):
    real = vault_backup.store_sealed
    monkeypatch.setattr(vault_backup, "store_sealed",  # as a backup made by an earlier version: no post-data archive
                        lambda *a: None if a[-1] == "its post-data archive" else real(*a))
    m = vault_backup.perform_backup(env.contract, "hourly", source_dsn=env.dsn(ledger))
    assert not m.doc.get("postData")
    target = env.dsn("ledger_par_old")
    assert restore.main(env.args("--target", target, "--backup", m.id, "--jobs", "2", "--allow-rename", "--yes")) == 0
    assert "no post-data archive" in capsys.readouterr().err
    assert table_checksums(target) == table_checksums(env.dsn(ledger))
    assert env.query("ledger_par_old", "SELECT count(*) FROM pg_indexes WHERE tablename = 'ledger'") == [(2,)]


EARLY = ["CREATE TABLE a (id int PRIMARY KEY, v text CHECK (v <> ''))", "CREATE INDEX a_v ON a (v)",
         "CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a)", "INSERT INTO a VALUES (1, 'x')",
         "INSERT INTO b VALUES (1, 1)"]


def _indexes(env, db: str) -> set[str]:
    return {r[0] for r in env.query(db, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}


def test_a_tables_indexes_are_built_once_the_stream_has_loaded_it(env, tmp_path):
    env.create_db("early_par", *EARLY)
    with pg.exported_snapshot(env.dsn("early_par")) as snap:
        archive = vault_backup.post_data_archive(env.dsn("early_par"), snap.id)
    path = tmp_path / "post-data"
    path.write_bytes(archive)
    _, by_table = postdata.table_entries(str(path))
    assert {t: sorted(line.split(" ", 3)[3] for line in lines) for t, lines in by_table.items()} == {
        "public.a": ["CONSTRAINT public a a_pkey postgres", "INDEX public a_v postgres"],
        "public.b": ["CONSTRAINT public b b_pkey postgres"]}  # the foreign key waits for the final run

    env.create_db("early_par_copy")
    dump = subprocess.run([pg.binary("pg_dump"), "-Fc", "--section=pre-data", "--section=data", env.dsn("early_par")],
                          capture_output=True, check=True).stdout
    subprocess.run([pg.binary("pg_restore"), "-d", env.dsn("early_par_copy")], input=dump, check=True)
    post = postdata.PostData(str(path), env.dsn("early_par_copy"), 2, str(tmp_path),
                             lambda d, j, listing, source: vault_restore.restore_cmd(d, j, listing, source))
    try:
        post.line('pg_restore: processing data for table "public.a"')
        post.line('pg_restore: processing data for table "public.b"')  # a is loaded: its builds start
        post._early[0].result(timeout=60)
        assert _indexes(env, "early_par_copy") == {"a_pkey", "a_v"}
        post.finish()
    finally:
        post.close()
    assert _indexes(env, "early_par_copy") == {"a_pkey", "a_v", "b_pkey"}
    assert env.query("early_par_copy", "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == [(1,)]
