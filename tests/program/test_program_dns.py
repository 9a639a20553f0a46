"""Failover DNS: static records, a per-database signal on the database itself, and the switch."""
import pytest
from scripts.preview.runtime import run_stack
from stack_values import config, example_values

from components.dns import SignalArgs, endpoint_check_args, switch_thresholds
from stacks.policy.policies import MANDATORY, Res, evaluate

RECORD = "aws:route53/record:Record"
CHECK = "aws:route53/healthCheck:HealthCheck"


def records(run):
    return {r.inputs["setIdentifier"]: r for r in run.of_type(RECORD)}


def test_records_are_static_primary_targets_the_primary_and_secondary_the_standby(example, failed_over):
    for run in (example, failed_over):
        recs = records(run)
        assert set(recs) == {"primary", "dr"}
        for rec in recs.values():
            assert rec.inputs["zoneId"] == "Z0123456789EXAMPLE", rec.urn
            assert rec.inputs["name"] == "db.orders.example.com", rec.urn
            assert rec.inputs["type"] == "CNAME" and rec.inputs["ttl"] == 30, rec.urn
        assert recs["primary"].inputs["failoverRoutingPolicies"] == [{"type": "PRIMARY"}]
        assert recs["dr"].inputs["failoverRoutingPolicies"] == [{"type": "SECONDARY"}]
        assert recs["primary"].inputs["records"] == ["orders-prod.c9akciq32.us-east-1.rds.amazonaws.com"]
        assert recs["dr"].inputs["records"] == [run.document["databases"][0]["standby"]["host"]]


def test_primary_record_is_behind_the_switch_and_secondary_has_no_check(example):
    recs = records(example)
    switch = example.named("dns-orders-switch")
    assert recs["primary"].inputs["healthCheckId"] == switch.id, recs["primary"].urn
    # Route 53 treats a record without a health check as healthy: the name always has an answer.
    assert "healthCheckId" not in recs["dr"].inputs, recs["dr"].urn
    signal = example.named("dns-orders-signal")
    assert switch.inputs["type"] == "CALCULATED"
    assert switch.inputs["childHealthchecks"] == [signal.id]
    assert example.document["databases"][0]["dns"]["switch"] == {
        "healthCheckId": switch.id, "threshold": {"primary": 1, "dr": 2}}
    assert example.document["databases"][0]["dns"]["healthCheckId"] == signal.id


def test_switch_threshold_follows_the_flag_and_forces_dr_when_active_is_dr(example, failed_over):
    assert example.named("dns-orders-switch").inputs["childHealthThreshold"] == 1
    # One more than the number of children: Route 53 "always considers this health check to be unhealthy".
    assert failed_over.named("dns-orders-switch").inputs["childHealthThreshold"] == 2


def test_database_signal_is_a_primary_region_alarm_on_the_primary_instance(example):
    """Item 9b/9c: an application outage never moves the database; no data from the region is unhealthy."""
    signal, alarm = example.named("dns-orders-signal"), example.named("dns-orders-primary-down")
    assert alarm.region == "us-east-1", alarm.urn
    assert alarm.inputs["dimensions"] == {"DBInstanceIdentifier": "orders-prod"}, alarm.urn
    assert (alarm.inputs["comparisonOperator"], alarm.inputs["threshold"], alarm.inputs["treatMissingData"]) == (
        "LessThanThreshold", 1, "breaching"), alarm.urn
    assert signal.inputs["type"] == "CLOUDWATCH_METRIC", signal.urn
    assert (signal.inputs["cloudwatchAlarmName"], signal.inputs["cloudwatchAlarmRegion"]) == (alarm.inputs["name"], "us-east-1")
    assert signal.inputs["insufficientDataHealthStatus"] == "Unhealthy", signal.urn


