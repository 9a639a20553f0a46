"""The failover rehearsal `pilotlight check` runs: the refreshed state after a cutover, and its invariants."""
from __future__ import annotations

from dataclasses import replace

from scripts.preview.awsrules import Resource
from scripts.preview.rehearsal import HEALTH_CHECK, INSTANCE, RECORD, after_cutover, rehearse

STANDBY = Resource(type=INSTANCE, name="standby", urn="urn:standby", region="us-west-2", inputs={
    "identifier": "orders-standby", "replicateSourceDb": "arn:aws:rds:us-east-1:123456789012:db:orders-prod"})
SWITCH = Resource(type=HEALTH_CHECK, name="switch", urn="urn:switch", inputs={
    "type": "CALCULATED", "childHealthchecks": ["signal"], "childHealthThreshold": 1})
PRIMARY = Resource(type=RECORD, name="primary", urn="urn:primary", inputs={
    "name": "db.example.com", "setIdentifier": "primary", "failoverRoutingPolicies": [{"type": "PRIMARY"}],
    "healthCheckId": "switch", "records": ["orders-prod.example.com"]})
OUTPUTS = {"databases": [{"standby": {"identifier": "orders-standby"}, "promotion": {"backupRetentionDays": 7}}]}


def test_after_cutover_the_standby_is_promoted_with_its_retention_and_the_switch_forced():
    standby, switch, record = after_cutover([STANDBY, SWITCH, PRIMARY], OUTPUTS)
    assert "replicateSourceDb" not in standby.inputs and standby.inputs["backupRetentionPeriod"] == 7
    assert switch.inputs["childHealthThreshold"] == 2
    assert record == PRIMARY


def test_a_failover_that_swaps_record_roles_or_replaces_a_database_fails_the_rehearsal():
    before = after_cutover([STANDBY, SWITCH, PRIMARY], OUTPUTS)
    swapped = replace(PRIMARY, inputs=PRIMARY.inputs | {"failoverRoutingPolicies": [{"type": "SECONDARY"}]})
    moved = replace(before[0], inputs=before[0].inputs | {"identifier": "orders-standby-2"})
    found = rehearse(before, [moved, before[1], swapped])
    assert any("would replace this database" in p for p in found.problems), found
    assert any("route53-failover-role-change" in p for p in found.problems), found
    assert rehearse(before, before).problems == ()
