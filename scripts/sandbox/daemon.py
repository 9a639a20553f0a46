"""The sandbox's one background process: moto, the region proxies, DNS, health checks, replication.

Started detached by `sandbox up` (``python -m scripts.sandbox.daemon --state-dir DIR --regions A,B``),
stopped by `sandbox down` with SIGTERM. It runs:

- the moto server as a child process (dies with us: PR_SET_PDEATHSIG), on a free loopback port;
- one :class:`~scripts.sandbox.proxy.Proxy` per region plus ``route53``, the endpoints in the contract;
- the DNS server (:mod:`scripts.sandbox.dns_server`), the health prober (:mod:`scripts.sandbox.health`)
  and the emulated S3 replicator (:mod:`scripts.sandbox.replicator`), which all talk to moto
  directly, never through a region proxy (they stand in for AWS-internal machinery);
- the automated-backups keeper (:mod:`scripts.sandbox.pitr`): DR copy of archived WAL and base
  backups after the copy delay, periodic base backups, retention;
- the emulated RDS control plane (:mod:`scripts.sandbox.rds`), reached through the region proxies;
- a control socket on loopback: one JSON request line, one JSON reply line
  (``{"op": "status"}``, ``{"op": "mode", "proxy": NAME, "mode": MODE}``,
  ``{"op": "rds-register", "instances": [...]}``), used by
  :mod:`scripts.sandbox.control`.

When everything listens it writes ``daemon.json`` (pids and ports), which `up` waits for.
"""
from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from scripts.sandbox.dns_server import DnsServer, ZoneView
from scripts.sandbox.health import HealthProber
from scripts.sandbox.pitr import BackupKeeper
from scripts.sandbox.proxy import Proxy
from scripts.sandbox.rds import RdsEmulator, Timing
from scripts.sandbox.replicator import Replicator
from scripts.sandbox.scheduler import JobScheduler
from scripts.sandbox.state import DAEMON, OUTPUTS, ContractWatcher, SandboxError, free_port, load, write_json

log = logging.getLogger("pilotlight.sandbox.daemon")
ROUTE53 = "route53"


