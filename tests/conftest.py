"""Shared fixtures: real local sandboxes (moto + PostgreSQL 15 + DNS) for tests that need AWS and a database.

- ``sandbox`` (session): one sandbox shared by every test in the run. Tests may read and write
  data in it but must not break it (no kill/promote/block; use the fresh ones for that).
- ``fresh_sandbox`` (function) and ``module_sandbox`` (module): a new sandbox each, for
  destructive tests such as drills; torn down after the test/module, also when it fails.
- ``sandbox_factory`` (session): ``sandbox_factory(seed_rows=...)`` for anything else; every
  sandbox it made is torn down at the end of the session.

Each yields a :class:`SandboxHandle` with ``.state_dir``, ``.outputs_path``, ``.contract``
(the parsed outputs contract) and ``.state`` (for :mod:`scripts.sandbox.control`).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.contract import Contract, load_file
from scripts.sandbox import control, lifecycle
from scripts.commands import sandbox as cli
from scripts.sandbox.postgres import PG_BIN
from scripts.sandbox.state import SandboxState

TEST_SEED_ROWS = 200


@dataclass
class SandboxHandle:
    state_dir: Path
    outputs_path: Path
    contract: Contract

    @property
    def state(self) -> SandboxState:
        """Fresh each time: the daemon's pids and ports as they are now."""
        return control.load(self.state_dir)

    def reload(self) -> Contract:
        self.contract = load_file(self.outputs_path)
        return self.contract


def _log_tail(state_dir: Path) -> str:
    log = state_dir / "logs" / "daemon.log"
    return log.read_text()[-2000:] if log.exists() else "(no daemon log)"


def start_sandbox(state_dir: Path, seed_rows: int = TEST_SEED_ROWS) -> SandboxHandle:
    """`pilotlight sandbox up` into ``state_dir``; fails the test with the daemon log if it cannot."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL 15 binaries not found in {PG_BIN}")
    rc = cli.main(["up", "--state-dir", str(state_dir), "--seed-rows", str(seed_rows), "-q"])
    if rc != 0:
        tail = _log_tail(state_dir)
        lifecycle.down(state_dir)
        pytest.fail(f"sandbox up failed with exit {rc}; daemon log:\n{tail}")
    outputs = state_dir / "outputs.json"
    return SandboxHandle(state_dir=state_dir, outputs_path=outputs, contract=load_file(outputs))


def stop_sandbox(handle_or_dir: SandboxHandle | Path) -> None:
    state_dir = handle_or_dir.state_dir if isinstance(handle_or_dir, SandboxHandle) else handle_or_dir
    try:
        lifecycle.down(state_dir)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def sandbox_factory(tmp_path_factory):
    made: list[Path] = []

    def make(seed_rows: int = TEST_SEED_ROWS) -> SandboxHandle:
        state_dir = tmp_path_factory.mktemp("sandbox")
        made.append(state_dir)
        return start_sandbox(state_dir, seed_rows)

    yield make
    for state_dir in made:
        stop_sandbox(state_dir)


@pytest.fixture(scope="session")
def sandbox(sandbox_factory) -> SandboxHandle:
    """The shared sandbox: do not kill, promote, block or take it down."""
    return sandbox_factory()


@pytest.fixture(scope="module")
def module_sandbox(tmp_path_factory):
    handle = start_sandbox(tmp_path_factory.mktemp("sandbox-module"))
    try:
        yield handle
    finally:
        stop_sandbox(handle)


@pytest.fixture
def fresh_sandbox(tmp_path_factory):
    handle = start_sandbox(tmp_path_factory.mktemp("sandbox-fresh"))
    try:
        yield handle
    finally:
        stop_sandbox(handle)
