"""The service's Route53 failover records: read them, plan one atomic switch, apply it.

The stack pre-creates a failover pair for each service name: the record naming the primary
target is ``PRIMARY`` (with the health check), the one naming the DR target ``SECONDARY``.
While the primary is healthy Route53 answers it; when its health check fails Route53 answers
the standby — that is the data plane, and it needs no API call. A cutover makes the switch
permanent, independent of health, by swapping the two roles in ONE change batch: UPSERT the
DR record as ``PRIMARY`` and the old primary's record as ``SECONDARY`` (each keeps its target,
set identifier, TTL and health check). Route53 applies a batch all-or-nothing, so there is no
moment with two PRIMARY records or none. This is exactly the shape the stack program builds
with ``pilotlight:active dr``, so the next ``pulumi up`` agrees. A plain (non-failover) record
is simply re-pointed.
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


def records_side(db: Database, rrsets: list[dict[str, Any]]) -> str | None:
    """The side the records send traffic to regardless of health: the PRIMARY (or only) record's target."""
    for rrset in rrsets:
        if rrset.get("Failover", "PRIMARY") == "PRIMARY" or "SetIdentifier" not in rrset:
            return side_of(db, target_of(rrset))
    return None


def plan_switch(db: Database, rrsets: list[dict[str, Any]], to_side: str) -> list[dict[str, Any]]:
    """The change list that makes ``to_side``'s target answer; empty when the records already do.

    Pure: unit-tested directly and printed verbatim by ``--dry-run``.
    """
    if not rrsets:
        raise PilotlightError(f"no record set found for {db.dns.record_name} in the zone")
    if records_side(db, rrsets) == to_side:
        return []
    target = db.dns.dr_target if to_side == "dr" else db.dns.primary_target
    changes = []
    failover = [r for r in rrsets if "Failover" in r]
    if not failover:
        rrset = copy.deepcopy(rrsets[0])
        rrset["ResourceRecords"] = [{"Value": target}]
        return [{"Action": "UPSERT", "ResourceRecordSet": rrset}]
    for rrset in failover:
        role = "PRIMARY" if side_of(db, target_of(rrset)) == to_side else "SECONDARY"
        if rrset["Failover"] != role:
            changes.append({"Action": "UPSERT", "ResourceRecordSet": {**copy.deepcopy(rrset), "Failover": role}})
    if not any(c["ResourceRecordSet"]["Failover"] == "PRIMARY" for c in changes):
        raise PilotlightError(f"no failover record of {db.dns.record_name} names the {to_side} target {target}")
    return changes


def change_batch(db: Database, changes: list[dict[str, Any]], to_side: str) -> dict[str, Any]:
    return {"Comment": f"pilotlight cutover of {db.dns.record_name} to {to_side}", "Changes": changes}


def apply(contract: Contract, batch: dict[str, Any]) -> str:
    """Submit the batch and wait for INSYNC with boto3's waiter; returns the change id."""
    r53 = aws.client(contract, "route53", **CONTROL_PLANE_CONFIG)
    change = r53.change_resource_record_sets(HostedZoneId=contract.zone_id, ChangeBatch=batch)
    change_id = change["ChangeInfo"]["Id"]
    r53.get_waiter("resource_record_sets_changed").wait(Id=change_id, WaiterConfig=INSYNC_WAIT)
    return change_id
