"""A pg_dump older than the server is refused with a message naming the fix."""
from __future__ import annotations

import pytest

from scripts.common import Refused
from scripts.postgres import client


@pytest.fixture
def fake_pg_dump(tmp_path, monkeypatch):
    def install(version: str):
        exe = tmp_path / "pg_dump"
        exe.write_text(f"#!/bin/sh\necho 'pg_dump (PostgreSQL) {version}'\n")
        exe.chmod(0o755)
        monkeypatch.setattr(client, "PG_BIN", tmp_path)
    return install


def test_an_older_pg_dump_is_refused_with_the_package_to_install(fake_pg_dump):
    fake_pg_dump("15.8 (Debian 15.8-0+deb12u1)")
    with pytest.raises(Refused, match=r"pg_dump 15 \(.*\) is older than the server \(16\.4\).*postgresql-client-16"):
        client.require_dump_client_for("16.4")


@pytest.mark.parametrize("server", ["15.2", "14.11", "15.8 (Debian 15.8-1)"])
def test_a_pg_dump_of_the_same_or_newer_major_is_accepted(fake_pg_dump, server):
    fake_pg_dump("15.8")
    client.require_dump_client_for(server)


def test_the_refusal_names_the_binary_and_the_override(fake_pg_dump, tmp_path):
    fake_pg_dump("14.9")
    with pytest.raises(Refused) as err:
        client.require_dump_client_for("15.4")
    assert str(tmp_path / "pg_dump") in str(err.value) and "PILOTLIGHT_PG_BIN=/usr/lib/postgresql/15/bin" in str(err.value)


def test_the_default_client_is_the_newest_major_installed(tmp_path, monkeypatch):
    monkeypatch.delenv(client.PG_BIN_ENV, raising=False)
    for major in ("13", "16", "15"):
        (tmp_path / major / "bin").mkdir(parents=True)
        (tmp_path / major / "bin" / "pg_dump").touch()
    (tmp_path / "17").mkdir()  # a directory without a client is not a client
    assert client.default_pg_bin(tmp_path) == tmp_path / "16" / "bin"


def test_pilotlight_pg_bin_overrides_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv(client.PG_BIN_ENV, "/opt/pg17/bin")
    assert str(client.default_pg_bin(tmp_path)) == "/opt/pg17/bin"
