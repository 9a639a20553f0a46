"""Route 53 rules of the mock runtime: each raises on the combination Route 53 or the provider refuses."""
from __future__ import annotations

from dataclasses import replace

import pytest

from scripts.preview.awsrules import AwsRuleError, Resource, check_resource, check_stack, transition_problems
from scripts.preview.awsrules.route53 import HEALTH_CHECK, RECORD, SAFETY_RULE


def record(side: str, role: str, check: str | None = "hc-1") -> Resource:
    inputs = {"zoneId": "Z1", "name": "db.example.com", "type": "CNAME", "setIdentifier": side,
              "records": [f"{side}.example.com"], "failoverRoutingPolicies": [{"type": role}]}
    if check:
        inputs["healthCheckId"] = check
    return Resource(type=RECORD, name=f"rec-{side}", urn=f"urn:rec-{side}", inputs=inputs)


def test_two_records_of_one_role_are_refused():
    with pytest.raises(AwsRuleError, match="2 PRIMARY failover records"):
        check_stack([record("primary", "PRIMARY"), record("dr", "PRIMARY")])
    check_stack([record("primary", "PRIMARY"), record("dr", "SECONDARY", None)])


def test_swapping_roles_across_two_records_is_refused():
    """Issue 10, item 2: each record update is its own change batch; the old flip could never apply."""
    before = [record("primary", "PRIMARY"), record("dr", "SECONDARY")]
    after = [record("primary", "SECONDARY"), record("dr", "PRIMARY")]
    problems = transition_problems(before, after)
    assert len(problems) == 2 and all("route53-failover-role-change" in p for p in problems)


def test_a_primary_record_without_a_health_check_never_fails_over():
    with pytest.raises(AwsRuleError, match="never fails over"):
        check_resource(record("primary", "PRIMARY", None))
    check_resource(record("dr", "SECONDARY", None))


@pytest.mark.parametrize("inputs, message", [
    ({"type": "CALCULATED", "childHealthchecks": [], "childHealthThreshold": 1}, "1 to 256 child"),
    ({"type": "CALCULATED", "childHealthchecks": ["a"], "childHealthThreshold": 257}, "0 to 256"),
    ({"type": "CLOUDWATCH_METRIC", "cloudwatchAlarmName": "x"}, "cloudwatchAlarmRegion"),
    ({"type": "CLOUDWATCH_METRIC", "cloudwatchAlarmName": "x", "cloudwatchAlarmRegion": "us-east-1",
      "insufficientDataHealthStatus": "Maybe"}, "insufficientDataHealthStatus"),
])
def test_health_check_shapes(inputs, message):
    with pytest.raises(AwsRuleError, match=message):
        check_resource(Resource(type=HEALTH_CHECK, name="hc", urn="urn:hc", inputs=inputs))


def test_a_switch_forced_above_its_children_is_valid():
    """HealthThreshold > children is AWS's documented "always unhealthy", not an error."""
    check_resource(Resource(type=HEALTH_CHECK, name="hc", urn="urn:hc",
                            inputs={"type": "CALCULATED", "childHealthchecks": ["a"], "childHealthThreshold": 2}))


def test_arc_safety_rule_shape():
    good = Resource(type=SAFETY_RULE, name="sr", urn="urn:sr", inputs={
        "assertedControls": ["a", "b"], "ruleConfig": {"type": "ATLEAST", "threshold": 1, "inverted": False}})
    check_resource(good)
    with pytest.raises(AwsRuleError, match="assertion rule"):
        check_resource(replace(good, inputs=good.inputs | {"gatingControls": ["a"]}))
    with pytest.raises(AwsRuleError, match="ruleConfig.type"):
        check_resource(replace(good, inputs=good.inputs | {"ruleConfig": {"type": "SOME"}}))


def test_an_alarm_check_reads_only_standard_alarms_in_their_own_region():
    from scripts.preview.awsrules.route53 import ALARM

    alarm = Resource(type=ALARM, name="down", urn="urn:down", region="us-east-1",
                     inputs={"name": "orders-down", "statistic": "SampleCount", "period": 60})
    check = Resource(type=HEALTH_CHECK, name="signal", urn="urn:signal", inputs={
        "type": "CLOUDWATCH_METRIC", "cloudwatchAlarmName": "orders-down", "cloudwatchAlarmRegion": "us-east-1"})
    check_stack([alarm, check])
    for bad, message in (({"extendedStatistic": "p99", "statistic": None}, "statistic"),
                         ({"period": 10}, "high-resolution")):
        with pytest.raises(AwsRuleError, match=message):
            check_stack([replace(alarm, inputs=alarm.inputs | bad), check])
    with pytest.raises(AwsRuleError, match="it lives in us-west-2"):
        check_stack([replace(alarm, region="us-west-2"), check])
