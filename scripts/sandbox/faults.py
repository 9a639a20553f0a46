"""Failures a drill injects into the sandbox for real: the sandbox side of a drill scenario.

A scenario asks :func:`regional_outage` (or :func:`database_loss`) for an injector; on anything but a sandbox it gets None
and brings its own (a real stack cannot lose a region on request). This is the only place a
drill learns that it runs in a sandbox.
"""
from __future__ import annotations

from typing import Any

from scripts.sandbox import control


class SandboxOutage:
    """Kill the primary cluster, cut the primary region (and Route53's control plane) off.

    ``kills_primary``: the primary endpoint really stops answering, so the health checks (and
    the switch that follows them) fail over DNS before anyone calls an API.
    """

    kills_primary = True

    def __init__(self, contract, options: dict[str, Any]):
        self.state = control.load(contract.sandbox.state_dir)
        # endpoint -> proxy mode; Route53's control plane fails as asked (refuse, stall, 503) or stays up
        self.faults = {contract.regions["primary"]: "refuse"}
        if options.get("control_plane", "refuse") != "up":
            self.faults["route53"] = options.get("control_plane", "refuse")

    def inject(self) -> str:
        control.kill_cluster(self.state, "primary")
        for endpoint, mode in self.faults.items():  # one proxy each, whatever region route53 lives in
            control.set_endpoint_mode(self.state, endpoint, mode)
        return "primary cluster SIGKILLed; " + ", ".join(f"{e}: {m}" for e, m in self.faults.items())

    def heal(self) -> None:
        """The region's endpoints answer again; the killed instance stays down (failback replaces it)."""
        for endpoint in self.faults:
            control.set_endpoint_mode(self.state, endpoint, "pass")

    def rollback(self) -> None:
        """The cutover never promoted: bring the primary back as it was."""
        control.start_cluster(self.state, "primary")


class SandboxInstanceLoss:
    """Kill the primary cluster only: its region, its RDS API and Route 53's control plane stay up."""

    kills_primary = True

    def __init__(self, contract):
        self.state = control.load(contract.sandbox.state_dir)

    def inject(self) -> str:
        control.kill_cluster(self.state, "primary")
        return "primary cluster SIGKILLed (its region stays up)"

    def heal(self) -> None:
        """Nothing to heal: the lost instance stays down (failback replaces it)."""

    def rollback(self) -> None:
        control.start_cluster(self.state, "primary")


def regional_outage(contract, options: dict[str, Any]) -> SandboxOutage | None:
    return SandboxOutage(contract, options) if contract.sandbox is not None else None


def database_loss(contract, options: dict[str, Any]) -> SandboxInstanceLoss | None:
    return SandboxInstanceLoss(contract) if contract.sandbox is not None else None
