"""Reliability-suite fixtures: one sandbox for the suite's non-destructive cases, fault proxies, probes.

``rel`` is package-scoped: the cases that only add backups and databases share it (each uses its
own small databases and names backups by id, never by "latest"); cases that kill PostgreSQL or
disable keys restore what they broke before they return. ``proxied`` puts a
:class:`~tests.support.faultproxy.FaultProxy` in front of the primary region's emulator endpoint
for the commands run with ``rel.args_via(...)``; botocore retries are cut to 2 attempts so the
unbounded-fault cases fail in seconds, not minutes.
"""
from __future__ import annotations

import tempfile

import pytest

from scripts import aws
from scripts.postgres import credentials
from tests.vault.conftest import Env
from tests.conftest import start_sandbox, stop_sandbox
from tests.support.faultproxy import FaultProxy, proxied_outputs

FEW_ATTEMPTS = 2


class RelEnv(Env):
    """The backup tests' Env plus what fault cases need: a proxied outputs file and leak probes."""

    via: str | None = None

    def args_via(self, *extra: str) -> list[str]:
        assert self.via is not None, "use the `proxied` fixture"
        return ["--outputs", self.via, *extra]

    def complete_ids(self, side: str = "primary") -> set[str]:
        from scripts.vault.layout import list_backups
        return {e.id for e in list_backups(self.contract, side) if e.complete}

    def wait_replicated(self, *backup_ids: str, timeout: float = 120.0) -> None:
        """Until the emulated S3 replication has copied these backups (object and manifest) to DR.

        Replication is asynchronous (as on S3, where RTC promises 15 minutes); under machine load
        the sandbox's replicator takes longer than a verify that starts right after the backup.
        """
        from scripts.sandbox import control
        from tests.sandbox.sandbox_wait import wait_until
        try:
            wait_until(lambda: set(backup_ids) <= self.complete_ids("dr"), timeout=timeout, interval=0.5)
        except AssertionError as exc:  # say why: paused, a copy failing, or the passes falling behind
            daemon = control.health(self.handle.state).get("daemon") or {}
            raise AssertionError(f"{exc}; replicator: {daemon.get('replicator', daemon)}") from None

    def open_uploads(self) -> list[dict]:
        return self.s3().list_multipart_uploads(Bucket=self.bucket()).get("Uploads", [])

    def scratch_databases(self) -> list[str]:
        return sorted(d for d in self.databases() if ("_restore_" in d and "_pre_restore_" not in d) or "_verify_" in d)


@pytest.fixture(scope="package")
def rel(tmp_path_factory):
    handle = start_sandbox(tmp_path_factory.mktemp("sandbox-reliability"))
    try:
        yield RelEnv(handle)
    finally:
        stop_sandbox(handle)


@pytest.fixture
def few_retries(monkeypatch):
    """Fewer botocore attempts for this test (PILOTLIGHT_AWS_MAX_ATTEMPTS for subprocesses too)."""
    monkeypatch.setattr(aws, "MAX_ATTEMPTS", FEW_ATTEMPTS)
    monkeypatch.setenv("PILOTLIGHT_AWS_MAX_ATTEMPTS", str(FEW_ATTEMPTS))
    aws._client.cache_clear()
    yield FEW_ATTEMPTS
    aws._client.cache_clear()


@pytest.fixture
def proxied(rel, tmp_path):
    """A fault proxy in front of the primary region (S3 and KMS there); yields the proxy."""
    region = rel.contract.regions["primary"]
    with FaultProxy(rel.contract.access.aws_endpoints[region]) as proxy:
        rel.via = str(proxied_outputs(rel.handle.outputs_path, tmp_path / "outputs-proxied.json", {region: proxy}))
        try:
            yield proxy
        finally:
            rel.via = None
            aws._client.cache_clear()


@pytest.fixture(autouse=True)
def private_tmp(tmp_path, monkeypatch):
    """Every case gets its own temp dir (TMPDIR too, for subprocesses); afterwards it must be empty:
    a restore's plaintext spool, or any other temp file, must never outlive the command."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("TMPDIR", str(tmp))
    yield tmp
    credentials.forget()  # logins the case's own helpers fetched in-process (commands forget theirs)
    left = sorted(p.name for p in tmp.iterdir())
    assert left == [], f"temp files outlived the command: {left}"
