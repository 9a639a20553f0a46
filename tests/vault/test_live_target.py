"""Restoring under a live application: the target is fenced until the swap; kept copies can be rolled back,
listed and dropped, and status warns when they pile up."""
from __future__ import annotations

import json

import psycopg
import pytest

from scripts.commands import restore
from scripts.vault import backup as vault_backup
from scripts.vault import restore as vault_restore
from scripts.commands import status
from scripts.common import Exit
from tests.vault.conftest import one_line_error

ROWS = ["CREATE TABLE orders (id int PRIMARY KEY)", "INSERT INTO orders SELECT generate_series(1, 10)"]


@pytest.fixture
def live(env):
    env.create_db("live", *ROWS)
    return vault_backup.perform_backup(env.contract, "hourly", source_dsn=env.dsn("live"))


def test_writes_during_a_restore_are_refused_not_stranded(env, live, monkeypatch, capsys):
    real, attempts = vault_restore._stream_restore, []

    def with_a_writer(*args, **kwargs):
        with psycopg.connect(env.dsn("live"), autocommit=True) as app:  # the application reconnects mid-restore
            try:
                app.execute("INSERT INTO orders VALUES (1000)")
                attempts.append("written")
            except psycopg.errors.ReadOnlySqlTransaction:
                attempts.append("refused")
        return real(*args, **kwargs)

    monkeypatch.setattr(vault_restore, "_stream_restore", with_a_writer)
    assert restore.main(env.args("--target", env.dsn("live"), "--backup", live.id, "--yes", "--json")) == 0
    kept = json.loads(capsys.readouterr().out)["kept_previous_as"]
    assert attempts == ["refused"]
    assert env.query(kept, "SELECT count(*) FROM orders WHERE id = 1000") == [(0,)]
    env.execute("live", "INSERT INTO orders VALUES (2000)")  # the restored database takes writes


def test_a_failed_restore_lifts_its_fence(env, live, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise vault_restore.PilotlightError("pg_restore failed (stopped at the first error): simulated")

    monkeypatch.setattr(vault_restore, "_stream_restore", broken)
    assert restore.main(env.args("--target", env.dsn("live"), "--backup", live.id, "--yes")) == Exit.FAILED
    capsys.readouterr()
    env.execute("live", "INSERT INTO orders VALUES (3000)")
    assert env.query("postgres", "SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
                                 " WHERE d.datname = 'live'") == [(0,)]


def test_rollback_swaps_the_kept_copy_back(env, live, capsys):
    env.execute("live", "INSERT INTO orders VALUES (11)")  # after the backup: lost by the restore, back by rollback
    assert restore.main(env.args("--target", env.dsn("live"), "--backup", live.id, "--yes")) == 0
    assert env.query("live", "SELECT count(*) FROM orders") == [(10,)]
    assert restore.main(env.args("--target", env.dsn("live"), "--rollback")) == 0
    assert "plan (nothing done" in capsys.readouterr().out and env.query("live", "SELECT count(*) FROM orders") == [(10,)]
    assert restore.main(env.args("--target", env.dsn("live"), "--rollback", "--yes", "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    assert env.query("live", "SELECT count(*) FROM orders") == [(11,)]
    env.execute("live", "INSERT INTO orders VALUES (12)")  # writable again: the fence went with the swap
    assert out["keptAs"] in env.databases()


def test_kept_copies_are_listed_dropped_and_warned_about(env, live, capsys):
    for _ in range(3):
        assert restore.main(env.args("--target", env.dsn("live"), "--backup", live.id, "--yes")) == 0
    capsys.readouterr()
    assert restore.main(env.args("--target", env.dsn("live"), "--list-kept", "--json")) == 0
    listed = json.loads(capsys.readouterr().out)["kept"]
    assert len(listed) >= 3 and all(k["name"].startswith("live_pre_restore_") and k["bytes"] > 0 for k in listed)

    protected = env.contract.database()
    (line,) = status.kept_line(env.contract, protected)
    assert line.state == status.OK
    for _ in range(3):
        vault_backup.perform_backup(env.contract, "hourly")
        vault_restore.perform_restore(env.contract, env.dsn(protected.db_name), latest=True, terminate_sessions=True)
    (line,) = status.kept_line(env.contract, protected)
    assert line.state == status.WARN and "--drop-kept" in line.detail

    assert restore.main(env.args("--target", env.dsn("live"), "--drop-kept", "0s")) == 0
    assert "would drop (pass --yes)" in capsys.readouterr().out
    assert restore.main(env.args("--target", env.dsn("live"), "--drop-kept", "0s", "--yes", "--json")) == 0
    assert len(json.loads(capsys.readouterr().out)["dropped"]) == len(listed)
    assert not [d for d in env.databases() if d.startswith("live_pre_restore_")]
    assert restore.main(env.args("--target", env.dsn("live"), "--drop-kept", "soon", "--yes")) == Exit.USAGE
    assert "is not an age" in one_line_error(capsys)
