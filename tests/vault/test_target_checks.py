"""The plan checks the target before anything is downloaded: reachable, writable, CREATEDB, free space."""
from __future__ import annotations

import pytest

from scripts.commands import restore
from scripts.vault import backup as vault_backup
from scripts.vault import restore as vault_restore
from scripts.common import Exit
from scripts.postgres.dsn import side_dsn
from tests.vault.conftest import one_line_error


@pytest.fixture
def no_downloads(env, monkeypatch):
    """A backup to choose (its manifest is read), but nothing of it may be downloaded."""
    vault_backup.perform_backup(env.contract, "hourly")

    def refuse(*args, **kwargs):
        raise AssertionError("the backup was downloaded before the target was checked")

    monkeypatch.setattr(vault_restore, "read_globals", refuse)
    monkeypatch.setattr(vault_restore, "BackupStream", refuse)


def test_read_only_standby_is_refused_before_anything_is_downloaded(env, no_downloads, capsys):
    standby = side_dsn(env.contract, "dr", superuser=True)
    assert restore.main(env.args("--target", standby, "--latest", "--yes")) == Exit.REFUSED
    assert "is a read-only standby: promote it first or choose another target" in one_line_error(capsys)


def test_role_without_createdb_is_refused(env, no_downloads, capsys):
    app = side_dsn(env.contract, "primary", superuser=False)
    assert restore.main(env.args("--target", app, "--latest", "--yes")) == Exit.REFUSED
    assert "may not create databases" in one_line_error(capsys)


def test_free_space_is_checked_where_it_is_knowable(env, monkeypatch, capsys):
    env.create_db("roomy", "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g")
    made = vault_backup.perform_backup(env.contract, "hourly", source_dsn=env.dsn("roomy"))
    assert restore.main(env.args("--target", env.dsn("roomy"), "--backup", made.id, "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "free space:" in out and "MiB free on the target's data directory" in out and "writable primary" in out
    monkeypatch.setattr(vault_restore, "_free_bytes", lambda dsn: 1024)
    assert restore.main(env.args("--target", env.dsn("roomy"), "--backup", made.id, "--yes")) == Exit.REFUSED
    assert "has 0 MiB free" in one_line_error(capsys)
