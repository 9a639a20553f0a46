"""Emulated Route53 health checks: the sandbox probes the endpoints itself.

moto stores health checks but reports every one as healthy, so DNS failover would never
happen. This prober reads the health checks from moto (directly, not through a region
proxy: Route53 health checkers are a global data plane) and probes each one's
``IPAddress:Port`` the way Route53 would, only faster:

- every ``PROBE_INTERVAL`` (0.5 s) instead of ``RequestInterval`` (10 or 30 s on AWS);
- a TCP connect, and for PostgreSQL ports an SSLRequest that the server must answer
  (``N``/``S``): a half-dead port that accepts but never answers counts as a failure;
- unhealthy after ``FailureThreshold`` consecutive failures, healthy again after as many
  successes (Route53's rule), so with the example config (3) detection takes ~1.5 s.

A new health check starts healthy, as on Route53.

CALCULATED checks (the stack's "switch" on the PRIMARY record) are evaluated as Route 53 does:
healthy while at least ``HealthThreshold`` of ``ChildHealthChecks`` are healthy, so a threshold
above the number of children is always unhealthy (that is how ``active: dr`` forces the
failover), and ``Inverted`` flips the result. moto 5.2.5's UpdateHealthCheck forgets the
children when the call does not repeat them (AWS keeps them), so the last children seen are kept.
"""
from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from typing import Any

import boto3

from scripts.aws import botocore_config
from scripts.sandbox.state import EMULATOR_CREDENTIALS
from scripts.sandbox.state import ContractWatcher

log = logging.getLogger("pilotlight.sandbox.health")
PROBE_INTERVAL = 0.5
PROBE_TIMEOUT = 0.4
REFRESH_INTERVAL = 1.0
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def probe(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    """True if a PostgreSQL server answers on host:port (TCP connect + SSLRequest answered)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(_SSL_REQUEST)
            return sock.recv(1) in (b"N", b"S")
    except OSError:
        return False


class HealthProber:
    """A thread that keeps the status of every moto health check up to date."""

    def __init__(self, moto_url: str, watcher: ContractWatcher):
        self._route53 = boto3.session.Session().client(
            "route53", region_name="us-east-1", endpoint_url=moto_url,
            config=botocore_config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=1, read_timeout=5),
            **EMULATOR_CREDENTIALS)
        self._watcher = watcher
        self._checks: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-prober", daemon=True)
        self._refreshed = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def healthy(self, check_id: str) -> bool:
        """Route53's view: unknown checks count as healthy (moto would say so too)."""
        with self._lock:
            return self._healthy(check_id, 0)

    def _healthy(self, check_id: str, depth: int) -> bool:
        check = self._checks.get(check_id)
        if check is None:
            return True
        if "children" not in check:
            return check["healthy"]
        up = sum(self._healthy(child, depth + 1) for child in check["children"]) if depth < 3 else 0
        return (up >= check["healthThreshold"]) != check["inverted"]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {cid: {**{k: v for k, v in c.items() if k != "threshold"}, "healthy": self._healthy(cid, 0)}
                    for cid, c in self._checks.items()}

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                if started - self._refreshed > REFRESH_INTERVAL:
                    self._refresh()
                self._probe_all()
            except Exception as exc:  # noqa: BLE001 - keep probing through emulator hiccups
                log.warning("health prober: %s", exc)
            self._stop.wait(max(0.0, PROBE_INTERVAL - (time.monotonic() - started)))

    def _refresh(self) -> None:
        if self._watcher.get() is None:
            return
        found, calculated = {}, {}
        for page in self._route53.get_paginator("list_health_checks").paginate():
            for hc in page["HealthChecks"]:
                cfg = hc["HealthCheckConfig"]
                if cfg.get("Type") == "CALCULATED":
                    calculated[hc["Id"]] = cfg
                elif cfg.get("IPAddress") and cfg.get("Port"):
                    found[hc["Id"]] = (cfg["IPAddress"], int(cfg["Port"]), int(cfg.get("FailureThreshold", 3)))
        with self._lock:
            for cid in set(self._checks) - set(found) - set(calculated):
                del self._checks[cid]
            for cid, cfg in calculated.items():
                check = self._checks.setdefault(cid, {"children": [], "changedAt": time.time()})
                check.update(children=cfg.get("ChildHealthChecks") or check["children"],
                             healthThreshold=int(cfg.get("HealthThreshold", 1)), inverted=bool(cfg.get("Inverted")))
            for cid, (ip, port, threshold) in found.items():
                check = self._checks.setdefault(cid, {"healthy": True, "failures": 0, "successes": 0,
                                                      "changedAt": time.time()})
                check.update(ip=ip, port=port, threshold=threshold)
        self._refreshed = time.monotonic()

    def _probe_all(self) -> None:
        with self._lock:
            targets = [(cid, c["ip"], c["port"]) for cid, c in self._checks.items() if "children" not in c]
        for cid, ip, port in targets:
            ok = probe(ip, port)
            with self._lock:
                check = self._checks.get(cid)
                if check is None:
                    continue
                check["lastProbe"] = time.time()
                if ok:
                    check["successes"], check["failures"] = check["successes"] + 1, 0
                else:
                    check["failures"], check["successes"] = check["failures"] + 1, 0
                flip = (check["healthy"] and check["failures"] >= check["threshold"]) or (
                    not check["healthy"] and check["successes"] >= check["threshold"])
                if flip:
                    check["healthy"] = not check["healthy"]
                    check["changedAt"] = time.time()
                    log.info("health check %s (%s:%s) is now %s", cid, ip, port,
                             "healthy" if check["healthy"] else "unhealthy")
