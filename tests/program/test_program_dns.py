"""Failover DNS: health check on the primary endpoint, PRIMARY/SECONDARY records, roles follow the flag."""
from harness import run_program
from stack_values import config, example_values

RECORD = "aws:route53/record:Record"
CHECK = "aws:route53/healthCheck:HealthCheck"


def records(run):
    return {r.inputs["setIdentifier"]: r for r in run.of_type(RECORD)}


def test_https_health_check_from_config(example):
    (check,) = example.of_type(CHECK)
    assert check.inputs["type"] == "HTTPS", check.urn
    assert (check.inputs["fqdn"], check.inputs["resourcePath"], check.inputs["port"]) == ("api.example.com", "/health", 443)
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
    (check,) = example.of_type(CHECK)
    assert recs["primary"].inputs["healthCheckId"] == example.document["databases"][0]["dns"]["healthCheckId"]
    assert check.urn in recs["primary"].dependencies
    assert "healthCheckId" not in recs["dr"].inputs


def test_roles_swap_after_flip(failed_over):
    recs = records(failed_over)
    assert recs["dr"].inputs["failoverRoutingPolicies"] == [{"type": "PRIMARY"}], recs["dr"].urn
    assert recs["primary"].inputs["failoverRoutingPolicies"] == [{"type": "SECONDARY"}], recs["primary"].urn


def test_cloudwatch_alarm_health_check_for_private_endpoints():
    values = example_values()
    values["dns"]["healthCheck"] = {"type": "CLOUDWATCH_METRIC", "alarmName": "orders-app-unhealthy"}
    (check,) = run_program(config(values)).of_type(CHECK)
    assert check.inputs["type"] == "CLOUDWATCH_METRIC"
    assert (check.inputs["cloudwatchAlarmName"], check.inputs["cloudwatchAlarmRegion"]) == ("orders-app-unhealthy", "us-east-1")
    assert check.inputs["insufficientDataHealthStatus"] == "LastKnownStatus"
    assert "fqdn" not in check.inputs


def test_routing_control_is_off_by_default_and_drives_recovery_control_checks_when_on(example):
    assert not [r for r in example.resources.values() if r.type.startswith("aws:route53recoverycontrol/")]
    values = example_values()
    values["dns"]["routingControl"] = True
    run = run_program(config(values))
    controls = run.of_type("aws:route53recoverycontrol/routingControl:RoutingControl")
    assert {c.region for c in controls} == {"us-west-2"} and len(controls) == 2
    checks = {c.name: c for c in run.of_type(CHECK)}
    assert checks["dns-primary-control"].inputs["type"] == "RECOVERY_CONTROL"
    assert checks["dns-primary-combined"].inputs["childHealthThreshold"] == 2
    recs = records(run)
    assert recs["primary"].inputs["healthCheckId"] == checks["dns-primary-combined"].id
    assert recs["dr"].inputs["healthCheckId"] == checks["dns-dr-control"].id
    assert checks["dns-primary-combined"].inputs["childHealthchecks"] == [checks["dns-primary"].id, checks["dns-primary-control"].id]
