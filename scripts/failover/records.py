"""The service's Route 53 failover records and the switch that picks the active side.

The stack declares a STATIC failover pair per service name: ``PRIMARY`` always targets the
primary-region endpoint, ``SECONDARY`` the DR endpoint; records never change role. The
PRIMARY record's health check is a CALCULATED check, the switch, over the real signal check:
with its normal threshold it follows the primary's health (data-plane failover, no API call);
with a threshold above its number of children Route 53 always considers it unhealthy, so it
answers the SECONDARY. ``pilotlight:active dr`` declares exactly that threshold, so a cutover
makes the one same change (``UpdateHealthCheck``) and the next ``pulumi up`` agrees.
Failback re-points a record's value at a new instance (``upsert_target``), as the stack will.
"""
from __future__ import annotations

import copy
from typing import Any

from scripts import aws
from scripts.common import PilotlightError
from scripts.contract import Contract, Database
from scripts.failover.dns import side_of

# A control plane that is down should cost seconds, not the default retry budget.
CONTROL_PLANE_CONFIG = dict(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=5)
INSYNC_WAIT = {"Delay": 5, "MaxAttempts": 60}  # Route53 propagates in ~60 s; give it 5 min


def _fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


def fetch(contract: Contract, db: Database) -> list[dict[str, Any]]:
    """The record sets for the service name (all types, all set identifiers)."""
    r53 = aws.client(contract, "route53", **CONTROL_PLANE_CONFIG)
    name = _fqdn(db.dns.record_name)
    found: list[dict[str, Any]] = []
    pages = r53.get_paginator("list_resource_record_sets").paginate(
        HostedZoneId=contract.zone_id, StartRecordName=name
    )
    for page in pages:
        for rrset in page["ResourceRecordSets"]:
            if rrset["Name"].lower() != name.lower():
                return found
            if rrset["Type"] in ("CNAME", "A", "AAAA"):
                found.append(rrset)
    return found


def target_of(rrset: dict[str, Any]) -> str | None:
    values = [r["Value"] for r in rrset.get("ResourceRecords", [])]
    return values[0].rstrip(".") if values else None


def switch_side(contract: Contract, db: Database) -> str | None:
    """The side the switch sends traffic to now: its HealthThreshold read back from Route 53."""
    switch = _switch(db)
    r53 = aws.client(contract, "route53", **CONTROL_PLANE_CONFIG)
    threshold = r53.get_health_check(HealthCheckId=switch.health_check_id)["HealthCheck"]["HealthCheckConfig"].get(
        "HealthThreshold")
    return next((side for side, value in switch.threshold.items() if value == threshold), None)


def set_switch(contract: Contract, db: Database, side: str) -> int:
    """UpdateHealthCheck of the switch to ``side``'s threshold: the one change ``pilotlight:active`` declares."""
    switch = _switch(db)
    r53 = aws.client(contract, "route53", **CONTROL_PLANE_CONFIG)
    r53.update_health_check(HealthCheckId=switch.health_check_id, HealthThreshold=switch.threshold[side])
    return switch.threshold[side]


def _switch(db: Database):
    if db.dns.switch is None:
        raise PilotlightError(f"the stack exports no switch health check for {db.name} (databases[].dns.switch); "
                              "upgrade the program and run `pulumi up`")
    return db.dns.switch


def upsert_target(contract: Contract, db: Database, set_identifier: str, target: str) -> str:
    """Re-point one failover record (by set identifier) at ``target``, keeping everything else; waits INSYNC."""
    for rrset in fetch(contract, db):
        if rrset.get("SetIdentifier") == set_identifier:
            if target_of(rrset) == target.rstrip("."):
                return "unchanged"
            changed = {**copy.deepcopy(rrset), "ResourceRecords": [{"Value": target}]}
            return apply(contract, {"Comment": f"pilotlight failback: {db.dns.record_name} {set_identifier} -> {target}",
                                    "Changes": [{"Action": "UPSERT", "ResourceRecordSet": changed}]})
    raise PilotlightError(f"no failover record {set_identifier!r} for {db.dns.record_name}")


def apply(contract: Contract, batch: dict[str, Any]) -> str:
    """Submit the batch and wait for INSYNC with boto3's waiter; returns the change id."""
    r53 = aws.client(contract, "route53", **CONTROL_PLANE_CONFIG)
    change = r53.change_resource_record_sets(HostedZoneId=contract.zone_id, ChangeBatch=batch)
    change_id = change["ChangeInfo"]["Id"]
    r53.get_waiter("resource_record_sets_changed").wait(Id=change_id, WaiterConfig=INSYNC_WAIT)
    return change_id
