"""The DR stack: one class wiring the components, from a validated StackConfig.

Creates the primary-region and DR-region providers once (plus the ARC control-plane provider
when routing controls are on) and hands objects between components. ``build`` takes a
StackConfig so tests pass one in directly; ``__main__`` passes ``from_pulumi()``.
"""
from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.access import VaultAccess, VaultAccessArgs
from components.alarms import Alarms, AlarmsArgs, ReplicaLagTarget
from components.audit import VaultAudit, VaultAuditArgs
from components.rules import trail_arn_of
from components.dns import FailoverDns, FailoverDnsArgs, FailoverRecord
from components.keys import VaultKeys, VaultKeysArgs
from components.standby import Standby, StandbyArgs, StandbyNetwork, StandbyNetworkArgs
from components.vault import BackupVault, BackupVaultArgs
from stacks import naming, objectives
from stacks.config import SIDES, DatabaseConfig, StackConfig
from stacks.documents import vault_rules
from stacks.outputs import (BACKUP_AGE_METRIC, METRIC_NAMESPACE, outputs_document, primary_endpoint,
                            restore_target)

ARC_CONTROL_PLANE_REGION = "us-west-2"
ACCESS_ROLES_OUTPUT = "accessRoles"


class DrStack:
    """Everything the stack declares; ``document`` is the outputs contract (values are Outputs)."""

    def __init__(self, cfg: StackConfig):
        objectives.check(cfg)
        self.cfg = cfg
        tags = {"pilotlight:project": cfg.project, "pilotlight:stack": cfg.stack}
        self.providers = {
            side: aws.Provider(side, region=cfg.region(side), default_tags={"tags": tags}) for side in SIDES
        }
        primary = pulumi.ResourceOptions(providers=[self.providers["primary"]])
        dr = pulumi.ResourceOptions(providers=[self.providers["dr"]])
        self.keys = VaultKeys("keys", self._keys_args(), primary)
        key_arns = {side: self.keys.arn(side) for side in SIDES}
        self.vault = BackupVault("vault", self._vault_args(key_arns), primary)
        # IAM is global; the primary provider only decides which endpoint manages the roles.
        self.access = VaultAccess("access", self._access_args(key_arns), primary)
        self.network = StandbyNetwork("standby", self._network_args(), dr)
        self.standbys = {
            db.name: Standby(f"standby-{db.name}", self._standby_args(db, key_arns["dr"]), dr) for db in cfg.databases
        }
        self.dns = FailoverDns("dns", self._dns_args(), primary)
        self.alarms = Alarms("alarms", self._alarms_args(), primary)
        self.audit = VaultAudit("audit", self._audit_args(key_arns), primary)
        self.document = self._document()

    def _keys_args(self) -> VaultKeysArgs:
        cfg = self.cfg
        return VaultKeysArgs(
            alias=naming.key_alias(cfg),
            partition=cfg.partition,
            account_id=cfg.account_id,
            primary_region=cfg.primary_region,
            dr_region=cfg.dr_region,
            replication_role_arn=naming.role_arn(cfg, naming.replication_role_name(cfg)),
            # ARNs from names, not from VaultAccess: the roles' policies need the keys' ARNs (no cycle).
            backup_writer_role_arn=naming.role_arn(cfg, naming.backup_writer_role_name(cfg)),
            restore_reader_role_arn=naming.role_arn(cfg, naming.restore_reader_role_name(cfg)),
            break_glass_arn=naming.break_glass_arn(cfg),
            dr_provider=self.providers["dr"],
        )

    def _vault_args(self, key_arns: dict[str, pulumi.Output[str]]) -> BackupVaultArgs:
        cfg = self.cfg
        return BackupVaultArgs(
            vault=vault_rules(cfg),
            bucket_names={side: naming.vault_bucket_name(cfg, side) for side in SIDES},
            legacy_names=cfg.vault.bucket_suffix == "none",
            key_arns=key_arns,
            replication_role_name=naming.replication_role_name(cfg),
            account_id=cfg.account_id,
            regions={side: cfg.region(side) for side in SIDES},
            dr_provider=self.providers["dr"],
        )

    def _access_args(self, key_arns: dict[str, pulumi.Output[str]]) -> VaultAccessArgs:
        cfg = self.cfg
        return VaultAccessArgs(
            writer_role_name=naming.backup_writer_role_name(cfg),
            reader_role_name=naming.restore_reader_role_name(cfg),
            partition=cfg.partition,
            account_id=cfg.account_id,
            bucket_arns=dict(self.vault.bucket_arns),
            key_arns=key_arns,
            regions={side: cfg.region(side) for side in SIDES},
            metric_namespace=METRIC_NAMESPACE,
            # Only the stack's own break-glass role; a configured principal is the account's to manage.
            break_glass_role_name=None if cfg.vault.break_glass_arn else naming.break_glass_role_name(cfg),
        )

    def _standby_args(self, db: DatabaseConfig, key_arn: pulumi.Output[str]) -> StandbyArgs:
        cfg, s = self.cfg, self.cfg.standby
        return StandbyArgs(
            database=db,
            identifier=naming.standby_identifier(cfg, db),
            active=cfg.active,
            kms_key_arn=key_arn,
            network=self.network,
            backup_retention_days=s.backup_retention_days,
            performance_insights=s.performance_insights,
            monitoring_interval_seconds=s.monitoring_interval_seconds,
            deletion_protection=s.deletion_protection,
            password=cfg.db_password,
        )

    def _network_args(self) -> StandbyNetworkArgs:
        cfg, s = self.cfg, self.cfg.standby
        return StandbyNetworkArgs(
            vpc_id=s.vpc_id,
            subnet_ids=list(s.subnet_ids),
            ports=sorted({db.port for db in cfg.databases}),
            subnet_group_name=naming.subnet_group_name(cfg),
            parameter_group_name=naming.parameter_group_name(cfg),
            parameter_group_family=s.parameter_group_family,
            security_group_name=naming.security_group_name(cfg),
            allowed_cidrs=list(s.allowed_cidrs),
            allowed_security_group_ids=list(s.allowed_security_group_ids),
            monitoring_role_name=naming.monitoring_role_name(cfg) if s.monitoring_interval_seconds else None,
            partition=cfg.partition,
        )

    def _dns_args(self) -> FailoverDnsArgs:
        cfg = self.cfg
        arc = None
        if cfg.dns.routing_control:
            # The ARC control-plane API exists only in us-west-2, whatever the stack's regions.
            arc = aws.Provider("arc", region=ARC_CONTROL_PLANE_REGION)
        return FailoverDnsArgs(
            zone_id=cfg.dns.zone_id,
            ttl=cfg.dns.ttl,
            active=cfg.active,
            health_check=cfg.dns.health_check,
            alarm_region=cfg.primary_region,
            name_prefix=naming.base(cfg),
            dr_region=cfg.dr_region,
            dr_provider=self.providers["dr"],
            records=[
                FailoverRecord(
                    key=db.name,
                    record_name=db.record_name,
                    primary_target=db.primary_host,
                    dr_target=self.standbys[db.name].address,
                    dr_identifier=self.standbys[db.name].identifier,
                )
                for db in cfg.databases
            ],
            routing_control=cfg.dns.routing_control,
            arc_provider=arc,
        )

    def _trail_arn(self) -> str:
        cfg = self.cfg
        return trail_arn_of(cfg.partition, cfg.primary_region, cfg.account_id, naming.trail_name(cfg))

    def _audit_args(self, key_arns: dict[str, pulumi.Output[str]]) -> VaultAuditArgs:
        cfg = self.cfg
        return VaultAuditArgs(
            trail_name=naming.trail_name(cfg),
            trail_bucket_name=naming.trail_bucket_name(cfg),
            partition=cfg.partition,
            account_id=cfg.account_id,
            primary_region=cfg.primary_region,
            vault_bucket_names=dict(self.vault.bucket_names),
            vault_bucket_arns=dict(self.vault.bucket_arns),
            vault_key_arns=key_arns,
            topic_arns=dict(self.alarms.topic_arns),
            trail_key_arn=self.alarms.key_arns["primary"],
            dr_provider=self.providers["dr"],
            name_prefix=naming.base(cfg),
        )

    def _alarms_args(self) -> AlarmsArgs:
        cfg = self.cfg
        slack = cfg.alarms.backup_age_slack_seconds
        return AlarmsArgs(
            name_prefix=naming.base(cfg),
            topic_names={side: naming.topic_name(cfg, side) for side in SIDES},
            partition=cfg.partition,
            account_id=cfg.account_id,
            regions={side: cfg.region(side) for side in SIDES},
            key_alias=naming.alarm_key_alias(cfg),
            metric_namespace=METRIC_NAMESPACE,
            backup_age_metric=BACKUP_AGE_METRIC,
            trail_arn=self._trail_arn(),
            break_glass_arn=naming.break_glass_arn(cfg),
            active=cfg.active,
            dr_provider=self.providers["dr"],
            database_names=[db.name for db in cfg.databases],
            backup_age_thresholds={name: t.interval_seconds + slack for name, t in cfg.vault.tiers.items()},
            replication_source_bucket=self.vault.bucket_names["primary"],
            replication_destination_bucket=self.vault.bucket_names["dr"],
            replication_rule_id=self.vault.replication_rule_id,
            replica_lag_targets=[ReplicaLagTarget(name, s.identifier) for name, s in self.standbys.items()],
            replica_lag_threshold_seconds=cfg.objectives["regional-outage"].rpo_seconds,
            email=cfg.alarms.email,
        )

    def _document(self) -> dict[str, Any]:
        cfg = self.cfg
        databases = []
        for db in cfg.databases:
            standby = self.standbys[db.name]
            databases.append(
                {
                    "config": db,
                    "primary": primary_endpoint(db),
                    "standby": {"identifier": standby.identifier, "arn": standby.arn, "host": standby.address},
                    "dns": {
                        "recordName": db.record_name,
                        "healthCheckId": self.dns.health_check_id,
                        "primaryTarget": db.primary_host,
                        "drTarget": standby.address,
                    },
                    # A DR-region point-in-time restore lands in the standby's network, with its
                    # parameters and class, from the replicated automated backups (their id is the ARN).
                    "restore": {
                        "dr": restore_target(
                            subnet_group_name=self.network.subnet_group_name,
                            security_group_ids=[self.network.security_group_id],
                            parameter_group_name=self.network.parameter_group_name,
                            kms_key_id=self.keys.arn("dr"),
                            instance_class=db.instance_class,
                            automated_backups_arn=standby.backups_replication_id,
                        )
                    },
                }
            )
        return outputs_document(
            cfg,
            keys={side: {"arn": self.keys.arn(side), "alias": self.keys.alias} for side in SIDES},
            buckets={
                side: {"bucket": self.vault.bucket_names[side], "arn": self.vault.bucket_arns[side]} for side in SIDES
            },
            zone_id=cfg.dns.zone_id,
            databases=databases,
            topic_arn=self.alarms.active_topic_arn,
        )

    def export(self) -> None:
        """One ``pulumi.export`` per top-level contract key (what ``pulumi stack output --json`` prints).

        Plus ``accessRoles``, outside the contract document: which role each tool runs as. The
        contract parser ignores unknown top-level keys, so the tools never depend on it.
        """
        for key, value in self.document.items():
            pulumi.export(key, value)
        pulumi.export(ACCESS_ROLES_OUTPUT, self.access.arns())


def build(cfg: StackConfig) -> DrStack:
    stack = DrStack(cfg)
    stack.export()
    return stack
