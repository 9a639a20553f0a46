"""A backup's identity is the database it came from: filed under it, restored over it, renamed only on request."""
from __future__ import annotations

import json

from scripts.commands import restore
from scripts.vault import backup as vault_backup
from scripts.common import Exit
from tests.vault.conftest import one_line_error


def test_source_backup_is_filed_under_its_own_database_and_restored_over_it(env, capsys):
    protected = env.contract.database()
    env.create_db("other", "CREATE TABLE mine (n int)", "INSERT INTO mine VALUES (1), (2)")
    theirs = vault_backup.perform_backup(env.contract, "hourly", source_dsn=env.dsn("other"))
    vault_backup.perform_backup(env.contract, "hourly")  # the protected database's, newer
    assert theirs.database == "other" and theirs.id.startswith("other-")
    assert f"/other/{theirs.id}/" in theirs.doc["object"]["key"]
    assert protected.name not in theirs.doc["object"]["key"]

    env.execute("other", "INSERT INTO mine VALUES (3)")
    assert restore.main(env.args("--target", env.dsn("other"), "--latest", "--yes", "--json")) == 0
    assert json.loads(capsys.readouterr().out)["backup_id"] == theirs.id
    assert env.query("other", "SELECT count(*) FROM mine") == [(2,)]


def test_restore_under_another_name_needs_allow_rename(env, capsys):
    env.create_db("named", "CREATE TABLE t (n int)")
    made = vault_backup.perform_backup(env.contract, "hourly", source_dsn=env.dsn("named"))
    before = env.databases()
    assert restore.main(env.args("--target", env.dsn("named_copy"), "--backup", made.id, "--yes")) == Exit.REFUSED
    line = one_line_error(capsys)
    assert "is of database 'named', not 'named_copy'" in line and "--allow-rename" in line
    assert env.databases() == before
    assert restore.main(env.args("--target", env.dsn("named_copy"), "--backup", made.id, "--allow-rename",
                                 "--yes")) == 0
    capsys.readouterr()
    assert "named_copy" in env.databases()


def test_drill_backups_are_filed_apart_and_never_become_latest(env, capsys):
    from scripts.vault.layout import select_backup

    real = vault_backup.perform_backup(env.contract, "hourly")
    drill = vault_backup.perform_backup(env.contract, "hourly", drill=True)  # newer than the real one
    assert drill.database == f"{real.database}--drill" and f"/{real.database}--drill/" in drill.doc["object"]["key"]
    assert select_backup(env.contract, latest=True)[0].id == real.id
    target = env.dsn(env.contract.database().db_name)
    assert restore.main(env.args("--target", target, "--latest", "--dry-run", "--json")) == 0
    assert json.loads(capsys.readouterr().out)["backup_id"] == real.id
