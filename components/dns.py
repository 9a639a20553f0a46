"""Failover DNS: static PRIMARY/SECONDARY records per database, and one switch that picks the side.

Each service name gets two CNAME records that never change role: PRIMARY (set identifier
``primary``) targets the primary-region database, SECONDARY (``dr``) the standby. Route 53
refuses two PRIMARY records of one name, and every record update is its own change batch, so
swapping roles can never be one change; instead the PRIMARY record's health check is a
CALCULATED "switch" over the real signal. Its threshold is the number of children while the
primary side is active, and one more than that (which Route 53 treats as always unhealthy)
when ``active == "dr"``: the name then answers the standby and the old primary gets no traffic
until failback. ``pilotlight cutover`` makes exactly that one change (UpdateHealthCheck), so
``pulumi up --refresh`` afterwards agrees. The SECONDARY record has no health check: Route 53
treats it as healthy, so the name always has an answer.

The signal is the database, not the application: by default a primary-region alarm on the
primary instance's own metrics (an application outage never moves the database name). When
the alarm's region has no data to give (its CloudWatch failing with it) the check counts as
unhealthy, and alarm-based checks are re-synced whenever their alarm changes (``triggers``).
Optionally Route 53 ARC routing controls add a data-plane lever for operators, guarded by a
safety rule that keeps at least one side On.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

SIDES = ("primary", "dr")
# Route 53 health checks on a CloudWatch alarm: when the alarm has no data (its region's
# CloudWatch failing with the region) the primary must count as down, not as last known good.
NO_DATA_STATUS = "Unhealthy"


def switch_thresholds(children: int) -> dict[str, int]:
    """HealthThreshold of the switch per active side: all children healthy, or impossible (forced DR)."""
    if children < 1:
        raise ValueError("the switch needs at least one child health check")
    return {"primary": children, "dr": children + 1}


@dataclass(frozen=True)
class SignalArgs:
    """What decides that the primary side is down (plain values; stacks/ translates the config)."""

    type: str
    """``DATABASE`` (alarm on the primary instance), ``HTTPS``/``HTTP``/``TCP`` (endpoint) or ``CLOUDWATCH_METRIC``."""
    failure_threshold: int = 3
    """Consecutive failed probes (endpoint) or one-minute periods (DATABASE) before unhealthy."""
    fqdn: str = ""
    path: str = ""
    port: int = 443
    interval_seconds: int = 10
    alarm_name: str | None = None
    """Existing primary-region alarm (CLOUDWATCH_METRIC only)."""


def endpoint_check_args(signal: SignalArgs, alarm_region: str) -> dict[str, Any]:
    """pulumi-aws ``route53.HealthCheck`` arguments for a configured endpoint or alarm check."""
    if signal.type == "CLOUDWATCH_METRIC":
        return {
            "type": signal.type,
            "cloudwatch_alarm_name": signal.alarm_name,
            "cloudwatch_alarm_region": alarm_region,
            "insufficient_data_health_status": NO_DATA_STATUS,
            # The provider re-sends the alarm identity when a trigger changes (health_check.go).
            "triggers": {"alarm": f"{alarm_region}/{signal.alarm_name}"},
        }
    args = {
        "type": signal.type,
        "fqdn": signal.fqdn,
        "port": signal.port,
        "request_interval": signal.interval_seconds,
        "failure_threshold": signal.failure_threshold,
    }
    if signal.type in ("HTTP", "HTTPS"):
        args["resource_path"] = signal.path
    if signal.type == "HTTPS":
        args["enable_sni"] = True
    return args


def database_alarm_args(identifier: str, failure_threshold: int) -> dict[str, Any]:
    """The primary instance is down: it stopped reporting metrics (a running instance reports every minute)."""
    return {
        "namespace": "AWS/RDS",
        "metric_name": "DatabaseConnections",
        "dimensions": {"DBInstanceIdentifier": identifier},
        "statistic": "SampleCount",
        "period": 60,
        "evaluation_periods": failure_threshold,
        "threshold": 1,
        "comparison_operator": "LessThanThreshold",
        "treat_missing_data": "breaching",
    }


@dataclass
class FailoverRecord:
    key: str
    """Short name used in child resource names (the database name)."""
    record_name: str
    """Service name the application connects to, inside the zone."""
    primary_target: pulumi.Input[str]
    primary_identifier: str
    """RDS identifier of the primary instance (its metrics are the DATABASE signal)."""
    dr_target: pulumi.Input[str]


@dataclass
class FailoverDnsArgs:
    zone_id: str
    """Existing hosted zone (never created or modified by the stack)."""
    ttl: int
    """Record TTL; low (<= 60 s) so clients follow a failover quickly."""
    active: str
    """``primary`` | ``dr``: the switch lets the PRIMARY record answer, or forces the SECONDARY."""
    signal: SignalArgs
    alarm_region: str
    """The primary region: where the signal alarms live."""
    name_prefix: str
    """Prefix of Name tags, alarm and ARC names (``<project>-<stack>``)."""
    records: list[FailoverRecord] = field(default_factory=list)
    routing_control: bool = False
    """Route 53 ARC routing controls (billed hourly): off by default."""
    arc_provider: pulumi.ProviderResource | None = None
    """Provider for the ARC control-plane API (us-west-2 only); required with routing_control."""


@dataclass
class RecordOutputs:
    signal_check_id: pulumi.Output[str]
    switch_check_id: pulumi.Output[str]
    thresholds: dict[str, int]
    signal_alarm: dict[str, str] | None = None
    """``{name, region}`` of the DATABASE signal's alarm (failback re-points it to the new primary)."""


