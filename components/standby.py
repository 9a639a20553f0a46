"""The standby databases: encrypted cross-region read replicas of production, and their network.

``StandbyNetwork`` is shared by every protected database (subnet group, parameter group,
security group, optional enhanced-monitoring role); ``Standby`` is one per database and
generation: the replica itself plus RDS automated backups replication of whichever instance
serves, into the other region, so point-in-time recovery survives the loss of a region.

With ``active == "dr"`` the standby is declared promoted (no ``replicate_source_db``) and as
production: backup retention, Multi-AZ, storage autoscaling. ``pilotlight cutover`` promotes it
with the same retention, so ``pulumi up --refresh`` afterwards only adds Multi-AZ. RDS keeps no
automated backups of a PostgreSQL read replica, so the replica declares none. The password is
never declared: failover must not rotate the credentials production runs with.
The instance is protected and retained on delete so no program change can ever destroy it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.rules import assume_role_policy

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
    identifier: str
    """Physical RDS identifier of this generation's standby (stacks.naming.standby_identifier)."""
    source_arn: str
    """ARN of the production instance this standby replicates (the configured primary)."""
    instance_class: str
    port: int
    active: str
    """``primary``: the standby replicates the primary. ``dr``: it is promoted and serves traffic."""
    kms_key_arn: pulumi.Input[str]
    """The DR replica of the vault key: the standby's storage and backups are encrypted with it."""
    primary_kms_key_arn: pulumi.Input[str]
    """The primary-region key: encrypts the promoted standby's backups replicated into the primary region."""
    primary_provider: pulumi.ProviderResource
    """Primary-region provider: backups replication is created in its destination region."""
    network: StandbyNetwork
    backup_retention_days: int = 7
    """Retention of the promoted standby's automated backups (passed to PromoteReadReplica)."""
    multi_az_when_promoted: bool = True
    """Once promoted the standby is production: Multi-AZ by default."""
    max_allocated_storage_gb: int = 0
    """Storage autoscaling ceiling of the promoted standby; 0 leaves autoscaling off."""
    adopt: bool = False
    """True for a generation ``pilotlight failback`` created: the stack imports it instead of creating it."""
    performance_insights: bool = False
    monitoring_interval_seconds: int = 0
    deletion_protection: bool = True
    iam_database_authentication: bool = False
    """The tools log in with RDS IAM tokens (``iamAuth``): the standby accepts them, before and after promotion."""


class Standby(pulumi.ComponentResource):
    identifier: pulumi.Output[str]
    arn: pulumi.Output[str]
    address: pulumi.Output[str]
    instance_urn: pulumi.Output[str]
    backups_replication_id: pulumi.Output[str]
    resource_id: pulumi.Output[str]
    """RDS's DbiResourceId (``db-...``): what an ``rds-db:connect`` grant names."""

    def __init__(self, name: str, args: StandbyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pilotlight:dr:Standby", name, None, opts)
        instance = self._create_instance(name, args)
        backups = self._create_backups_replication(name, args, instance)
        self.identifier = instance.identifier
        self.arn = instance.arn
        self.address = instance.address
        self.instance_urn = instance.urn
        self.backups_replication_id = backups.id
        self.resource_id = instance.resource_id
        self.register_outputs(
            {
                "identifier": self.identifier,
                "arn": self.arn,
                "address": self.address,
                "instance_urn": self.instance_urn,
                "backups_replication_id": self.backups_replication_id,
                "resource_id": self.resource_id,
            }
        )

    @staticmethod
    def _instance_options(parent: pulumi.Resource, args: StandbyArgs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(
            parent=parent,
            # The standby is the recovery target: no diff may ever replace or delete it.
            protect=True,
            # Dropping a retired generation from the program leaves the database in place.
            retain_on_delete=True,
            # RDS cannot turn a promoted instance back into a replica (the provider answers "cannot
            # elect new source database"): a stale `active: primary` run must not try.
            ignore_changes=["replicate_source_db"] if args.active == "primary" else None,
            # A failback generation is created by `pilotlight failback` (RDS API); the stack adopts it.
            import_=args.identifier if args.adopt else None,
        )

    def _create_instance(self, name: str, args: StandbyArgs) -> aws.rds.Instance:
        promoted = args.active == "dr"
        network = args.network
        monitoring = args.monitoring_interval_seconds
        return aws.rds.Instance(
            f"{name}-instance",
            identifier=args.identifier,
            instance_class=args.instance_class,
            replicate_source_db=None if promoted else args.source_arn,
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            db_subnet_group_name=network.subnet_group_name,
            parameter_group_name=network.parameter_group_name,
            vpc_security_group_ids=[network.security_group_id],
            port=args.port,
            publicly_accessible=False,
            deletion_protection=args.deletion_protection,
            # Only once promoted: RDS keeps no automated backups of a PostgreSQL read replica.
            backup_retention_period=args.backup_retention_days if promoted else None,
            multi_az=args.multi_az_when_promoted if promoted else False,
            max_allocated_storage=(args.max_allocated_storage_gb or None) if promoted else None,
            copy_tags_to_snapshot=True,
            skip_final_snapshot=False,
            final_snapshot_identifier=f"{args.identifier}-final",
            performance_insights_enabled=args.performance_insights,
            performance_insights_kms_key_id=args.kms_key_arn if args.performance_insights else None,
            monitoring_interval=monitoring,
            monitoring_role_arn=network.monitoring_role_arn if monitoring else None,
            iam_database_authentication_enabled=True if args.iam_database_authentication else None,
            # A failover `pulumi up` must take effect now, not in the next maintenance window.
            apply_immediately=True,
            opts=self._instance_options(self, args),
        )

    def _create_backups_replication(self, name: str, args: StandbyArgs, instance: aws.rds.Instance):
        """The serving instance's automated backups, replicated into the other region.

        While the primary serves: its backups into the DR region. Once the standby is promoted: the
        standby's backups into the primary region (a different resource in another region, so the
        old one is stopped and the new one started). Every argument is replace-only and RDS
        replicates a source only once per region, so a replacement deletes before it creates.
        """
        if args.active == "dr":
            return aws.rds.InstanceAutomatedBackupsReplication(
                f"{name}-backups-to-primary",
                source_db_instance_arn=instance.arn,
                kms_key_id=args.primary_kms_key_arn,
                retention_period=args.backup_retention_days,
                opts=pulumi.ResourceOptions(parent=self, provider=args.primary_provider, delete_before_replace=True),
            )
        return aws.rds.InstanceAutomatedBackupsReplication(
            f"{name}-backups",
            source_db_instance_arn=args.source_arn,
            kms_key_id=args.kms_key_arn,
            retention_period=args.backup_retention_days,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
