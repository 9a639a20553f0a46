"""The standby databases: encrypted cross-region read replicas of production, and their network.

``StandbyNetwork`` is shared by every protected database (subnet group, parameter group,
security group, optional enhanced-monitoring role); ``Standby`` is one per database: the
replica itself plus RDS automated backups replication, so point-in-time recovery of the
primary exists in the DR region even if the replica is lost.

Failover is a config flag: with ``active == "dr"`` the standby is declared without
``replicate_source_db``, which makes the provider promote it in place. The instance is
protected and retained on delete so no program change can ever replace or delete it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.rules import assume_role_policy
from stacks.config import DatabaseConfig

ENHANCED_MONITORING_POLICY = "arn:{partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"


@dataclass
class StandbyNetworkArgs:
    vpc_id: str
    """Existing DR-region VPC."""
    subnet_ids: list[str]
    """At least two subnets in different AZs (RDS subnet group requirement)."""
    ports: list[int]
    """Database ports to open (one per distinct database port)."""
    subnet_group_name: str
    parameter_group_name: str
    parameter_group_family: str
    """Must match the primary's major version, e.g. ``postgres15``."""
    security_group_name: str
    allowed_cidrs: list[str] = field(default_factory=list)
    """Who may connect: application CIDRs. Empty plus no groups means nobody (safe default)."""
    allowed_security_group_ids: list[str] = field(default_factory=list)
    monitoring_role_name: str | None = None
    """Create the enhanced-monitoring role under this name; None when monitoring is off."""
    partition: str = "aws"


class StandbyNetwork(pulumi.ComponentResource):
    subnet_group_name: pulumi.Output[str]
    parameter_group_name: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    monitoring_role_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: StandbyNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pilotlight:dr:StandbyNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        subnets = aws.rds.SubnetGroup(
            f"{name}-subnets",
            name=args.subnet_group_name,
            description="Pilotlight standby databases",
            subnet_ids=args.subnet_ids,
            opts=child,
        )
        params = aws.rds.ParameterGroup(
            f"{name}-params",
            name=args.parameter_group_name,
            family=args.parameter_group_family,
            description="Pilotlight standby databases: TLS required",
            parameters=[{"name": "rds.force_ssl", "value": "1"}],
            opts=child,
        )
        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            name=args.security_group_name,
            description="Pilotlight standby databases: ingress from configured sources only",
            vpc_id=args.vpc_id,
            opts=child,
        )
        for port in args.ports:
            for i, cidr in enumerate(args.allowed_cidrs):
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-{port}-cidr-{i}",
                    security_group_id=group.id,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    cidr_ipv4=cidr,
                    description=f"PostgreSQL from {cidr}",
                    opts=child,
                )
            for group_id in args.allowed_security_group_ids:
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-{port}-{group_id}",
                    security_group_id=group.id,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    referenced_security_group_id=group_id,
                    description=f"PostgreSQL from {group_id}",
                    opts=child,
                )
        self.monitoring_role_arn = None
        if args.monitoring_role_name:
            role = aws.iam.Role(
                f"{name}-monitoring",
                name=args.monitoring_role_name,
                assume_role_policy=pulumi.Output.json_dumps(assume_role_policy("monitoring.rds.amazonaws.com")),
                opts=child,
            )
            aws.iam.RolePolicyAttachment(
                f"{name}-monitoring-policy",
                role=role.name,
                policy_arn=ENHANCED_MONITORING_POLICY.format(partition=args.partition),
                opts=child,
            )
            self.monitoring_role_arn = role.arn
        self.subnet_group_name = subnets.name
        self.parameter_group_name = params.name
        self.security_group_id = group.id
        self.register_outputs(
            {
                "subnet_group_name": self.subnet_group_name,
                "parameter_group_name": self.parameter_group_name,
                "security_group_id": self.security_group_id,
                "monitoring_role_arn": self.monitoring_role_arn,
            }
        )


@dataclass
class StandbyArgs:
    database: DatabaseConfig
    """The production database this standby follows."""
    identifier: str
    """Physical RDS identifier (stacks.naming.standby_identifier)."""
    active: str
    """``primary``: the standby replicates the primary. ``dr``: it is promoted and serves traffic."""
    kms_key_arn: pulumi.Input[str]
    """The DR replica of the vault key: the standby's storage and backups are encrypted with it."""
    network: StandbyNetwork
    backup_retention_days: int = 7
    """Must be > 0: a replica without backups cannot do point-in-time recovery once promoted."""
    performance_insights: bool = False
    monitoring_interval_seconds: int = 0
    deletion_protection: bool = True
    password: pulumi.Input[str] | None = None
    """Secret master password applied when promoted (a replica inherits the primary's)."""


class Standby(pulumi.ComponentResource):
    identifier: pulumi.Output[str]
    arn: pulumi.Output[str]
    address: pulumi.Output[str]
    backups_replication_id: pulumi.Output[str]

    def __init__(self, name: str, args: StandbyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pilotlight:dr:Standby", name, None, opts)
        instance = self._create_instance(name, args)
        backups = aws.rds.InstanceAutomatedBackupsReplication(
            f"{name}-backups",
            source_db_instance_arn=args.database.primary_arn,
            kms_key_id=args.kms_key_arn,
            retention_period=args.backup_retention_days,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.identifier = instance.identifier
        self.arn = instance.arn
        self.address = instance.address
        self.backups_replication_id = backups.id
        self.register_outputs(
            {
                "identifier": self.identifier,
                "arn": self.arn,
                "address": self.address,
                "backups_replication_id": self.backups_replication_id,
            }
        )

    @staticmethod
    def _instance_options(parent: pulumi.Resource, active: str) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(
            parent=parent,
            # The standby is the recovery target: no diff may ever replace or delete it.
            protect=True,
            # Even if someone unprotects it and drops it from the program, the database stays.
            retain_on_delete=True,
            # RDS cannot turn a promoted instance back into a replica; while the flag says
            # "primary", never try to (re-seeding after failback is a deliberate replace, docs/program.md).
            ignore_changes=["replicate_source_db"] if active == "primary" else None,
        )

    def _create_instance(self, name: str, args: StandbyArgs) -> aws.rds.Instance:
        promoted = args.active == "dr"
        network = args.network
        monitoring = args.monitoring_interval_seconds
        return aws.rds.Instance(
            f"{name}-instance",
            identifier=args.identifier,
            instance_class=args.database.instance_class,
            replicate_source_db=None if promoted else args.database.primary_arn,
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            db_subnet_group_name=network.subnet_group_name,
            parameter_group_name=network.parameter_group_name,
            vpc_security_group_ids=[network.security_group_id],
            port=args.database.port,
            publicly_accessible=False,
            deletion_protection=args.deletion_protection,
            backup_retention_period=args.backup_retention_days,
            copy_tags_to_snapshot=True,
            skip_final_snapshot=False,
            final_snapshot_identifier=f"{args.identifier}-final",
            performance_insights_enabled=args.performance_insights,
            performance_insights_kms_key_id=args.kms_key_arn if args.performance_insights else None,
            monitoring_interval=monitoring,
            monitoring_role_arn=network.monitoring_role_arn if monitoring else None,
            # A failover `pulumi up` must take effect now, not in the next maintenance window.
            apply_immediately=True,
            password=args.password if promoted else None,
            opts=self._instance_options(self, args.active),
        )
