"""Partial restore (``--tables`` into a new schema) of awkward tables, and what it refuses up front."""
from __future__ import annotations

import json

import pytest

from scripts.commands import restore
from scripts.vault import backup as vault_backup
from scripts.vault import restore as vault_restore
from scripts.common import Exit
from tests.vault.conftest import one_line_error

TYPED = ["CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')", "CREATE DOMAIN posint AS int CHECK (VALUE > 0)",
         "CREATE SCHEMA extra", "CREATE TYPE extra.size AS ENUM ('s', 'l')",
         "CREATE TABLE feelings (id posint PRIMARY KEY, m mood NOT NULL, s extra.size)",
         "INSERT INTO feelings SELECT g, (ARRAY['sad','ok','happy'])[1 + g % 3]::mood, 's' FROM generate_series(1, 30) g",
         "CREATE TABLE other (id int)"]


@pytest.fixture(scope="module")
def typed(env):
    env.create_db("typed", *TYPED)
    return vault_backup.perform_backup(env.contract, "hourly", source_dsn=env.dsn("typed"))


def downloads(monkeypatch) -> list[str]:
    """Record every backup download (the dump stream) the restore starts."""
    seen: list[str] = []
    real = vault_restore.BackupStream

    def counting(contract, side, manifest, bar=None):
        seen.append(manifest.id)
        return real(contract, side, manifest, bar)

    monkeypatch.setattr(vault_restore, "BackupStream", counting)
    return seen


def test_tables_with_enum_and_domain_columns(env, typed, capsys):
    args = env.args("--target", env.dsn("typed"), "--backup", typed.id, "--tables", "feelings",
                    "--into-schema", "back", "--yes", "--json")
    assert restore.main(args) == 0, capsys.readouterr()
    assert json.loads(capsys.readouterr().out)["row_counts"] == {"back.feelings": 30}
    probe = "SELECT m::text, s::text, count(*) FROM back.feelings GROUP BY 1, 2 ORDER BY 1"
    assert env.query("typed", probe) == env.query("typed", probe.replace("back.", "public."))
    assert env.query("typed", "SELECT atttypid::regtype::text FROM pg_attribute WHERE attrelid = 'back.feelings'::regclass"
                              " AND attnum > 0 ORDER BY attnum") == [("posint",), ("mood",), ("extra.size",)]


def test_mixed_case_schema(env, typed, capsys):
    args = env.args("--target", env.dsn("typed"), "--backup", typed.id, "--tables", "public.feelings",
                    "--into-schema", "Recovered_At_Noon", "--yes", "--json")
    assert restore.main(args) == 0, capsys.readouterr()
    assert json.loads(capsys.readouterr().out)["row_counts"] == {"Recovered_At_Noon.feelings": 30}
    assert env.query("typed", 'SELECT count(*) FROM "Recovered_At_Noon".feelings') == [(30,)]


@pytest.mark.parametrize("tables, schema, message", [
    ("feelings,nosuch", "x1", "has no table nosuch"),
    ("extra.feelings", "x2", "has no table extra.feelings"),
    ("feelings", "pg_mine", "reserved by PostgreSQL"),
    ("feelings", "information_schema", "reserved by PostgreSQL"),
])
def test_refused_before_anything_is_downloaded(env, typed, capsys, monkeypatch, tables, schema, message):
    seen = downloads(monkeypatch)
    before = env.query("typed", "SELECT nspname FROM pg_namespace ORDER BY 1")
    args = env.args("--target", env.dsn("typed"), "--backup", typed.id, "--tables", tables,
                    "--into-schema", schema, "--yes")
    assert restore.main(args) == Exit.USAGE
    assert message in one_line_error(capsys)
    assert seen == [] and env.query("typed", "SELECT nspname FROM pg_namespace ORDER BY 1") == before