def test_alarm_health_check_is_resynced_when_its_alarm_changes():
    """Item 9d: Route 53 copies an alarm's settings at creation; triggers force UpdateHealthCheck on change."""
    values = example_values()
    before = run_stack(config(values)).named("dns-orders-signal")
    values["dns"]["healthCheck"]["failureThreshold"] = 5
    after = run_stack(config(values)).named("dns-orders-signal")
    assert before.inputs["triggers"] != after.inputs["triggers"]
    assert after.inputs["triggers"]["evaluation_periods"] == "5"


def test_endpoint_and_private_alarm_checks_stay_available():
    values = example_values()
    values["dns"]["healthCheck"] = {"type": "CLOUDWATCH_METRIC", "alarmName": "orders-app-unhealthy"}
    run = run_stack(config(values))
    check = run.named("dns-primary")
    assert (check.inputs["cloudwatchAlarmName"], check.inputs["cloudwatchAlarmRegion"]) == ("orders-app-unhealthy", "us-east-1")
    assert check.inputs["insufficientDataHealthStatus"] == "Unhealthy"
    assert run.named("dns-orders-switch").inputs["childHealthchecks"] == [check.id]
    values["dns"]["healthCheck"] = {"type": "HTTPS", "fqdn": "api-us-east-1.example.com"}
    https = run_stack(config(values)).named("dns-primary")
    assert (https.inputs["fqdn"], https.inputs["resourcePath"], https.inputs["port"], https.inputs["enableSni"]) == (
        "api-us-east-1.example.com", "/health", 443, True)


def test_routing_control_adds_a_lever_and_a_safety_rule_but_no_role_swap():
    """Item 16: at least one routing control stays On; records keep their roles."""
    values = example_values()
    values["dns"]["routingControl"] = True
    for active in ("primary", "dr"):
        run = run_stack(config(values, active=active))
        controls = run.of_type("aws:route53recoverycontrol/routingControl:RoutingControl")
        assert {c.region for c in controls} == {"us-west-2"} and len(controls) == 2
        (rule,) = run.of_type("aws:route53recoverycontrol/safetyRule:SafetyRule")
        assert rule.inputs["ruleConfig"] == {"type": "ATLEAST", "threshold": 1, "inverted": False}, rule.urn
        assert len(rule.inputs["assertedControls"]) == 2, rule.urn
        checks = {c.name: c for c in run.of_type(CHECK)}
        switch = checks["dns-orders-switch"]
        assert switch.inputs["childHealthchecks"] == [checks["dns-orders-signal"].id, checks["dns-primary-control"].id]
        assert switch.inputs["childHealthThreshold"] == {"primary": 2, "dr": 3}[active]
        recs = records(run)
        assert recs["dr"].inputs["healthCheckId"] == checks["dns-dr-control"].id
        assert recs["primary"].inputs["failoverRoutingPolicies"] == [{"type": "PRIMARY"}]


def test_routing_control_is_off_by_default(example):
    assert not [r for r in example.resources.values() if r.type.startswith("aws:route53recoverycontrol/")]


def test_the_dr_policy_pack_finds_no_mandatory_violation_before_or_after_failover(example, failed_over):
    """Cross-check with stacks/policy (what `pilotlight check` and the policy pack enforce)."""
    for run in (example, failed_over):
        found = evaluate(
            [Res(r.type, r.urn, r.inputs) for r in run.resources.values()],
            {r.urn: r.region for r in run.resources.values()},
        )
        assert [(v.policy, v.urn, v.message) for v in found if v.level == MANDATORY] == []


def test_health_check_arguments_and_thresholds():
    tcp = endpoint_check_args(SignalArgs("TCP", 2, "db-east.example.com", "", 5432, 30), "us-east-1")
    assert tcp == {"type": "TCP", "fqdn": "db-east.example.com", "port": 5432, "request_interval": 30, "failure_threshold": 2}
    http = endpoint_check_args(SignalArgs("HTTP", 3, "a.example.com", "/up", 80, 10), "us-east-1")
    assert http["resource_path"] == "/up" and "enable_sni" not in http
    assert switch_thresholds(1) == {"primary": 1, "dr": 2} and switch_thresholds(2) == {"primary": 2, "dr": 3}
    with pytest.raises(ValueError):
        switch_thresholds(0)
