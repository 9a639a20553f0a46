"""Where the sandbox keeps its state, and small process helpers shared by `up`, `down` and the daemon.

Layout of the state directory (gitignored, default ``.pilotlight/sandbox``)::

    outputs.json   the outputs contract (0644) - what every other command reads
    state.json     what `up` built: cluster data dirs and ports, the OS user, regions (no secrets)
    daemon.json    written by the daemon once it listens: its pid, moto's pid and port, proxy/DNS/control ports
    pgpass         libpq password file for the invoking user (0600)
    replication.json  the S3 replication configuration `up` applied (read by the replicator)
    replicator.json   what the replicator has copied (so a restart does not copy twice)
    aws-credentials   an AWS shared credentials file for the emulator (its fixed test keys)
    rds.json       the emulated RDS instances (scripts/sandbox/rds.py), rewritten on every change
    logs/          daemon.log, moto.log
The PostgreSQL clusters live in ``pgroot`` (``state_dir/pg`` when the postgres OS user can reach it,
else a private temp dir), owned by that user, with their own logs and passfile.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.common import PilotlightError
from scripts.contract import Contract, ContractError, load_file

DEFAULT_STATE_DIR = Path(".pilotlight/sandbox")
OUTPUTS = "outputs.json"
STATE = "state.json"
DAEMON = "daemon.json"
PASSFILE = "pgpass"
REPLICATION = "replication.json"
CREDENTIALS = "aws-credentials"
RDS_STATE = "rds.json"
SIDES = ("primary", "dr")
# moto accepts any keys; the tools get them from an AWS shared credentials file (access.credentialsFile).
EMULATOR_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class SandboxError(PilotlightError):
    """Something in the sandbox could not be started, reached or stopped; one line."""


@dataclass
class SandboxState:
    """Everything the control API needs to act on a running sandbox (loaded from the state dir)."""

    state_dir: Path
    regions: dict[str, str]
    os_user: str | None
    pgroot: Path
    clusters: dict[str, dict[str, Any]]
    daemon: dict[str, Any] = field(default_factory=dict)
    contract: Contract | None = None
    # Known before daemon.json exists, so `down` can stop a daemon that never got ready.
    spawned_daemon_pid: int | None = None

    @property
    def daemon_pid(self) -> int | None:
        return self.daemon.get("pid") or self.spawned_daemon_pid

    @property
    def outputs_path(self) -> Path:
        return self.state_dir / OUTPUTS

    @property
    def internal_passfile(self) -> Path:
        """The passfile the postgres OS user's tools (pg_basebackup, walreceiver) read."""
        return self.pgroot / "pgpass"

    def instance_cluster(self, side: str) -> str:
        """The cluster serving the contract's ``primary`` or ``standby`` instance of the first database now.

        After a failback the contract names new instances (on clusters the RDS emulator made); before,
        the two clusters `up` made are the sides themselves.
        """
        rds = read_json(self.state_dir / RDS_STATE) or {}
        if self.contract is not None and rds.get("instances"):
            endpoint = self.contract.databases[0].endpoint(side)
            inst = rds["instances"].get(endpoint.identifier)
            if inst is not None:
                return inst["cluster"]
        return side

    def data_dir(self, side: str) -> Path:
        return Path(self.clusters[side]["dataDir"])

    def port(self, side: str) -> int:
        return int(self.clusters[side]["port"])

    def log_file(self, side: str) -> Path:
        return self.pgroot / f"{side}.log"


def write_json(path: Path, doc: Any, mode: int = 0o644) -> None:
    """Atomic write (rename), so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise SandboxError(f"sandbox state file {path} is unreadable ({exc}); run `pilotlight sandbox down`") from None


def load(state_dir: str | Path = DEFAULT_STATE_DIR) -> SandboxState:
    """The state of the sandbox in ``state_dir``; SandboxError if it was never brought up."""
    state_dir = Path(state_dir).absolute()
    doc = read_json(state_dir / STATE)
    if doc is None:
        raise SandboxError(f"no sandbox in {state_dir}; start one with `pilotlight sandbox up`")
    contract = None
    if (state_dir / OUTPUTS).exists():
        try:
            contract = load_file(state_dir / OUTPUTS)
        except ContractError:
            contract = None
    # Clusters the emulated RDS API created (new replicas) live in rds.json, beside the two `up` made.
    clusters = {**doc["clusters"], **((read_json(state_dir / RDS_STATE) or {}).get("clusters") or {})}
    return SandboxState(
        state_dir=state_dir,
        regions=doc["regions"],
        os_user=doc.get("osUser"),
        pgroot=Path(doc["pgroot"]),
        clusters=clusters,
        daemon=read_json(state_dir / DAEMON) or {},
        contract=contract,
        spawned_daemon_pid=doc.get("daemonPid"),
    )


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pid_alive(pid: int | None, marker: str | None = None) -> bool:
    """Whether ``pid`` runs (and, if given, its command line contains ``marker``: guards pid reuse)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":  # a zombie is dead, only not yet reaped
        return False
    return marker is None or marker in cmdline


def terminate(pid: int | None, marker: str | None = None, timeout: float = 5.0) -> bool:
    """SIGTERM, wait, then SIGKILL; True once the process is gone."""
    if not pid_alive(pid, marker):
        return True
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pid)
            if not pid_alive(pid, marker):
                return True
            time.sleep(0.05)
    return not pid_alive(pid, marker)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


class ContractWatcher:
    """The contract in outputs.json, re-read when the file changes (the daemon starts before `up` writes it)."""

    def __init__(self, path: Path):
        self.path = path
        self._mtime: float | None = None
        self._contract: Contract | None = None

    def get(self) -> Contract | None:
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return self._contract
        if mtime != self._mtime:
            try:
                self._contract = load_file(self.path)
                self._mtime = mtime
            except ContractError:
                pass
        return self._contract