def _die_with_parent() -> None:
    """In moto's child: get SIGTERM if the daemon dies, so moto never outlives it."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# moto 5.2.5 keeps a KMS key id in a fixed 36-byte field of its ciphertext blobs, which truncates
# multi-region key ids ("mrk-" + 36 chars), so Decrypt of anything a multi-region key wrapped fails
# with AccessDenied. Widen the field to 40 bytes (and strip the padding) before the server starts.
MOTO_SERVER = (
    "import moto.kms.utils as u;"
    "u.KEY_ID_LEN = 40; u.HEADER_LEN = 40 + u.IV_LEN + u.TAG_LEN;"
    "u.CIPHERTEXT_HEADER_FORMAT = f'>40s{u.IV_LEN}s{u.TAG_LEN}s';"
    "_d = u._deserialize_ciphertext_blob;"
    "u._deserialize_ciphertext_blob = lambda ciphertext_blob: "
    "(lambda c: c._replace(key_id=c.key_id.rstrip(chr(0))))(_d(ciphertext_blob=ciphertext_blob));"
    "import sys; from moto.server import main; sys.exit(main())"
)


def start_moto(logs: Path, attempts: int = 3) -> tuple[subprocess.Popen, int]:
    """moto on a free port; retried on a new port if someone took the one we picked before it bound."""
    for _ in range(attempts - 1):
        try:
            return _start_moto_once(logs)
        except RuntimeError as exc:
            log.warning("%s; retrying on another port", exc)
    return _start_moto_once(logs)


def _start_moto_once(logs: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    out = open(logs / "moto.log", "ab")
    proc = subprocess.Popen([sys.executable, "-c", MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            preexec_fn=_die_with_parent)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with {proc.returncode}; see {logs / 'moto.log'}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("moto server did not listen within 20s")


class Daemon:
    def __init__(self, state_dir: Path, regions: list[str], schedule_speed: float = 0, rds_timing: Timing = Timing()):
        self.state_dir = state_dir
        self.regions = regions
        self.rds_timing = rds_timing
        self.scheduler = JobScheduler(state_dir, state_dir / OUTPUTS, schedule_speed) if schedule_speed > 0 else None
        self.stopping = asyncio.Event()
        self.moto: subprocess.Popen | None = None

    async def serve(self) -> None:
        logs = self.state_dir / "logs"
        self.moto, moto_port = await asyncio.to_thread(start_moto, logs)
        moto_url = f"http://127.0.0.1:{moto_port}"
        watcher = ContractWatcher(self.state_dir / OUTPUTS)
        self.rds = RdsEmulator(self.state_dir, moto_url, watcher, self._region_reachable, self.rds_timing)
        self.rds.start()
        self.proxies = {name: Proxy(name, ("127.0.0.1", moto_port),
                                    rds_target=("127.0.0.1", self.rds.port) if name != ROUTE53 else None)
                        for name in [*self.regions, ROUTE53]}
        for proxy in self.proxies.values():
            await proxy.start()
        self.prober = HealthProber(moto_url, watcher)
        self.replicator = Replicator(moto_url, watcher, self._replication_paused)
        self.dns = DnsServer(ZoneView(moto_url, watcher, self.prober))
        self.keeper = BackupKeeper(self._state, self._replication_paused)
        await self.dns.start()
        control = await asyncio.start_server(self._control, "127.0.0.1", 0)
        self.prober.start()
        self.replicator.start()
        if self.scheduler:
            self.scheduler.replicated = self.replicator.settled
            self.scheduler.start()
        self.keeper.start()
        write_json(self.state_dir / DAEMON, {
            "pid": os.getpid(),
            "motoPid": self.moto.pid,
            "motoPort": moto_port,
            "motoUrl": moto_url,
            "proxies": {name: p.port for name, p in self.proxies.items()},
            "dnsPort": self.dns.port,
            "rdsPort": self.rds.port,
            "controlPort": control.sockets[0].getsockname()[1],
        })
        log.info("sandbox daemon ready: moto %s, dns %s", moto_url, self.dns.port)
        watchdog = asyncio.create_task(self._watch_moto())
        await self.stopping.wait()
        watchdog.cancel()
        control.close()
        await self._shutdown()

    def _state(self):
        """The sandbox's state for the backup keeper; None until `up` has written it."""
        try:
            return load(self.state_dir)
        except SandboxError:
            return None
    def _region_reachable(self, region: str) -> bool:
        proxy = self.proxies.get(region)
        return proxy is None or proxy.mode == "pass"

    def _replication_paused(self) -> bool:
        """S3 replication stops while either region is unreachable (it would on AWS too)."""
        return any(self.proxies[r].mode != "pass" for r in self.regions)

    async def _watch_moto(self) -> None:
        while self.moto.poll() is None:
            await asyncio.sleep(1)
        log.error("moto server exited with %s; stopping the daemon", self.moto.returncode)
        self.stopping.set()

    async def _shutdown(self) -> None:
        if self.scheduler:
            await asyncio.to_thread(self.scheduler.stop)
        self.prober.stop()
        self.replicator.stop()
        self.keeper.stop()
        self.rds.stop()
        self.dns.stop()
        for proxy in self.proxies.values():
            await proxy.stop()
        if self.moto and self.moto.poll() is None:
            self.moto.terminate()
            try:
                await asyncio.to_thread(self.moto.wait, 5)
            except subprocess.TimeoutExpired:
                self.moto.kill()
                self.moto.wait()
        log.info("sandbox daemon stopped")

    async def _control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(await reader.readline() or b"{}")
            reply = await self._dispatch(request)
        except Exception as exc:  # noqa: BLE001 - report any failure to the caller, keep serving
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        writer.write(json.dumps(reply).encode() + b"\n")
        try:
            await writer.drain()
        finally:
            writer.close()

    async def _dispatch(self, request: dict) -> dict:
        op = request.get("op")
        if op == "status":
            return {"ok": True, "pid": os.getpid(), "motoAlive": self.moto.poll() is None,
                    "proxies": {n: p.describe() for n, p in self.proxies.items()},
                    "healthChecks": self.prober.snapshot(), "replicator": self.replicator.snapshot(),
                    "automatedBackups": self.keeper.snapshot(),
                    "dns": {"port": self.dns.port, "queries": self.dns.queries}}
        if op == "mode":
            name = request.get("proxy")
            if name not in self.proxies:
                return {"ok": False, "error": f"unknown endpoint {name!r}; known: {', '.join(self.proxies)}"}
            await self.proxies[name].set_mode(request.get("mode", "pass"))
            return {"ok": True, "proxy": self.proxies[name].describe()}
        if op == "rds-register":
            self.rds.register(request.get("instances", []))
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pilotlight-sandbox-daemon", allow_abbrev=False)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--regions", required=True, help="comma-separated: primary,dr")
    parser.add_argument("--rds-timing", default="fast", help="fast, aws, or KEY=SECONDS,... (scripts.sandbox.rds)")
    parser.add_argument("--schedule-speed", type=float, default=0, help="run the contract's jobs this much faster (0: off)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    daemon = Daemon(args.state_dir.absolute(), args.regions.split(","), args.schedule_speed, Timing.parse(args.rds_timing))

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, daemon.stopping.set)
        await daemon.serve()

    try:
        asyncio.run(run())
    except Exception:
        log.exception("sandbox daemon failed")
        if daemon.moto and daemon.moto.poll() is None:
            daemon.moto.kill()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