class FailoverDns(pulumi.ComponentResource):
    records: dict[str, RecordOutputs]
    routing_control_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: FailoverDnsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pilotlight:dr:FailoverDns", name, None, opts)
        self._name, self._args = name, args
        if args.active not in SIDES:
            raise ValueError(f"active must be 'primary' or 'dr', got {args.active!r}")
        self.routing_control_arns = {}
        controls = self._create_routing_control() if args.routing_control else None
        shared = None
        if args.signal.type != "DATABASE":
            shared = aws.route53.HealthCheck(
                f"{name}-primary",
                **endpoint_check_args(args.signal, args.alarm_region),
                tags={"Name": f"{args.name_prefix}-primary"},
                opts=pulumi.ResourceOptions(parent=self),
            ).id
        self.records = {}
        for rec in args.records:
            signal = shared if shared is not None else self._create_database_signal(rec)
            alarm = None if shared is not None else {"name": self._alarm_name(rec), "region": args.alarm_region}
            children = [signal] + ([controls["primary"]] if controls else [])
            thresholds = switch_thresholds(len(children))
            switch = aws.route53.HealthCheck(
                f"{name}-{rec.key}-switch",
                type="CALCULATED",
                child_healthchecks=children,
                child_health_threshold=thresholds[args.active],
                tags={"Name": f"{args.name_prefix}-{rec.key}-switch"},
                opts=pulumi.ResourceOptions(parent=self),
            )
            self._create_record(rec, "primary", rec.primary_target, switch.id)
            self._create_record(rec, "dr", rec.dr_target, controls["dr"] if controls else None)
            self.records[rec.key] = RecordOutputs(signal, switch.id, thresholds, alarm)
        self.register_outputs(
            {
                "signal_check_ids": {k: r.signal_check_id for k, r in self.records.items()},
                "switch_check_ids": {k: r.switch_check_id for k, r in self.records.items()},
                "routing_control_arns": self.routing_control_arns,
            }
        )

    def _create_record(self, rec: FailoverRecord, side: str, target: pulumi.Input[str],
                       check_id: pulumi.Input[str] | None) -> None:
        a = self._args
        aws.route53.Record(
            f"{self._name}-{rec.key}-{side}",
            zone_id=a.zone_id,
            name=rec.record_name,
            type="CNAME",
            ttl=a.ttl,
            records=[target],
            set_identifier=side,
            failover_routing_policies=[{"type": "PRIMARY" if side == "primary" else "SECONDARY"}],
            health_check_id=check_id,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_database_signal(self, rec: FailoverRecord) -> pulumi.Output[str]:
        """A primary-region alarm on the primary instance, and the health check that reads it."""
        a, name = self._args, self._name
        settings = database_alarm_args(rec.primary_identifier, a.signal.failure_threshold)
        alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-{rec.key}-primary-down",
            name=self._alarm_name(rec),
            alarm_description=f"Primary of {rec.key} stopped reporting metrics (stopped, failed or its region is down)",
            **settings,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.route53.HealthCheck(
            f"{name}-{rec.key}-signal",
            type="CLOUDWATCH_METRIC",
            cloudwatch_alarm_name=alarm.name,
            cloudwatch_alarm_region=a.alarm_region,
            insufficient_data_health_status=NO_DATA_STATUS,
            # Route 53 copies the alarm's settings when the check is created; a changed alarm is
            # re-synced only when the check is updated, which a trigger change forces.
            triggers={k: str(v) for k, v in settings.items()},
            tags={"Name": f"{a.name_prefix}-{rec.key}-signal"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[alarm]),
        ).id

    def _alarm_name(self, rec: FailoverRecord) -> str:
        return f"{self._args.name_prefix}-{rec.key}-primary-down"

    def _create_routing_control(self) -> dict[str, pulumi.Output[str]]:
        """Cluster, control panel, a routing control per side, their checks, and the safety rule.

        New routing controls start Off: set both On (docs/program.md) before relying on them. The
        assertion rule refuses any state change that would leave no side On.
        """
        a, name = self._args, self._name
        if a.arc_provider is None:
            raise ValueError("routing_control needs arc_provider (the ARC control plane is in us-west-2)")
        arc = pulumi.ResourceOptions(parent=self, provider=a.arc_provider)
        cluster = aws.route53recoverycontrol.Cluster(f"{name}-arc", name=f"{a.name_prefix}-arc"[:64], opts=arc)
        panel = aws.route53recoverycontrol.ControlPanel(
            f"{name}-panel", cluster_arn=cluster.arn, name=f"{a.name_prefix}-panel"[:64], opts=arc
        )
        checks, arns = {}, []
        for side in SIDES:
            control = aws.route53recoverycontrol.RoutingControl(
                f"{name}-{side}-control",
                cluster_arn=cluster.arn,
                control_panel_arn=panel.arn,
                name=f"{a.name_prefix}-{side}"[:64],
                opts=arc,
            )
            self.routing_control_arns[side] = control.arn
            arns.append(control.arn)
            checks[side] = aws.route53.HealthCheck(
                f"{name}-{side}-control",
                type="RECOVERY_CONTROL",
                routing_control_arn=control.arn,
                tags={"Name": f"{a.name_prefix}-{side}-control"},
                opts=pulumi.ResourceOptions(parent=self),
            ).id
        aws.route53recoverycontrol.SafetyRule(
            f"{name}-at-least-one-on",
            name=f"{a.name_prefix}-at-least-one-on"[:64],
            control_panel_arn=panel.arn,
            asserted_controls=arns,
            rule_config={"type": "ATLEAST", "threshold": 1, "inverted": False},
            wait_period_ms=5000,
            opts=arc,
        )
        return checks
