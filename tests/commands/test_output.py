"""Output people read at 3 a.m., through ``main([...])`` on the shared sandbox: units, phases, what was checked."""
from __future__ import annotations

import json
import re

import psycopg

from scripts.commands import backup, restore, verify
from scripts.common import Exit
from scripts.vault import backup as backup_engine
from scripts.vault import restore as restore_engine
from tests.vault.test_faults import wait_replicated


def args(sandbox, *rest):
    return ["--outputs", str(sandbox.outputs_path), *rest]


def dsn(sandbox, dbname):
    c = sandbox.contract.sandbox
    return (f"host={c.clusters['primary'].host} port={c.clusters['primary'].port} dbname={dbname} "
            f"user={c.superuser} passfile={c.passfile}")


def test_backup_says_how_long_it_took_in_readable_units_and_json_keeps_raw_numbers(sandbox, capsys):
    assert backup.main(args(sandbox, "--tier", "hourly")) == Exit.OK
    out = capsys.readouterr().out
    assert re.search(r"complete in [\d.]+ s: [\d.]+ (KiB|MiB) dump \(\d+ rows in \d+ tables\) -> [\d.]+ (KiB|MiB) stored", out), out
    assert not re.search(r"\d{4,} (dump )?bytes", out)
    assert backup.main(args(sandbox, "--tier", "hourly", "--json")) == Exit.OK
    doc = json.loads(capsys.readouterr().out)
    assert isinstance(doc["dump"]["bytes"], int) and isinstance(doc["seconds"], float)


def test_restore_json_is_camel_case_and_reports_its_phases(sandbox, capsys):
    backup_engine.perform_backup(sandbox.contract, "hourly")
    target = dsn(sandbox, "orders_phases")
    try:
        assert restore.main(args(sandbox, "--target", target, "--latest", "--database", "orders", "--allow-rename", "--yes", "--json")) == Exit.OK
        doc = json.loads(capsys.readouterr().out)
        assert [k for k in doc if "_" in k] == []
        assert [p["name"] for p in doc["phases"]] == [restore_engine.LOAD, restore_engine.INDEXES, restore_engine.COUNTS, restore_engine.SWAP]
        assert all(p["seconds"] >= 0 for p in doc["phases"])
        assert restore.main(args(sandbox, "--target", target, "--latest", "--database", "orders", "--allow-rename", "--yes")) == Exit.OK
        out = capsys.readouterr().out
        assert "phases: download, verify, load" in out and "swap" in out
        assert re.search(r"\d+ rows in \d+ tables match the manifest; took [\d.]+ s", out), out
    finally:
        with psycopg.connect(dsn(sandbox, "postgres"), autocommit=True) as conn:
            for (name,) in conn.execute("select datname from pg_database where datname like 'orders_phases%'").fetchall():
                conn.execute(f'drop database "{name}"')


def test_verify_test_restore_says_what_it_restored_and_never_all_good_with_a_tier_missing(sandbox, capsys):
    made = backup_engine.perform_backup(sandbox.contract, "hourly")
    wait_replicated(sandbox, made.id)
    assert verify.main(args(sandbox, "--backup", made.id, "--test-restore")) == Exit.OK
    out = capsys.readouterr().out
    assert re.search(r"restored into orders_verify_\w+ on [\w.-]+:\d+ in [\d.]+ s: \d+ rows in \d+ tables match "
                     r"the manifest \([\d.]+ (KiB|MiB) dump\); scratch database dropped", out), out
    assert f"verify: backup {made.id} is good (tiers not checked" in out and "all good" not in out
    rc = verify.main(args(sandbox))  # the shared sandbox has no monthly backup: status would FAIL that tier
    out = capsys.readouterr().out
    assert rc == Exit.FAILED and "all good" not in out
    assert "NONE   tier monthly: no complete backup (status: FAIL)" in out
