"""Failover DNS: a health check on the primary endpoint and PRIMARY/SECONDARY records per database.

Each service name gets two CNAME records with fixed set identifiers (``primary``, ``dr``); the
``active`` flag only decides which of them is PRIMARY. That is exactly what the emergency
``pilotlight cutover`` changes (one UPSERT swapping the roles, health checks untouched), so a
``pulumi up`` run after ``pilotlight:active`` is set to the new side agrees with the tool.

Both records carry a health check, fixed per side so a role swap never touches it: the
primary record checks the configured endpoint (HTTPS path, TCP, or a CloudWatch alarm for
private endpoints), so Route 53 fails over by itself when the primary dies; each DR record
checks its standby through a DR-region alarm that fires when the instance stops reporting
metrics (a running RDS instance reports every minute), so a dead standby is never the answer.
Optionally a Route 53 ARC routing control per side drives RECOVERY_CONTROL health checks, so
a planned switch is a data-plane state change rather than a record change.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from stacks.config import HealthCheckConfig

SIDES = ("primary", "dr")


def failover_roles(active: str) -> dict[str, str]:
    """Route 53 failover role of each side's record: the active side is PRIMARY."""
    if active not in SIDES:
        raise ValueError(f"active must be 'primary' or 'dr', got {active!r}")
    return {side: "PRIMARY" if side == active else "SECONDARY" for side in SIDES}


def health_check_args(check: HealthCheckConfig, alarm_region: str) -> dict[str, Any]:
    """pulumi-aws ``route53.HealthCheck`` arguments for the configured endpoint check."""
    if check.type == "CLOUDWATCH_METRIC":
        # Private endpoints: an alarm in the primary region judges health (its own periods set
        # the threshold); keep the last verdict when the alarm has no data rather than flapping.
        return {
            "type": check.type,
            "cloudwatch_alarm_name": check.alarm_name,
            "cloudwatch_alarm_region": alarm_region,
            "insufficient_data_health_status": "LastKnownStatus",
        }
    args = {
        "type": check.type,
        "fqdn": check.fqdn,
        "port": check.port,
        "request_interval": check.interval_seconds,
        "failure_threshold": check.failure_threshold,
    }
    if check.type in ("HTTP", "HTTPS"):
        args["resource_path"] = check.path
    if check.type == "HTTPS":
        args["enable_sni"] = True
    return args


@dataclass
class FailoverRecord:
    key: str
    """Short name used in child resource names (the database name)."""
    record_name: str
    """Service name the application connects to, inside the zone."""
    primary_target: pulumi.Input[str]
    dr_target: pulumi.Input[str]
    dr_identifier: pulumi.Input[str]
    """RDS identifier of the standby behind ``dr_target`` (its liveness drives the DR health check)."""


@dataclass
class FailoverDnsArgs:
    zone_id: str
    """Existing hosted zone (never created or modified by the stack)."""
    ttl: int
    """Record TTL; low (<= 60 s) so clients follow a failover quickly."""
    active: str
    """``primary`` | ``dr``: which side's record is PRIMARY."""
    health_check: HealthCheckConfig
    alarm_region: str
    """Region of the CloudWatch alarm for CLOUDWATCH_METRIC checks (the primary region)."""
    name_prefix: str
    """Prefix of Name tags, alarm and ARC names (``<project>-<stack>``)."""
    dr_region: str
    dr_provider: pulumi.ProviderResource
    """Provider for the DR region, where the standby-liveness alarms live."""
    records: list[FailoverRecord] = field(default_factory=list)
    routing_control: bool = False
    """Route 53 ARC routing controls (billed hourly): off by default."""
    arc_provider: pulumi.ProviderResource | None = None
    """Provider for the ARC control-plane API (us-west-2 only); required with routing_control."""


