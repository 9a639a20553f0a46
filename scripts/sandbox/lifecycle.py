"""Bring the sandbox up, take it down, report on it: the work behind `pilotlight sandbox up|down|status`.

`up` writes ``state.json`` before starting anything, so a failed or interrupted `up` can always
be cleaned by `down` (which `up` itself calls on failure). The contract (``outputs.json``) is
written last: while it exists, the sandbox it describes is complete.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scripts.common import UsageError
from scripts.sandbox import pitr
from scripts.sandbox import postgres as pg
from scripts.sandbox import tls
from scripts.sandbox.emulator import database_secrets, failback_section, provision
from scripts.sandbox.state import (CREDENTIALS, DAEMON, EMULATOR_CREDENTIALS, OUTPUTS, PASSFILE, RDS_STATE, REPLICATION, STATE,
                                   SandboxError, SandboxState,
                                   free_port, load, pid_alive, read_json, terminate, write_json)
from stacks import naming
from stacks.vocabulary import SIDES
from stacks.config import ConfigError, StackConfig, load_stack_file
from stacks.jobsplan import job_specs
from stacks.outputs import credentials_section, outputs_document

log = logging.getLogger("pilotlight.sandbox")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_ROOT / "Pulumi.dr.yaml"
APP_USER = "app"
DAEMON_MARKER = "scripts.sandbox.daemon"
MOTO_MARKER = "moto.server"
DAEMON_READY_SECONDS = 30
TLS_DIR = "tls"


def load_config(path: Path) -> StackConfig:
    try:
        return load_stack_file(path)
    except ConfigError as exc:
        raise UsageError(f"stack config: {exc}") from None


def up(state_dir: Path, config_path: Path = DEFAULT_CONFIG, seed_rows: int = 1000,
       schedule_speed: float = 0, rds_timing: str = "fast",
       backup_copy_delay: float = pitr.DEFAULT_COPY_DELAY_SECONDS) -> tuple[dict[str, Any], bool]:
    """Start (or reuse) the sandbox; returns (contract document, reused).

    ``schedule_speed`` > 0 runs the contract's jobs on their schedules, that many times faster
    than real time (scripts/sandbox/scheduler.py); 0 leaves them to the user.
    ``backup_copy_delay``: seconds before an archived WAL segment or base backup reaches the other
    region's copy of the automated backups (AWS replicates them asynchronously).
    """
    state_dir = state_dir.absolute()
    cfg = load_config(config_path)
    if (state_dir / STATE).exists():
        report = status(state_dir)
        if report["healthy"] and (state_dir / OUTPUTS).exists():
            return json.loads((state_dir / OUTPUTS).read_text()), True
        log.warning("replacing the sandbox in %s (%s)", state_dir, report["state"])
        down(state_dir)
    try:
        return _create(state_dir, cfg, seed_rows, schedule_speed, rds_timing, backup_copy_delay), False
    except BaseException:
        down(state_dir)
        raise


def _create(state_dir: Path, cfg: StackConfig, seed_rows: int, schedule_speed: float = 0,
            rds_timing: str = "fast", backup_copy_delay: float = pitr.DEFAULT_COPY_DELAY_SECONDS) -> dict[str, Any]:
    user = pg.os_user()
    (state_dir / "logs").mkdir(parents=True, exist_ok=True)
    pgroot = _pgroot(state_dir, user)
    state = SandboxState(
        state_dir=state_dir, regions={"primary": cfg.primary_region, "dr": cfg.dr_region}, os_user=user,
        pgroot=pgroot, clusters={side: {"port": free_port(), "dataDir": str(pgroot / side)} for side in SIDES})
    _write_state(state)
    (state_dir / DAEMON).unlink(missing_ok=True)
    daemon = _start_daemon(state, schedule_speed, rds_timing)
    state.spawned_daemon_pid = daemon.pid
    _write_state(state)
    passwords = {pg.SUPERUSER: secrets.token_urlsafe(24), APP_USER: secrets.token_urlsafe(24)}
    pg.write_passfile(state_dir / PASSFILE, passwords, owner=None)
    pg.write_passfile(state.internal_passfile, passwords, owner=user)
    server_tls = tls.write(state_dir / TLS_DIR, pgroot / "tls", tls.endpoint_names(state.regions.values(), cfg.dns.zone_name),
                           owner=pg.owner_ids(user))
    pg.init_primary(state, passwords[pg.SUPERUSER], server_tls)
    pitr.configure(state, pitr.Settings(regions=dict(state.regions), retention_days=cfg.standby.backup_retention_days,
                                        copy_delay_seconds=backup_copy_delay))
    _start_on_free_port(state, "primary")
    pg.create_app(state, [db.db_name for db in cfg.databases], APP_USER, passwords[APP_USER], seed_rows)
    pitr.base_backup(state, "primary")
    pg.basebackup(state, "dr", "primary")
    _start_on_free_port(state, "dr")
    info = _wait_daemon(state_dir, daemon)
    ports = {side: state.port(side) for side in SIDES}
    kwargs, replication, instances = provision(cfg, info["motoUrl"], ports)
    secrets_by_db = database_secrets(cfg, info["motoUrl"], pg.SUPERUSER, passwords[pg.SUPERUSER], ports)
    for item in kwargs["databases"]:
        if item["config"].name in secrets_by_db:
            item["credentials"] = credentials_section(cfg, item["config"], secrets_by_db[item["config"].name])
    write_json(state_dir / REPLICATION, replication)
    state.daemon = info
    request(state, {"op": "rds-register", "instances": instances})
    endpoints = {name: f"http://127.0.0.1:{port}" for name, port in info["proxies"].items()}
    credentials = state_dir / CREDENTIALS
    credentials.write_text("[default]\naws_access_key_id = {aws_access_key_id}\n"
                           "aws_secret_access_key = {aws_secret_access_key}\n".format(**EMULATOR_CREDENTIALS))
    sandbox = {
        "stateDir": str(state_dir),
        "awsEndpoints": endpoints,
        "dns": {"host": "127.0.0.1", "port": info["dnsPort"]},
        "superuser": pg.SUPERUSER,
        "appUser": APP_USER,
        "passfile": str(state_dir / PASSFILE),
        "clusters": {side: {"host": "127.0.0.1", "port": state.port(side), "dataDir": str(state.data_dir(side))}
                     for side in SIDES},
    }
    doc = outputs_document(cfg, sandbox=sandbox, **kwargs)
    _add_access(doc, kwargs["databases"], ports, endpoints, str(credentials), info["dnsPort"], str(state_dir / PASSFILE),
                str(server_tls.ca_file))
    for item in doc["databases"]:
        item.setdefault("failback", failback_section(cfg, item["name"]))
        item.setdefault("promotion", {"backupRetentionDays": cfg.standby.backup_retention_days, "multiAz": False})
    # The same job plan the program schedules on AWS; scripts/sandbox/scheduler.py runs it.
    doc["jobs"] = [job.contract(cfg.region(job.side)) for job in job_specs(cfg, naming.base(cfg))]
    write_json(state_dir / OUTPUTS, doc, mode=0o644)
    return doc


def _add_access(doc: dict[str, Any], databases: list[dict[str, Any]], ports: dict[str, int], endpoints: dict[str, str],
                credentials: str, dns_port: int, passfile: str, ca_file: str) -> None:
    """What the tools need to reach this stack, in the contract's own terms (a real stack may set these too).

    Endpoint ports (both clusters share 127.0.0.1), the switch health check, the emulator's endpoints,
    its credentials file, the DNS server as resolver and authoritative port, the database logins
    (the application stand-in and the superuser in the passfile; a database with a secret logs
    its tools in with the secret) and TLS: verify-full against the sandbox's own CA.
    """
    switches = {item["config"].name: item["dns"]["switch"] for item in databases}
    for item in doc["databases"]:
        item["primary"]["port"], item["standby"]["port"] = ports["primary"], ports["dr"]
        item["dns"].setdefault("switch", switches[item["name"]])
    doc["access"] = {
        "awsEndpoints": endpoints,
        "credentialsFile": credentials,
        "dnsResolver": {"host": "127.0.0.1", "port": dns_port},
        "authoritativePort": dns_port,
        "database": {"user": APP_USER, "adminUser": pg.SUPERUSER, "passfile": passfile,
                     "sslmode": "verify-full", "sslrootcert": ca_file},
    }


def _start_on_free_port(state: SandboxState, side: str, attempts: int = 3) -> None:
    """Start a cluster; if another process took its port since we picked it, pick another and retry."""
    for attempt in range(attempts):
        try:
            pg.start(state, side)
            return
        except SandboxError:
            try:
                taken = "already in use" in state.log_file(side).read_text(errors="replace")[-4000:]
            except OSError:
                taken = False
            if not taken or attempt == attempts - 1:
                raise
        state.clusters[side]["port"] = free_port()
        pg.set_port(state.data_dir(side), state.port(side))
        _write_state(state)


def _write_state(state: SandboxState) -> None:
    write_json(state.state_dir / STATE, {"regions": state.regions, "osUser": state.os_user, "pgroot": str(state.pgroot),
                                         "clusters": state.clusters, "daemonPid": state.spawned_daemon_pid})


def _pgroot(state_dir: Path, user: str | None) -> Path:
    """Where the clusters live: under the state dir if the postgres OS user can reach it, else a temp dir."""
    if user is None:
        root = state_dir / "pg"
        root.mkdir(mode=0o700, exist_ok=True)
        return root
    os.chmod(state_dir, 0o755)
    if all(os.stat(p).st_mode & 0o001 for p in [state_dir, *state_dir.parents]):
        root = state_dir / "pg"
        root.mkdir(mode=0o700, exist_ok=True)
    else:  # e.g. pytest's 0700 tmp dirs: the postgres user could not reach a data dir in there
        root = Path(tempfile.mkdtemp(prefix="pilotlight-pg-"))
    pg.chown(root, user)
    return root


def _start_daemon(state: SandboxState, schedule_speed: float = 0, rds_timing: str = "fast") -> subprocess.Popen:
    out = open(state.state_dir / "logs" / "daemon.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", DAEMON_MARKER, "--state-dir", str(state.state_dir),
         "--regions", ",".join(state.regions[s] for s in SIDES), "--schedule-speed", str(schedule_speed),
         "--rds-timing", rds_timing],
        cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_daemon(state_dir: Path, proc: subprocess.Popen) -> dict[str, Any]:
    deadline = time.monotonic() + DAEMON_READY_SECONDS
    while time.monotonic() < deadline:
        info = read_json(state_dir / DAEMON)
        if info:
            return info
        if proc.poll() is not None:
            raise SandboxError(f"sandbox daemon exited ({proc.returncode}); see {state_dir / 'logs' / 'daemon.log'}")
        time.sleep(0.05)
    raise SandboxError(f"sandbox daemon not ready after {DAEMON_READY_SECONDS}s; see {state_dir / 'logs'}")


def down(state_dir: Path) -> dict[str, Any]:
    """Stop every process the sandbox started and remove its state (logs are kept)."""
    state_dir = state_dir.absolute()
    try:
        state = load(state_dir)
    except SandboxError:
        return {"stopped": [], "leftRunning": [], "wasRunning": False}
    pids = _pids(state)
    pitr.stop_all_restored(state)
    for name in state.clusters:
        if Path(state.clusters[name]["dataDir"]).exists():
            pg.stop(state, name, mode="immediate")
    terminate(state.daemon_pid, DAEMON_MARKER)
    terminate(state.daemon.get("motoPid"), MOTO_MARKER)
    left = [name for name, (pid, marker) in pids.items() if pid_alive(pid, marker)]
    if left:
        raise SandboxError(f"could not stop: {', '.join(left)}; see {state_dir / 'logs'}")
    shutil.rmtree(state.pgroot, ignore_errors=True)
    shutil.rmtree(state_dir / "snapshots", ignore_errors=True)
    for name in (OUTPUTS, DAEMON, PASSFILE, REPLICATION, "replicator.json", CREDENTIALS, RDS_STATE, STATE):
        (state_dir / name).unlink(missing_ok=True)
    return {"stopped": sorted(name for name, (pid, _) in pids.items() if pid), "leftRunning": [], "wasRunning": True}


def _pids(state: SandboxState) -> dict[str, tuple[int | None, str]]:
    pids = {name: (pg.postmaster_pid(state, name), "postgres") for name in state.clusters}
    pids["daemon"] = (state.daemon_pid, DAEMON_MARKER)
    pids["moto"] = (state.daemon.get("motoPid"), MOTO_MARKER)
    return pids


def status(state_dir: Path) -> dict[str, Any]:
    """Each process (pid, alive), each cluster's role, and the daemon's view of health checks and proxies."""
    state_dir = state_dir.absolute()
    try:
        state = load(state_dir)
    except SandboxError:
        return {"state": "down", "healthy": False, "stateDir": str(state_dir), "processes": {}}
    processes = {name: {"pid": pid, "alive": pid_alive(pid, marker)} for name, (pid, marker) in _pids(state).items()}
    stopped = _stopped_clusters(state_dir)
    serving = {state.instance_cluster(side) for side in SIDES}
    for side in state.clusters:
        processes[side]["port"] = state.port(side)
        if side in stopped:
            processes[side]["rdsStatus"] = stopped[side]
        if side not in serving:
            stopped.setdefault(side, "retired")
            processes[side]["rdsStatus"] = stopped[side]
        if processes[side]["alive"]:
            try:
                processes[side]["role"] = "standby" if pg.is_in_recovery(state, side) else "primary"
            except Exception as exc:  # noqa: BLE001 - report, do not fail, a cluster that does not answer
                processes[side]["role"] = f"unreachable ({type(exc).__name__})"
    daemon = None
    if processes["daemon"]["alive"]:
        try:
            daemon = request(state, {"op": "status"})
        except SandboxError as exc:
            daemon = {"ok": False, "error": str(exc)}
    healthy = all(p["alive"] for n, p in processes.items() if n not in stopped) and bool(daemon and daemon.get("ok"))
    alive = any(p["alive"] for p in processes.values())
    return {"state": "up" if healthy else ("degraded" if alive else "dead"), "healthy": healthy,
            "stateDir": str(state_dir), "outputs": str(state_dir / OUTPUTS), "processes": processes, "daemon": daemon}


def _stopped_clusters(state_dir: Path) -> dict[str, str]:
    """Clusters that need not run: their emulated RDS instance is stopped (or going), or it is retired
    (the contract no longer names it after a failback; a killed old primary stays down)."""
    rds = read_json(state_dir / RDS_STATE) or {}
    return {i["cluster"]: i["DBInstanceStatus"] for i in rds.get("instances", {}).values()
            if i["DBInstanceStatus"] in ("stopped", "stopping", "deleting")}


def request(state: SandboxState, payload: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
    """One request to the daemon's control socket; SandboxError if it does not answer or refuses."""
    port = state.daemon.get("controlPort")
    if not port:
        raise SandboxError(f"sandbox daemon in {state.state_dir} is not running; run `pilotlight sandbox up`")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(json.dumps(payload).encode() + b"\n")
            data = sock.makefile("rb").readline()
    except OSError as exc:
        raise SandboxError(f"sandbox daemon does not answer ({exc.strerror or exc}); run `pilotlight sandbox up`") from None
    reply = json.loads(data or b"{}")
    if not reply.get("ok"):
        raise SandboxError(f"sandbox daemon: {reply.get('error', 'no answer')}")
    return reply
