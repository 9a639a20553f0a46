"""Route 53 rules the mock runtime enforces; each cites where AWS or the provider states it.

The provider (terraform-provider-aws ``internal/service/route53/record.go``) sends one
ChangeResourceRecordSets per ``aws.route53.Record``: two records are never changed together.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Sequence

from scripts.preview.awsrules import Resource, changes, replace_only, resource_rule, stack_rule, transition_rule

RECORD = "aws:route53/record:Record"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
SAFETY_RULE = "aws:route53recoverycontrol/safetyRule:SafetyRule"

RECORD_GO = "terraform-provider-aws internal/service/route53/record.go"
HEALTH_CHECK_GO = "terraform-provider-aws internal/service/route53/health_check.go"
FAILOVER_VALUES = "https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/resource-record-sets-values-failover.html"
HEALTH_CHECK_CONFIG = "https://docs.aws.amazon.com/Route53/latest/APIReference/API_HealthCheckConfig.html"
CHOOSING_RECORDS = "https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/health-checks-how-route-53-chooses-records.html"

replace_only(RECORD, "zoneId", "name", "allowOverwrite", cite=f"{RECORD_GO} (schema: ForceNew)")
replace_only(HEALTH_CHECK, "type", "requestInterval", "measureLatency", "referenceName", "routingControlArn",
             cite=f"{HEALTH_CHECK_GO} (schema: ForceNew)")

INSUFFICIENT_DATA_STATUSES = ("Healthy", "Unhealthy", "LastKnownStatus")


def _role(record: Resource) -> str | None:
    policies = record.inputs.get("failoverRoutingPolicies") or []
    return policies[0].get("type") if policies else None


@stack_rule("route53-failover-pair", cite=f"{FAILOVER_VALUES} (one PRIMARY and one SECONDARY record per name and "
            "type, each with its own set identifier)")
def failover_pair(resources: Sequence[Resource]) -> Iterable[str]:
    groups: dict[tuple, list[Resource]] = defaultdict(list)
    for r in resources:
        if r.type == RECORD and _role(r):
            groups[(r.inputs.get("zoneId"), r.inputs.get("name"), r.inputs.get("type"))].append(r)
    for (_, name, kind), records in groups.items():
        roles = [_role(r) for r in records]
        for role in ("PRIMARY", "SECONDARY"):
            if roles.count(role) > 1:
                yield f"{name} {kind}: {roles.count(role)} {role} failover records (InvalidChangeBatch)"
        for r in records:
            if not r.inputs.get("setIdentifier"):
                yield f"{r.urn}: a failover record needs a setIdentifier"


@transition_rule("route53-failover-role-change", cite=f"{RECORD_GO} (one ChangeResourceRecordSets per record "
                 f"resource); {FAILOVER_VALUES} (one PRIMARY and one SECONDARY per name)")
def failover_role_change(before: Sequence[Resource], after: Sequence[Resource]) -> Iterable[str]:
    for c in changes(before, after):
        if c.op in ("update", "replace") and c.after.type == RECORD and _role(c.before) != _role(c.after):
            yield (f"{c.after.urn}: failover role {_role(c.before)} -> {_role(c.after)} is its own change batch; in "
                   "between, the name has two records of one role, which Route 53 refuses")


@resource_rule("route53-health-check-shape", HEALTH_CHECK, cite=f"{HEALTH_CHECK_CONFIG} (ChildHealthChecks for "
               "CALCULATED, up to 256; AlarmIdentifier for CLOUDWATCH_METRIC; InsufficientDataHealthStatus values); "
               f"{HEALTH_CHECK_GO}")
def health_check_shape(r: Resource) -> Iterable[str]:
    kind, i = r.inputs.get("type"), r.inputs
    if kind == "CALCULATED":
        children = i.get("childHealthchecks") or []
        if not 1 <= len(children) <= 256:
            yield f"a CALCULATED health check needs 1 to 256 child health checks, has {len(children)}"
        threshold = i.get("childHealthThreshold")
        if threshold is None or not 0 <= threshold <= 256:
            yield f"childHealthThreshold must be 0 to 256, got {threshold!r}"
    if kind == "CLOUDWATCH_METRIC":
        if not i.get("cloudwatchAlarmName") or not i.get("cloudwatchAlarmRegion"):
            yield "a CLOUDWATCH_METRIC health check needs cloudwatchAlarmName and cloudwatchAlarmRegion"
        status = i.get("insufficientDataHealthStatus")
        if status is not None and status not in INSUFFICIENT_DATA_STATUSES:
            yield f"insufficientDataHealthStatus must be one of {', '.join(INSUFFICIENT_DATA_STATUSES)}"


@resource_rule("route53-record-health-check", RECORD, cite=f"{CHOOSING_RECORDS} (a record without a health check "
               "is treated as healthy)")
def record_without_check_is_healthy(r: Resource) -> str | None:
    """A SECONDARY may go without a check (always answerable); a PRIMARY without one never fails over."""
    if _role(r) == "PRIMARY" and not r.inputs.get("healthCheckId"):
        return "a PRIMARY failover record without a health check is always healthy: it never fails over"
    return None


@resource_rule("arc-safety-rule-shape", SAFETY_RULE, cite="terraform-provider-aws internal/service/"
               "route53recoverycontrol/safety_rule.go (asserted_controls, or gating_controls with target_controls; "
               "rule_config type ATLEAST | AND | OR)")
def safety_rule_shape(r: Resource) -> Iterable[str]:
    i = r.inputs
    asserted, gating, target = i.get("assertedControls"), i.get("gatingControls"), i.get("targetControls")
    if bool(asserted) == bool(gating or target) or (gating and not target) or (target and not gating):
        yield "a safety rule is an assertion rule (assertedControls) or a gating rule (gatingControls + targetControls)"
    config = i.get("ruleConfig") or {}
    if config.get("type") not in ("ATLEAST", "AND", "OR"):
        yield f"ruleConfig.type must be ATLEAST, AND or OR, got {config.get('type')!r}"


ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ALARM_IDENTIFIER = "https://docs.aws.amazon.com/Route53/latest/APIReference/API_AlarmIdentifier.html"
ROUTE53_STATISTICS = ("Average", "Minimum", "Maximum", "Sum", "SampleCount")


@stack_rule("route53-alarm-check-supported-alarm", cite=f"{ALARM_IDENTIFIER} (standard-resolution metrics only; "
            "statistics Average, Minimum, Maximum, Sum, SampleCount; Region: where the alarm was created)")
def alarm_check_supported_alarm(resources: Sequence[Resource]) -> Iterable[str]:
    alarms = {r.inputs.get("name"): r for r in resources if r.type == ALARM}
    for check in resources:
        if check.type != HEALTH_CHECK or check.inputs.get("type") != "CLOUDWATCH_METRIC":
            continue
        alarm = alarms.get(check.inputs.get("cloudwatchAlarmName"))
        if alarm is None:
            continue  # an alarm of the user's own, outside the stack
        i = alarm.inputs
        if alarm.region and alarm.region != check.inputs.get("cloudwatchAlarmRegion"):
            yield f"{check.urn}: reads alarm {i.get('name')} in {check.inputs.get('cloudwatchAlarmRegion')}, it lives in {alarm.region}"
        if i.get("extendedStatistic") or i.get("metricQueries") or i.get("statistic") not in ROUTE53_STATISTICS:
            yield f"{check.urn}: Route 53 reads only alarms on one metric with statistic {', '.join(ROUTE53_STATISTICS)}"
        if (i.get("period") or 60) < 60:
            yield f"{check.urn}: Route 53 does not support high-resolution alarms (period {i.get('period')} s)"
