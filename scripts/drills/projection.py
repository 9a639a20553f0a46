"""What a drill's RTO would be on AWS, from the stack's own figures, next to what the sandbox measured.

The sandbox fails over in about a second because its health prober, TTLs and promotion are
local; Route 53 and RDS are not. For the failover scenarios the projection is the same floor
the program checks at preview (stacks/objectives.py): health-check detection (interval x
failure threshold) + the record's TTL + the replica promotion budget, read from the outputs
contract's ``recovery`` section and ``dns.ttl``. Restores from the vault run the same tools on
AWS, so their time scales with the dump size, not with any stack figure: the projection says so
instead of inventing a number.
"""
from __future__ import annotations

from typing import Any

from scripts.contract import Contract
from scripts.units import seconds as human_seconds

FAILOVER = ("regional-outage", "database-loss")


def projected_rto(contract: Contract, scenario: str, measured: dict[str, Any], backup: dict | None) -> dict[str, Any]:
    """``{"seconds": float | None, "basis": str}``: the RTO to expect on AWS and how it was derived."""
    recovery = contract.raw.get("recovery") if isinstance(contract.raw, dict) else None
    if scenario in FAILOVER:
        if not isinstance(recovery, dict) or not all(isinstance(recovery.get(k), (int, float))
                                                     for k in ("detectionSeconds", "promotionSeconds")):
            return {"seconds": None, "basis": "the stack's outputs carry no recovery figures (re-run `pulumi up`)"}
        hc = recovery.get("healthCheck") or {}
        detection = float(recovery["detectionSeconds"])
        # Interval x threshold explains the detection only for an endpoint check; an alarm-based
        # signal (the DATABASE default) detects in its alarm's periods, which the figure already holds.
        counted = {"intervalSeconds", "failureThreshold"} <= set(hc) and hc["intervalSeconds"] * hc["failureThreshold"] == detection
        how = f"{hc['intervalSeconds']} s x {hc['failureThreshold']}" if counted else human_seconds(detection)
        total = detection + contract.ttl + float(recovery["promotionSeconds"])
        return {"seconds": total,
                "basis": f"health-check detection {how} + DNS TTL {contract.ttl} s + promotion budget "
                         f"{human_seconds(recovery['promotionSeconds'])}"}
    restored = (backup or {}).get("dumpBytes")
    size = f" ({restored} dump bytes here)" if restored else ""
    return {"seconds": None,
            "basis": f"restore from the vault: the same tools run on AWS, so the time scales with the dump size{size}; "
                     f"time a restore of the production size (`pilotlight verify --test-restore`)"}