class FailoverDns(pulumi.ComponentResource):
    health_check_id: pulumi.Output[str]
    record_names: dict[str, str]
    routing_control_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: FailoverDnsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pilotlight:dr:FailoverDns", name, None, opts)
        self._name, self._args = name, args
        endpoint = aws.route53.HealthCheck(
            f"{name}-primary",
            **health_check_args(args.health_check, args.alarm_region),
            tags={"Name": f"{args.name_prefix}-primary"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.routing_control_arns = {}
        controls = self._create_routing_control() if args.routing_control else None
        primary_check = self._combine("primary", endpoint.id, controls["primary"]) if controls else endpoint.id
        roles = failover_roles(args.active)
        for rec in args.records:
            standby_check = self._create_standby_check(rec)
            dr_check = self._combine(f"{rec.key}-dr", standby_check, controls["dr"]) if controls else standby_check
            checks = {"primary": primary_check, "dr": dr_check}
            for side in SIDES:
                aws.route53.Record(
                    f"{name}-{rec.key}-{side}",
                    zone_id=args.zone_id,
                    name=rec.record_name,
                    type="CNAME",
                    ttl=args.ttl,
                    records=[rec.primary_target if side == "primary" else rec.dr_target],
                    set_identifier=side,
                    failover_routing_policies=[{"type": roles[side]}],
                    health_check_id=checks[side],
                    opts=pulumi.ResourceOptions(parent=self),
                )
        self.health_check_id = endpoint.id
        self.record_names = {rec.key: rec.record_name for rec in args.records}
        self.register_outputs(
            {
                "health_check_id": self.health_check_id,
                "record_names": self.record_names,
                "routing_control_arns": self.routing_control_arns,
            }
        )

    def _create_standby_check(self, rec: FailoverRecord) -> pulumi.Output[str]:
        """A health check on the standby: healthy while the instance reports metrics."""
        a, name = self._args, self._name
        alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-{rec.key}-standby-down",
            name=f"{a.name_prefix}-{rec.key}-standby-down",
            alarm_description=f"Standby of {rec.key} stopped reporting metrics (stopped, failed or gone)",
            namespace="AWS/RDS",
            metric_name="DatabaseConnections",
            dimensions={"DBInstanceIdentifier": rec.dr_identifier},
            statistic="SampleCount",
            period=60,
            evaluation_periods=3,
            threshold=1,
            comparison_operator="LessThanThreshold",
            treat_missing_data="breaching",
            opts=pulumi.ResourceOptions(parent=self, provider=a.dr_provider),
        )
        check = aws.route53.HealthCheck(
            f"{name}-{rec.key}-standby-check",
            type="CLOUDWATCH_METRIC",
            cloudwatch_alarm_name=alarm.name,
            cloudwatch_alarm_region=a.dr_region,
            # A brand-new check has no data yet: LastKnownStatus starts healthy instead of flapping.
            insufficient_data_health_status="LastKnownStatus",
            tags={"Name": f"{a.name_prefix}-{rec.key}-dr"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        return check.id

    def _create_routing_control(self) -> dict[str, pulumi.Output[str]]:
        """Cluster, control panel, a routing control per side and the RECOVERY_CONTROL checks they drive.

        New routing controls start Off: set primary On (docs/program.md) before relying on them.
        """
        a, name = self._args, self._name
        if a.arc_provider is None:
            raise ValueError("routing_control needs arc_provider (the ARC control plane is in us-west-2)")
        arc = pulumi.ResourceOptions(parent=self, provider=a.arc_provider)
        cluster = aws.route53recoverycontrol.Cluster(f"{name}-arc", name=f"{a.name_prefix}-arc"[:64], opts=arc)
        panel = aws.route53recoverycontrol.ControlPanel(
            f"{name}-panel", cluster_arn=cluster.arn, name=f"{a.name_prefix}-panel"[:64], opts=arc
        )
        checks = {}
        for side in SIDES:
            control = aws.route53recoverycontrol.RoutingControl(
                f"{name}-{side}-control",
                cluster_arn=cluster.arn,
                control_panel_arn=panel.arn,
                name=f"{a.name_prefix}-{side}"[:64],
                opts=arc,
            )
            self.routing_control_arns[side] = control.arn
            checks[side] = aws.route53.HealthCheck(
                f"{name}-{side}-control",
                type="RECOVERY_CONTROL",
                routing_control_arn=control.arn,
                tags={"Name": f"{a.name_prefix}-{side}-control"},
                opts=pulumi.ResourceOptions(parent=self),
            ).id
        return checks

    def _combine(self, what: str, check_id: pulumi.Input[str], control_check_id: pulumi.Input[str]) -> pulumi.Output[str]:
        """Healthy only while the endpoint is healthy AND the side's routing control is On."""
        a = self._args
        return aws.route53.HealthCheck(
            f"{self._name}-{what}-combined",
            type="CALCULATED",
            child_healthchecks=[check_id, control_check_id],
            child_health_threshold=2,
            tags={"Name": f"{a.name_prefix}-{what}-combined"},
            opts=pulumi.ResourceOptions(parent=self),
        ).id
