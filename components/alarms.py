"""Alarms: KMS-encrypted SNS topics and the CloudWatch alarms that say DR is degrading.

A CloudWatch alarm can only notify a topic in its own region, so there is one topic per
region, each encrypted with a key of its own (never the vault key: the services that publish
alarms must be able to use the topic's key, and nothing that publishes should be able to touch
the backups' key). Each topic's policy lets CloudWatch and EventBridge (the vault audit rules,
components/audit.py) publish. Each alarm lives where its metric is published:

- standby ``ReplicaLag`` (DR region) above the RPO, while the standby is a replica;
- S3 replication latency above the RTC threshold and failed replications (primary region,
  where the source bucket reports them);
- backup age: the backup tool publishes ``Pilotlight/NewestBackupAgeSeconds`` per database and
  tier on every run; an alarm per tier fires at interval + slack (daily > 26 h with 2 h slack).
  Missing data is breaching: no report for two hourly periods in a row means the backup
  pipeline itself is down (two, so one run landing a few minutes into the next hour is not an
  incident). These alarms live in the active side's region, so they follow a failover.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import json

import pulumi
import pulumi_aws as aws

from components import rules

SIDES = ("primary", "dr")
BACKUP_AGE_PERIOD_SECONDS = 3600


@dataclass
class ReplicaLagTarget:
    key: str
    """Database name (used in child and alarm names)."""
    identifier: pulumi.Input[str]
    """RDS identifier of the standby."""


@dataclass
class AlarmsArgs:
    name_prefix: str
    """``<project>-<stack>``: prefix of every alarm name."""
    topic_names: dict[str, str]
    """SNS topic name per side."""
    partition: str
    account_id: str
    """The account whose services publish to the topics (key and topic policies)."""
    regions: dict[str, str]
    """Region per side (the alarm keys' policies)."""
    key_alias: str
    """Alias of the alarm topics' own key in each region, e.g. ``alias/pilotlight-dr-alarms``."""
    metric_namespace: str
    backup_age_metric: str
    """Where the backup tool publishes backup age (the contract's ``alarms`` section)."""
    active: str
    """``primary`` | ``dr``: backup-age alarms live on this side; replica-lag only while ``primary``."""
    dr_provider: pulumi.ProviderResource
    database_names: list[str]
    """Protected databases (dimension ``Database`` of the backup-age metric)."""
    backup_age_thresholds: dict[str, int]
    """Tier -> seconds after which the newest backup is too old (interval + slack)."""
    replication_source_bucket: pulumi.Input[str]
    replication_destination_bucket: pulumi.Input[str]
    replication_rule_id: str
    replica_lag_targets: list[ReplicaLagTarget] = field(default_factory=list)
    replica_lag_threshold_seconds: int = 60
    """Usually the regional-outage RPO: more lag than this means the RPO is already lost."""
    replication_latency_threshold_seconds: int = 900
    """S3 Replication Time Control promises 15 minutes."""
    email: str | None = None
    """Optional email subscription on both topics (confirm it from the inbox)."""
    trail_arn: str | None = None
    """The vault audit trail, which encrypts its logs with the primary-region alarm key."""
    break_glass_arn: str = ""
    """The only principal the alarm keys let schedule their deletion or disable them."""


class Alarms(pulumi.ComponentResource):
    topic_arns: dict[str, pulumi.Output[str]]
    active_topic_arn: pulumi.Output[str]
    key_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pilotlight:dr:Alarms", name, None, opts)
        self._name, self._args = name, args
        self.key_arns = {side: self._create_key(side).arn for side in SIDES}
        self.topic_arns = {side: self._create_topic(side).arn for side in SIDES}
        if args.active == "primary":
            for target in args.replica_lag_targets:
                self._create_replica_lag(target)
        self._create_replication_alarms()
        for db in args.database_names:
            for tier, threshold in args.backup_age_thresholds.items():
                self._create_backup_age(db, tier, threshold)
        self.active_topic_arn = self.topic_arns[args.active]
        self.register_outputs({"topic_arns": self.topic_arns, "active_topic_arn": self.active_topic_arn,
                               "key_arns": self.key_arns})

    def _opts(self, side: str) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._args.dr_provider if side == "dr" else None)

    def _create_key(self, side: str) -> aws.kms.Key:
        a = self._args
        key = aws.kms.Key(
            f"{self._name}-{side}-key",
            description="Pilotlight alarm topics (CloudWatch alarms, vault audit events)",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=json.dumps(rules.alarm_key_policy(partition=a.partition, account_id=a.account_id,
                                                     region=a.regions[side], break_glass_arn=a.break_glass_arn,
                                                     trail_arn=a.trail_arn if side == "primary" else None)),
            opts=self._opts(side),
        )
        aws.kms.Alias(f"{self._name}-{side}-key-alias", name=a.key_alias, target_key_id=key.key_id,
                      opts=self._opts(side))
        return key

    def _create_topic(self, side: str) -> aws.sns.Topic:
        a = self._args
        topic = aws.sns.Topic(
            f"{self._name}-{side}",
            name=a.topic_names[side],
            kms_master_key_id=self.key_arns[side],
            opts=self._opts(side),
        )
        aws.sns.TopicPolicy(
            f"{self._name}-{side}-policy",
            arn=topic.arn,
            policy=topic.arn.apply(lambda arn: json.dumps(rules.topic_policy(arn, a.account_id))),
            opts=self._opts(side),
        )
        if a.email:
            aws.sns.TopicSubscription(
                f"{self._name}-{side}-email",
                topic=topic.arn,
                protocol="email",
                endpoint=a.email,
                opts=self._opts(side),
            )
        return topic

    def _alarm(self, side: str, logical: str, alarm_name: str, **kwargs) -> aws.cloudwatch.MetricAlarm:
        topic = self.topic_arns[side]
        return aws.cloudwatch.MetricAlarm(
            f"{self._name}-{logical}",
            name=alarm_name,
            alarm_actions=[topic],
            ok_actions=[topic],
            opts=self._opts(side),
            **kwargs,
        )

    def _create_replica_lag(self, target: ReplicaLagTarget) -> None:
        a = self._args
        self._alarm(
            "dr",
            f"{target.key}-replica-lag",
            f"{a.name_prefix}-{target.key}-replica-lag",
            alarm_description=f"Standby of {target.key} lags more than the RPO ({a.replica_lag_threshold_seconds} s)",
            namespace="AWS/RDS",
            metric_name="ReplicaLag",
            dimensions={"DBInstanceIdentifier": target.identifier},
            statistic="Maximum",
            period=60,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            threshold=a.replica_lag_threshold_seconds,
            comparison_operator="GreaterThanThreshold",
            # A broken replica stops reporting lag: silence is a failure here.
            treat_missing_data="breaching",
        )

    def _create_replication_alarms(self) -> None:
        a = self._args
        dims = {
            "SourceBucket": a.replication_source_bucket,
            "DestinationBucket": a.replication_destination_bucket,
            "RuleId": a.replication_rule_id,
        }
        self._alarm(
            "primary",
            "vault-replication-latency",
            f"{a.name_prefix}-vault-replication-latency",
            alarm_description="Vault replication to the DR region is slower than Replication Time Control",
            namespace="AWS/S3",
            metric_name="ReplicationLatency",
            dimensions=dims,
            statistic="Maximum",
            period=300,
            evaluation_periods=1,
            threshold=a.replication_latency_threshold_seconds,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",  # no uploads, no latency datapoints
        )
        self._alarm(
            "primary",
            "vault-replication-failed",
            f"{a.name_prefix}-vault-replication-failed",
            alarm_description="Vault objects failed to replicate to the DR region",
            namespace="AWS/S3",
            metric_name="OperationsFailedReplication",
            dimensions=dims,
            statistic="Sum",
            period=300,
            evaluation_periods=1,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
        )

    def _create_backup_age(self, db: str, tier: str, threshold: int) -> None:
        a = self._args
        self._alarm(
            a.active,
            f"{db}-backup-age-{tier}",
            f"{a.name_prefix}-{db}-backup-age-{tier}",
            alarm_description=f"Newest {tier} backup of {db} is older than {threshold} s",
            namespace=a.metric_namespace,
            metric_name=a.backup_age_metric,
            dimensions={"Database": db, "Tier": tier},
            statistic="Maximum",
            period=BACKUP_AGE_PERIOD_SECONDS,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            threshold=threshold,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="breaching",
        )
