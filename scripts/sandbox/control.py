"""The Python API drills and tests use to break and mend a running sandbox.

Every function takes the :class:`SandboxState` from :func:`load` and acts for real: clusters
are killed with SIGKILL, promoted with ``pg_ctl promote``, re-seeded with ``pg_basebackup``;
regions are made unreachable by the daemon's proxies (over its loopback control socket).
``side`` is ``"primary"`` or ``"dr"``; ``region`` is a region name (``"us-east-1"``) or ``"route53"``.

    from scripts.sandbox import control
    state = control.load(".pilotlight/sandbox")
    control.kill_cluster(state, "primary")
    control.block_region(state, state.regions["primary"])   # also blocks route53 when it is us-east-1
    control.promote(state, "dr")
    control.health(state)["dns"]["db.orders.example.com"]      # -> "dr"
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from scripts.sandbox import lifecycle
from scripts.sandbox import postgres as pg
from scripts.sandbox.state import DEFAULT_STATE_DIR, SIDES, SandboxError, SandboxState
from scripts.sandbox.state import load as _load

# Route53's control plane lives in us-east-1: taking that region away takes record changes with it.
ROUTE53_HOME = "us-east-1"
ROUTE53 = "route53"
PROMOTE_SECONDS = 60

__all__ = ["SandboxState", "SandboxError", "load", "kill_cluster", "stop_cluster", "start_cluster",
           "is_running", "is_in_recovery", "promote", "reseed_as_replica", "block_region", "unblock_region",
           "set_endpoint_mode", "health", "wait_for"]


def load(state_dir: str | Path = DEFAULT_STATE_DIR) -> SandboxState:
    """The running sandbox in ``state_dir`` (with its contract); SandboxError if there is none."""
    return _load(state_dir)


def _side(side: str, state: SandboxState | None = None) -> str:
    """The cluster serving ``side``'s instance now (the contract names it; failback may have replaced it)."""
    if side not in SIDES:
        raise SandboxError(f"side must be 'primary' or 'dr', got {side!r}")
    return state.instance_cluster(side) if state is not None else side


def kill_cluster(state: SandboxState, side: str) -> None:
    """Abrupt loss of a database: SIGKILL the postmaster and every backend at once (no checkpoint)."""
    pg.kill(state, _side(side, state))


def stop_cluster(state: SandboxState, side: str, mode: str = "fast") -> None:
    """Orderly stop (``pg_ctl stop -m fast``; ``immediate`` skips the shutdown checkpoint)."""
    pg.stop(state, _side(side, state), mode)


def start_cluster(state: SandboxState, side: str) -> None:
    """Start a stopped or killed cluster (crash recovery runs if it was killed); no-op if running."""
    cluster = _side(side, state)
    if pg.postmaster_pid(state, cluster) is None:
        pg.start(state, cluster)


def is_running(state: SandboxState, side: str) -> bool:
    return pg.postmaster_pid(state, _side(side, state)) is not None


def is_in_recovery(state: SandboxState, side: str) -> bool:
    """True while ``side`` is a standby (``pg_is_in_recovery()``)."""
    return pg.is_in_recovery(state, _side(side, state))


def promote(state: SandboxState, side: str) -> None:
    """``pg_ctl promote`` and wait until ``side`` accepts writes; no-op if it already does."""
    if not is_in_recovery(state, side):
        return
    pg.run(state, ["pg_ctl", "-D", str(state.data_dir(_side(side, state))), "-w", "-t", str(PROMOTE_SECONDS), "promote"],
           timeout=PROMOTE_SECONDS + 10)
    wait_for(lambda: not is_in_recovery(state, side), PROMOTE_SECONDS, f"{side} to leave recovery")


def reseed_as_replica(state: SandboxState, side: str, source_side: str) -> None:
    """Make ``side`` a fresh streaming replica of ``source_side``: stop, wipe, pg_basebackup -R, start.

    This is how the old primary comes back after a failover (failback), since its timeline diverged.
    """
    side, source_side = _side(side, state), _side(source_side, state)
    if side == source_side:
        raise SandboxError("a cluster cannot be a replica of itself")
    pg.stop(state, side, mode="immediate")
    pg.basebackup(state, side, source_side)
    pg.start(state, side)


def set_endpoint_mode(state: SandboxState, name: str, mode: str) -> dict[str, Any]:
    """Put one emulator endpoint (a region or ``route53``) in a proxy mode: pass|refuse|reset|stall|503."""
    return lifecycle.request(state, {"op": "mode", "proxy": name, "mode": mode})["proxy"]


def _endpoints_of(state: SandboxState, region: str) -> list[str]:
    names = [region]
    if region == ROUTE53_HOME and ROUTE53 in state.daemon.get("proxies", {}):
        names.append(ROUTE53)
    return names


def block_region(state: SandboxState, region: str, mode: str = "refuse") -> None:
    """Make a region's AWS endpoint unreachable (connections refused; open ones reset).

    Blocking us-east-1 also blocks ``route53`` (its control plane lives there); DNS answers and
    health checks (the data plane) keep working. Blocking either vault region pauses replication.
    """
    for name in _endpoints_of(state, region):
        set_endpoint_mode(state, name, mode)


def unblock_region(state: SandboxState, region: str) -> None:
    """Undo :func:`block_region`."""
    for name in _endpoints_of(state, region):
        set_endpoint_mode(state, name, "pass")


def health(state: SandboxState) -> dict[str, Any]:
    """One view of everything: processes, cluster roles, proxies, health checks, replicator, DNS answers.

    ``dns`` maps each database's record name to the side the sandbox DNS answers with now
    ("primary", "dr", or the raw target if it is neither).
    """
    report = lifecycle.status(state.state_dir)
    report["dns"] = {}
    if state.contract is not None and report["processes"].get("daemon", {}).get("alive"):
        from scripts.failover.service import resolve  # noqa: PLC0415 - service imports nothing from the sandbox

        for db in state.contract.databases:
            try:
                report["dns"][db.dns.record_name] = resolve(state.contract, db).side
            except Exception as exc:  # noqa: BLE001 - a health report never raises
                report["dns"][db.dns.record_name] = f"error: {exc}"
    return report


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll ``predicate`` until true; SandboxError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - not ready yet (e.g. connection refused while starting)
            pass
        time.sleep(interval)
    raise SandboxError(f"timed out after {timeout:.0f}s waiting for {what}")
