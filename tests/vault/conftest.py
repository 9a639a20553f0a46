"""Helpers for the backup/restore tests: a module-scoped sandbox wrapper and database probes.

Every module here gets its own sandbox (``module_sandbox``) because backups go into the vault
under the protected database's name, and restores swap databases: nothing here may leak into
the shared sandbox other tests read.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from scripts import aws
from scripts.postgres.dsn import side_dsn, with_dbname
from scripts.postgres.client import binary, client_args


@dataclass
class Env:
    handle: object

    @property
    def outputs(self) -> str:
        return str(self.handle.outputs_path)

    @property
    def contract(self):
        return self.handle.contract

    def dsn(self, dbname: str, side: str = "primary") -> str:
        return side_dsn(self.contract, side, dbname=dbname, superuser=True)

    def args(self, *extra: str) -> list[str]:
        return ["--outputs", self.outputs, *extra]

    def s3(self, side: str = "primary"):
        return aws.client(self.contract, "s3", side)

    def bucket(self, side: str = "primary") -> str:
        return self.contract.buckets[side].bucket

    def databases(self) -> set[str]:
        with psycopg.connect(self.dsn("postgres")) as conn:
            return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}

    def create_db(self, name: str, *statements: str) -> str:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with psycopg.connect(self.dsn(name), autocommit=True) as conn:
            for stmt in statements:
                conn.execute(stmt)
        return self.dsn(name)

    def execute(self, dbname: str, *statements: str) -> None:
        with psycopg.connect(self.dsn(dbname), autocommit=True) as conn:
            for stmt in statements:
                conn.execute(stmt)

    def query(self, dbname: str, text: str, params=None) -> list[tuple]:
        with psycopg.connect(self.dsn(dbname)) as conn:
            return conn.execute(text, params).fetchall()


@pytest.fixture(scope="module")
def env(module_sandbox) -> Env:
    return Env(module_sandbox)


def table_checksums(dsn: str) -> dict[str, str]:
    """md5 of every user table's rows in a stable order (the table's text form)."""
    with psycopg.connect(dsn) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")]
        return {t: conn.execute(sql.SQL("SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {} x")
                                .format(sql.SQL(t))).fetchone()[0] for t in tables}


def schema_dump(dsn: str) -> str:
    conninfo, envvars = client_args(dsn)
    out = subprocess.run([binary("pg_dump"), "--schema-only", "--no-password", f"--dbname={conninfo}"],
                         capture_output=True, check=True, env=envvars).stdout.decode()
    skip = ("--", "\\restrict", "\\unrestrict")  # comments and pg_dump's per-run random restrict key
    return "\n".join(line for line in out.splitlines() if not line.startswith(skip))


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def dsn_for(dsn: str, dbname: str) -> str:
    return with_dbname(dsn, dbname)
