"""Failover DNS: health check on the primary endpoint, PRIMARY/SECONDARY records, roles follow the flag."""
import pytest
from scripts.preview.runtime import run_stack
from stack_values import config, example_values

from components.dns import failover_roles, health_check_args
from stacks.config import HealthCheckConfig
from stacks.policy.policies import MANDATORY, Res, evaluate

RECORD = "aws:route53/record:Record"
CHECK = "aws:route53/healthCheck:HealthCheck"


def records(run):
    return {r.inputs["setIdentifier"]: r for r in run.of_type(RECORD)}


def test_https_health_check_from_config(example):
    check = example.named("dns-primary")
    assert check.inputs["type"] == "HTTPS", check.urn
    assert (check.inputs["fqdn"], check.inputs["resourcePath"], check.inputs["port"]) == ("api-us-east-1.example.com", "/health", 443)
    assert (check.inputs["requestInterval"], check.inputs["failureThreshold"]) == (10, 3), check.urn
    assert check.inputs["enableSni"] is True, check.urn


def test_failover_records_before_flip(example):
    recs = records(example)
    assert set(recs) == {"primary", "dr"}
    standby_host = example.document["databases"][0]["standby"]["host"]
    for side, rec in recs.items():
        assert rec.inputs["zoneId"] == "Z0123456789EXAMPLE", rec.urn
        assert rec.inputs["name"] == "db.orders.example.com", rec.urn
        assert rec.inputs["type"] == "CNAME" and rec.inputs["ttl"] == 30 and rec.inputs["ttl"] <= 60, rec.urn
    assert recs["primary"].inputs["failoverRoutingPolicies"] == [{"type": "PRIMARY"}]
    assert recs["dr"].inputs["failoverRoutingPolicies"] == [{"type": "SECONDARY"}]
    assert recs["primary"].inputs["records"] == ["orders-prod.c9akciq32.us-east-1.rds.amazonaws.com"]
    assert recs["dr"].inputs["records"] == [standby_host]
    check = example.named("dns-primary")
    assert recs["primary"].inputs["healthCheckId"] == check.id == example.document["databases"][0]["dns"]["healthCheckId"]
    assert recs["dr"].inputs["healthCheckId"] == example.named("dns-orders-standby-check").id


def test_dr_record_checks_its_standby_through_a_dr_region_alarm(example):
    check = example.named("dns-orders-standby-check")
    alarm = example.named("dns-orders-standby-down")
    assert check.inputs["type"] == "CLOUDWATCH_METRIC", check.urn
    assert (check.inputs["cloudwatchAlarmName"], check.inputs["cloudwatchAlarmRegion"]) == (alarm.inputs["name"], "us-west-2")
    assert check.inputs["insufficientDataHealthStatus"] == "LastKnownStatus", check.urn
    assert alarm.region == "us-west-2", alarm.urn
    assert alarm.inputs["dimensions"] == {"DBInstanceIdentifier": "pilotlight-dr-orders-standby"}, alarm.urn
    assert (alarm.inputs["comparisonOperator"], alarm.inputs["threshold"], alarm.inputs["treatMissingData"]) == (
        "LessThanThreshold", 1, "breaching"), alarm.urn


def test_roles_swap_after_flip(failed_over):
    recs = records(failed_over)
    assert recs["dr"].inputs["failoverRoutingPolicies"] == [{"type": "PRIMARY"}], recs["dr"].urn
    assert recs["primary"].inputs["failoverRoutingPolicies"] == [{"type": "SECONDARY"}], recs["primary"].urn


def test_cloudwatch_alarm_health_check_for_private_endpoints():
    values = example_values()
    values["dns"]["healthCheck"] = {"type": "CLOUDWATCH_METRIC", "alarmName": "orders-app-unhealthy"}
    check = run_stack(config(values)).named("dns-primary")
    assert check.inputs["type"] == "CLOUDWATCH_METRIC"
    assert (check.inputs["cloudwatchAlarmName"], check.inputs["cloudwatchAlarmRegion"]) == ("orders-app-unhealthy", "us-east-1")
    assert check.inputs["insufficientDataHealthStatus"] == "LastKnownStatus"
    assert "fqdn" not in check.inputs


def test_routing_control_is_off_by_default_and_drives_recovery_control_checks_when_on(example):
    assert not [r for r in example.resources.values() if r.type.startswith("aws:route53recoverycontrol/")]
    values = example_values()
    values["dns"]["routingControl"] = True
    run = run_stack(config(values))
    controls = run.of_type("aws:route53recoverycontrol/routingControl:RoutingControl")
    assert {c.region for c in controls} == {"us-west-2"} and len(controls) == 2
    checks = {c.name: c for c in run.of_type(CHECK)}
    assert checks["dns-primary-control"].inputs["type"] == "RECOVERY_CONTROL"
    assert checks["dns-dr-control"].inputs["type"] == "RECOVERY_CONTROL"
    recs = records(run)
    primary, dr = checks["dns-primary-combined"], checks["dns-orders-dr-combined"]
    assert recs["primary"].inputs["healthCheckId"] == primary.id
    assert recs["dr"].inputs["healthCheckId"] == dr.id
    assert primary.inputs["childHealthThreshold"] == 2 == dr.inputs["childHealthThreshold"]
    assert primary.inputs["childHealthchecks"] == [checks["dns-primary"].id, checks["dns-primary-control"].id]
    assert dr.inputs["childHealthchecks"] == [checks["dns-orders-standby-check"].id, checks["dns-dr-control"].id]


def test_the_dr_policy_pack_finds_no_mandatory_violation_before_or_after_failover(example, failed_over):
    """Cross-check with stacks/policy (what `pilotlight check` and the policy pack enforce)."""
    for run in (example, failed_over):
        found = evaluate(
            [Res(r.type, r.urn, r.inputs) for r in run.resources.values()],
            {r.urn: r.region for r in run.resources.values()},
        )
        assert [(v.policy, v.urn, v.message) for v in found if v.level == MANDATORY] == []


def test_health_check_arguments_per_type():
    tcp = health_check_args(HealthCheckConfig("TCP", "db-east.example.com", "", 5432, 30, 2), "us-east-1")
    assert tcp == {"type": "TCP", "fqdn": "db-east.example.com", "port": 5432, "request_interval": 30, "failure_threshold": 2}
    http = health_check_args(HealthCheckConfig("HTTP", "a.example.com", "/up", 80, 10, 3), "us-east-1")
    assert http["resource_path"] == "/up" and "enable_sni" not in http
    alarm = health_check_args(HealthCheckConfig("CLOUDWATCH_METRIC", "", "", 443, 10, 3, "app-down"), "eu-west-1")
    assert alarm == {
        "type": "CLOUDWATCH_METRIC",
        "cloudwatch_alarm_name": "app-down",
        "cloudwatch_alarm_region": "eu-west-1",
        "insufficient_data_health_status": "LastKnownStatus",
    }
    assert failover_roles("dr") == {"primary": "SECONDARY", "dr": "PRIMARY"}
    with pytest.raises(ValueError):
        failover_roles("secondary")
