"""The DR stack: one class wiring the components, from a validated StackConfig.

Creates the primary-region and DR-region providers once (plus the ARC control-plane provider
when routing controls are on) and hands objects between components. ``build`` takes a
StackConfig so tests pass one in directly; ``__main__`` passes ``from_pulumi()``.
"""
from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from components.access import VaultAccess, VaultAccessArgs
from components.alarms import Alarms, AlarmsArgs, ReplicaLagTarget
from components.audit import VaultAudit, VaultAuditArgs
from components.rules import trail_arn_of
from components.dns import FailoverDns, FailoverDnsArgs, FailoverRecord, SignalArgs
from components.jobs import JobDatabase, JobNetworkArgs, Jobs, JobsArgs
from components.keys import VaultKeys, VaultKeysArgs
from components.standby import Standby, StandbyArgs, StandbyNetwork, StandbyNetworkArgs
from components.vault import BackupVault, BackupVaultArgs
from stacks import naming, objectives
from stacks.jobsplan import job_specs
from stacks.config import DatabaseConfig, StackConfig
from stacks.documents import vault_rules
from stacks.outputs import outputs_document, primary_endpoint, promotion_document, restore_target
from stacks.vocabulary import BACKUP_AGE_METRIC, IDLE_REPLICA_LAG_SECONDS, METRIC_NAMESPACE, SIDES

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
            db.name: Standby(naming.standby_logical_name(db), self._standby_args(db, key_arns), dr)
            for db in cfg.databases
        }
        self.dns = FailoverDns("dns", self._dns_args(), primary)
        self.alarms = Alarms("alarms", self._alarms_args(), primary)
        self.audit = VaultAudit("audit", self._audit_args(key_arns), primary)
        base_document = self._document()
        # The tasks carry the contract without their own section (no cycle: jobs -> tasks -> contract).
        self.jobs = Jobs("jobs", self._jobs_args(pulumi.Output.from_input(base_document).apply(json.dumps)))
        self.document = {**base_document, "jobs": self.jobs.contract()}

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
            active=cfg.active,
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
            active=cfg.active,
        )

    def _jobs_args(self, contract_json: pulumi.Output[str]) -> JobsArgs:
        cfg, j = self.cfg, self.cfg.jobs
        return JobsArgs(
            name_prefix=naming.base(cfg),
            partition=cfg.partition,
            account_id=cfg.account_id,
            active=cfg.active,
            regions={side: cfg.region(side) for side in SIDES},
            providers=dict(self.providers),
            networks={
                "primary": JobNetworkArgs(j.primary_network.vpc_id, list(j.primary_network.subnet_ids)),
                "dr": JobNetworkArgs(cfg.standby.vpc_id, list(cfg.standby.subnet_ids)),
            },
            nat=j.nat,
            databases=[self._job_database(db) for db in cfg.databases],
            plan=job_specs(cfg, naming.base(cfg)),
            image=j.image,
            image_tag=j.image_tag,
            pg_major=cfg.pg_major,
            cpu=j.cpu,
            memory=j.memory,
            ephemeral_storage_gib=j.ephemeral_storage_gib,
            flexible_window_minutes=j.flexible_window_minutes,
            retry_attempts=j.retry_attempts,
            max_event_age_seconds=j.max_event_age_seconds,
            log_retention_days=j.log_retention_days,
            writer_role_arn=self.access.backup_writer_role_arn,
            reader_role_arn=self.access.restore_reader_role_arn,
            writer_role_name=naming.backup_writer_role_name(cfg),
            reader_role_name=naming.restore_reader_role_name(cfg),
            topic_arns=dict(self.alarms.topic_arns),
            contract_json=contract_json,
            break_glass_arn=naming.break_glass_arn(cfg),
        )

    def _job_database(self, db: DatabaseConfig) -> JobDatabase:
        """What a database's tasks may log in with: its secret in both regions (the DR one is the
        replica), the secret's key, or ``rds-db:connect`` as its user on the primary and the standby."""
        cfg = self.cfg
        secret = db.credentials_secret_arn
        users = [naming.db_user_arn(cfg, db, "primary", db.resource_id),
                 self.standbys[db.name].resource_id.apply(lambda rid: naming.db_user_arn(cfg, db, "dr", rid))] \
            if db.iam_auth else []
        return JobDatabase(
            db.name, db.port,
            secret_arns=[secret, naming.arn_in_region(secret, cfg.dr_region)] if secret else [],
            secret_key_arns=naming.secret_key_arns(cfg, db),
            iam_db_user_arns=users,
        )

    def _standby_args(self, db: DatabaseConfig, key_arns: dict[str, pulumi.Output[str]]) -> StandbyArgs:
        cfg, s = self.cfg, self.cfg.standby
        return StandbyArgs(
            identifier=naming.standby_identifier(cfg, db),
            source_arn=db.primary_arn,
            instance_class=db.instance_class,
            port=db.port,
            active=cfg.active,
            kms_key_arn=key_arns["dr"],
            primary_kms_key_arn=key_arns["primary"],
            primary_provider=self.providers["primary"],
            network=self.network,
            backup_retention_days=s.backup_retention_days,
            multi_az_when_promoted=s.multi_az_when_promoted,
            max_allocated_storage_gb=s.max_allocated_storage_gb,
            iam_database_authentication=db.iam_auth,
            # Generation 0 is created by the stack; later ones by `pilotlight failback`, then adopted.
            adopt=db.generation > 0,
            performance_insights=s.performance_insights,
            monitoring_interval_seconds=s.monitoring_interval_seconds,
            deletion_protection=s.deletion_protection,
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
        hc = cfg.dns.health_check
        return FailoverDnsArgs(
            zone_id=cfg.dns.zone_id,
            ttl=cfg.dns.ttl,
            active=cfg.active,
            signal=SignalArgs(type=hc.type, failure_threshold=hc.failure_threshold, fqdn=hc.fqdn, path=hc.path,
                              port=hc.port, interval_seconds=hc.interval_seconds, alarm_name=hc.alarm_name),
            alarm_region=cfg.primary_region,
            name_prefix=naming.base(cfg),
            records=[
                FailoverRecord(
                    key=db.name,
                    record_name=db.record_name,
                    primary_target=db.primary_host,
                    primary_identifier=db.primary_identifier,
                    dr_target=self.standbys[db.name].address,
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
            replica_lag_targets=[
                ReplicaLagTarget(db.name, self.standbys[db.name].identifier, db.primary_identifier)
                for db in cfg.databases
            ],
            replica_lag_threshold_seconds=cfg.objectives["regional-outage"].rpo_seconds,
            replica_lag_floor_seconds=IDLE_REPLICA_LAG_SECONDS,
            email=cfg.alarms.email,
        )

    def _document(self) -> dict[str, Any]:
        cfg = self.cfg
        databases = []
        for db in cfg.databases:
            standby, dns = self.standbys[db.name], self.dns.records[db.name]
            databases.append(
                {
                    "config": db,
                    "primary": primary_endpoint(db),
                    "standby": {"identifier": standby.identifier, "arn": standby.arn, "host": standby.address},
                    "dns": {
                        "recordName": db.record_name,
                        "healthCheckId": dns.signal_check_id,
                        "primaryTarget": db.primary_host,
                        "drTarget": standby.address,
                        "switch": {"healthCheckId": dns.switch_check_id, "threshold": dict(dns.thresholds)},
                        **({"signalAlarm": dns.signal_alarm} if dns.signal_alarm else {}),
                    },
                    "promotion": promotion_document(cfg),
                    "failback": {
                        "generation": db.generation,
                        "primaryIdentifier": naming.failback_primary_identifier(cfg, db),
                        "standbyIdentifier": naming.standby_identifier(cfg, db, db.generation + 1),
                        "standbyUrn": standby.instance_urn,
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
                            engine_version=db.engine_version,
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
