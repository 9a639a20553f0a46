"""Scheduled jobs: EventBridge Scheduler starts the Pilotlight image on ECS Fargate.

One schedule per database and tier runs ``pilotlight backup`` in the ACTIVE side's region, as
the backup-writer role; one schedule per database runs ``pilotlight verify`` (with a scratch
PostgreSQL sidecar for its test restore) in the DR region, as the restore-reader role. AWS's
own scheduler and container engine: nothing of ours to keep running, and many databases cost
nothing more than their task minutes.

Per region (both, whichever is active), a *site*: ECS cluster, KMS key (log group and dead-letter
queue), log group with retention, security group (egress to the database port and HTTPS
only), the dead-letter queue with its depth alarm, the task-failure rule, and VPC endpoints
when the subnets have no NAT. IAM is global: one execution role and one Scheduler role.

Why one backup per tier and not one hourly job promoting copies: each tier's backup is then a
consistent dump taken at its own runbook time, encrypted and manifest-bound by the same code
path as a manual ``pilotlight backup``; a promotion job would need its own copy code that
re-binds manifests and keys, for a saving of a few task-minutes a day.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Sequence

import pulumi
import pulumi_aws as aws

from components import jobrules
from components.jobrules import JobSpec

SIDES = ("primary", "dr")


@dataclass
class JobNetworkArgs:
    vpc_id: str
    subnet_ids: Sequence[str]


@dataclass
class JobDatabase:
    """One database as the jobs see it: name, port, and which credentials its tasks may read."""

    name: str
    port: int
    secret_arns: Sequence[str] = ()
    """Its Secrets Manager secret, in each region it is read from (the primary's and its DR replica)."""
    secret_key_arns: Sequence[str] = ()
    """The secret's customer KMS key, if it has one (Secrets Manager decrypts with it for the caller)."""
    iam_db_user_arns: Sequence[pulumi.Input[str]] = ()
    """``rds-db:connect`` resources of its tool user (primary and standby, by DbiResourceId)."""


@dataclass
class JobsArgs:
    name_prefix: str
    """``<project>-<stack>``: every physical name starts with it."""
    partition: str
    account_id: str
    active: str
    """Side whose region runs the backups (``primary`` or ``dr``); verification always runs in DR."""
    regions: dict[str, str]
    providers: dict[str, pulumi.ProviderResource]
    networks: dict[str, JobNetworkArgs]
    """Per side: the private subnets tasks run in (primary: ``jobs.primaryNetwork``; dr: the standby subnets)."""
    nat: bool
    databases: Sequence[JobDatabase]
    plan: Sequence[JobSpec]
    """What runs when (stacks/jobsplan.py): a backup per database and tier, a verification per database."""
    image: pulumi.Input[str] | None
    """Full image URI; None: the ECR repository declared here, at ``image_tag``."""
    image_tag: str
    pg_major: int
    """PostgreSQL major of the databases: the image's client and the scratch server match it."""
    cpu: int
    memory: int
    ephemeral_storage_gib: int | None
    flexible_window_minutes: int
    retry_attempts: int
    max_event_age_seconds: int
    log_retention_days: int
    writer_role_arn: pulumi.Input[str]
    reader_role_arn: pulumi.Input[str]
    writer_role_name: str
    reader_role_name: str
    topic_arns: dict[str, pulumi.Input[str]]
    """Alarm topic per side: failures of a site's jobs go to the topic of its region."""
    contract_json: pulumi.Input[str]
    """The outputs contract (without ``jobs``), handed to every task as ``PILOTLIGHT_OUTPUTS``."""
    break_glass_arn: str = ""
    """The only principal the jobs keys let delete or disable them (as the vault key)."""
    scratch_image: str | None = None
    """Image of the scratch server for test restores (default: postgres:<major> from ECR Public)."""


@dataclass
class _Site:
    side: str
    cluster: aws.ecs.Cluster
    key: aws.kms.Key
    log_group: aws.cloudwatch.LogGroup
    security_group: aws.ec2.SecurityGroup
    dlq: aws.sqs.Queue
    rules: list = field(default_factory=list)


@dataclass
class _Job:
    spec: JobSpec
    site: _Site
    task: aws.ecs.TaskDefinition
    role_arn: pulumi.Input[str]


class Jobs(pulumi.ComponentResource):
    schedules: dict[str, pulumi.Output[str]]
    """Schedule ARN per job name."""
    task_definitions: dict[str, pulumi.Output[str]]
    repository_url: pulumi.Output[str]

    def __init__(self, name: str, args: JobsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pilotlight:dr:Jobs", name, None, opts)
        self._name, self._args = name, args
        self.repository = self._create_repository()
        self.repository_url = self.repository.repository_url
        # Both regions always: a failover moves the schedules and tasks, never deletes a key or log group.
        self.sites = {side: self._create_site(side) for side in SIDES}
        self.execution_role = self._create_execution_role()
        self.jobs: list[_Job] = []
        self.task_definitions = {}
        for job in args.plan:
            self._create_task(self.sites[job.side], job)
        self._create_credentials_policy()
        self.scheduler_role = self._create_scheduler_role()
        self.schedules = {job.spec.name: self._create_schedule(job) for job in self.jobs}
        for site in self.sites.values():
            self._create_failure_alerts(site)
        self.register_outputs({
            "schedules": self.schedules, "task_definitions": self.task_definitions,
            "repository_url": self.repository_url,
        })

    # ------------------------------------------------------------------ helpers

    def _opts(self, side: str = "primary") -> pulumi.ResourceOptions:
        """IAM is global: the primary provider only decides which endpoint manages the roles."""
        return pulumi.ResourceOptions(parent=self, provider=self._args.providers[side])

    def _physical(self, *parts: str) -> str:
        return "-".join((self._args.name_prefix, *parts))

    # ------------------------------------------------------------------ shared

    def _create_repository(self) -> aws.ecr.Repository:
        """In the primary region, replicated by ECR to DR: DR tasks pull from their own region.

        It never moves with ``active`` (moving would replace it and lose the images); during a
        regional outage the DR replica still serves every pushed tag.
        """
        a = self._args
        repository = aws.ecr.Repository(
            f"{self._name}-image",
            name=self._physical("tools"),
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS"}],
            opts=self._opts(),
        )
        aws.ecr.ReplicationConfiguration(
            f"{self._name}-image-replication",
            replication_configuration={"rules": [{
                "destinations": [{"region": a.regions["dr"], "registry_id": a.account_id}],
                "repository_filters": [{"filter": repository.name, "filter_type": "PREFIX_MATCH"}],
            }]},
            opts=self._opts(),
        )
        return repository

    def _image(self, side: str) -> pulumi.Input[str]:
        """The image URI a side's tasks run: config's, or this stack's repository in the side's region."""
        a = self._args
        if a.image is not None:
            return a.image
        region = a.regions[side]
        return self.repository.name.apply(
            lambda name: f"{a.account_id}.dkr.ecr.{region}.amazonaws.com/{name}:{a.image_tag}")

    def _create_site(self, side: str) -> _Site:
        a = self._args
        region = a.regions[side]
        n = f"{self._name}-{side}"
        key = aws.kms.Key(
            f"{n}-key",
            description=f"Pilotlight jobs ({region}): log groups and dead-letter queue",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=json.dumps(jobrules.jobs_key_policy(a.partition, a.account_id, region, a.break_glass_arn)),
            # The logs it encrypts are the jobs' evidence: deleting the key would make them unreadable.
            opts=pulumi.ResourceOptions(parent=self, provider=a.providers[side], protect=True, retain_on_delete=True),
        )
        cluster = aws.ecs.Cluster(
            f"{n}-cluster", name=self._physical("jobs"),
            settings=[{"name": "containerInsights", "value": "enabled"}], opts=self._opts(side),
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{n}-logs", name=f"/pilotlight/{a.name_prefix}/jobs", retention_in_days=a.log_retention_days,
            kms_key_id=key.arn, opts=self._opts(side),
        )
        network = a.networks[side]
        ports = sorted({db.port for db in a.databases})
        group = aws.ec2.SecurityGroup(
            f"{n}-tasks",
            name=self._physical("jobs"),
            description="Pilotlight jobs: egress to the databases and HTTPS (AWS APIs) only",
            vpc_id=network.vpc_id,
            ingress=[],
            egress=[
                {"protocol": "tcp", "from_port": p, "to_port": p, "cidr_blocks": ["0.0.0.0/0"],
                 "description": "PostgreSQL"} for p in ports
            ] + [{"protocol": "tcp", "from_port": jobrules.HTTPS, "to_port": jobrules.HTTPS,
                  "cidr_blocks": ["0.0.0.0/0"], "description": "AWS APIs over HTTPS"}],
            opts=self._opts(side),
        )
        dlq = aws.sqs.Queue(
            f"{n}-dlq", name=self._physical("jobs-dlq"), kms_master_key_id=key.arn,
            message_retention_seconds=14 * 86400, opts=self._opts(side),
        )
        if not a.nat:
            self._create_endpoints(side, network, group)
        return _Site(side, cluster, key, log_group, group, dlq)

    def _create_endpoints(self, side: str, network: JobNetworkArgs, group: aws.ec2.SecurityGroup) -> None:
        """No NAT: every AWS API the tasks call gets an interface endpoint (S3 a gateway one)."""
        a = self._args
        region = a.regions[side]
        endpoint_sg = aws.ec2.SecurityGroup(
            f"{self._name}-{side}-endpoints",
            name=self._physical("jobs-endpoints"),
            description="Pilotlight jobs: HTTPS from the job tasks to the VPC endpoints",
            vpc_id=network.vpc_id,
            ingress=[{"protocol": "tcp", "from_port": jobrules.HTTPS, "to_port": jobrules.HTTPS,
                      "security_groups": [group.id], "description": "job tasks"}],
            egress=[],
            opts=self._opts(side),
        )
        for service in jobrules.INTERFACE_ENDPOINTS:
            aws.ec2.VpcEndpoint(
                f"{self._name}-{side}-{service.replace('.', '-')}",
                vpc_id=network.vpc_id, service_name=f"com.amazonaws.{region}.{service}",
                vpc_endpoint_type="Interface", private_dns_enabled=True,
                subnet_ids=list(network.subnet_ids), security_group_ids=[endpoint_sg.id],
                opts=self._opts(side),
            )
        # S3 (backups, and ECR's image layers) through a gateway endpoint; the VPC's route tables
        # are not ours to list, so the endpoint is created without routes and the user attaches it.
        aws.ec2.VpcEndpoint(
            f"{self._name}-{side}-s3", vpc_id=network.vpc_id, service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway", opts=self._opts(side),
        )

    def _create_execution_role(self) -> aws.iam.Role:
        """Pulls from the repository in either region (its ARN differs only by region)."""
        a = self._args
        role = aws.iam.Role(
            f"{self._name}-execution",
            name=self._physical("jobs-execution"),
            description="Pilotlight jobs: ECS pulls the image and writes logs; no data access",
            assume_role_policy=json.dumps(jobrules.service_trust_policy(jobrules.ECS_TASKS, a.account_id)),
            opts=self._opts(),
        )
        policy = pulumi.Output.all(
            [s.log_group.arn for s in self.sites.values()], self.repository.name,
        ).apply(lambda v: json.dumps(jobrules.execution_policy(
            v[0], None if a.image is not None else
            f"arn:{a.partition}:ecr:*:{a.account_id}:repository/{v[1]}")))
        aws.iam.RolePolicy(f"{self._name}-execution-policy", role=role.id, policy=policy, opts=self._opts())
        return role

    def _create_credentials_policy(self) -> None:
        """The tool roles may read exactly the databases' secrets and IAM-auth users, nothing else."""
        a = self._args
        secrets = [arn for db in a.databases for arn in db.secret_arns]
        keys = [arn for db in a.databases for arn in db.secret_key_arns]
        users = [arn for db in a.databases for arn in db.iam_db_user_arns]
        if not secrets and not users:
            return  # a policy with no statement is refused by IAM
        policy = pulumi.Output.all(*users).apply(
            lambda resolved: json.dumps(jobrules.credentials_policy(secrets, resolved, keys, list(a.regions.values()))))
        for what, role in (("writer", a.writer_role_name), ("reader", a.reader_role_name)):
            aws.iam.RolePolicy(
                f"{self._name}-{what}-credentials", role=role, name=f"{role}-db-credentials",
                policy=policy, opts=self._opts(),
            )

    # ------------------------------------------------------------------ tasks and schedules

    def _create_task(self, site: _Site, job: JobSpec) -> None:
        a = self._args
        verify = job.kind == "verify"
        region = a.regions[site.side]
        scratch = (a.scratch_image or f"public.ecr.aws/docker/library/postgres:{a.pg_major}") if verify else None
        containers = pulumi.Output.all(self._image(site.side), site.log_group.name, a.contract_json).apply(
            lambda v: json.dumps(jobrules.container_definitions(
                image=v[0], command=job.command, environment={**job.environment, "PILOTLIGHT_OUTPUTS": v[2]},
                log_group=v[1], region=region, sidecar_image=scratch,
            ))
        )
        role_arn = a.reader_role_arn if verify else a.writer_role_arn
        task = aws.ecs.TaskDefinition(
            f"{self._name}-{job.database}-{job.tier or job.kind}",
            family=job.name,
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(a.cpu),
            memory=str(a.memory),
            ephemeral_storage={"size_in_gib": a.ephemeral_storage_gib} if a.ephemeral_storage_gib else None,
            runtime_platform={"operating_system_family": "LINUX", "cpu_architecture": "X86_64"},
            execution_role_arn=self.execution_role.arn,
            task_role_arn=role_arn,
            container_definitions=containers,
            opts=self._opts(site.side),
        )
        self.task_definitions[job.name] = task.arn
        self.jobs.append(_Job(job, site, task, role_arn))

    def _create_scheduler_role(self) -> aws.iam.Role:
        a = self._args
        role = aws.iam.Role(
            f"{self._name}-scheduler",
            name=self._physical("jobs-scheduler"),
            description="Pilotlight jobs: EventBridge Scheduler starts the job tasks",
            assume_role_policy=json.dumps(jobrules.service_trust_policy(jobrules.SCHEDULER, a.account_id)),
            opts=self._opts(),
        )
        policy = pulumi.Output.all(
            [job.task.arn for job in self.jobs],
            [self.execution_role.arn, a.writer_role_arn, a.reader_role_arn],
            [s.dlq.arn for s in self.sites.values()],
            [s.key.arn for s in self.sites.values()],
        ).apply(lambda v: json.dumps(jobrules.scheduler_policy(v[0], v[1], v[2], v[3])))
        aws.iam.RolePolicy(f"{self._name}-scheduler-policy", role=role.id, policy=policy, opts=self._opts())
        return role

    def _create_schedule(self, job: "_Job") -> pulumi.Output[str]:
        a = self._args
        site, spec = job.site, job.spec
        window = a.flexible_window_minutes
        network = a.networks[site.side]
        schedule = aws.scheduler.Schedule(
            f"{self._name}-{spec.database}-{spec.tier or spec.kind}-schedule",
            name=spec.name,
            description=f"pilotlight {' '.join(spec.command[:-1])}",
            schedule_expression=spec.cron,
            schedule_expression_timezone=spec.timezone,
            flexible_time_window=(
                {"mode": "FLEXIBLE", "maximum_window_in_minutes": window} if window else {"mode": "OFF"}
            ),
            target={
                "arn": site.cluster.arn,
                "role_arn": self.scheduler_role.arn,
                "ecs_parameters": {
                    "task_definition_arn": job.task.arn,
                    "launch_type": "FARGATE",
                    "platform_version": "LATEST",
                    "task_count": 1,
                    "network_configuration": {
                        "subnets": list(network.subnet_ids),
                        "security_groups": [site.security_group.id],
                        "assign_public_ip": False,
                    },
                },
                "retry_policy": {
                    "maximum_retry_attempts": a.retry_attempts,
                    "maximum_event_age_in_seconds": a.max_event_age_seconds,
                },
                "dead_letter_config": {"arn": site.dlq.arn},
            },
            opts=self._opts(site.side),
        )
        return schedule.arn

    def _create_failure_alerts(self, site: _Site) -> None:
        """Failure is visible: a task that exits non-zero, or a run Scheduler could not start (DLQ)."""
        a = self._args
        n = f"{self._name}-{site.side}"
        topic = a.topic_arns[site.side]
        rule = aws.cloudwatch.EventRule(
            f"{n}-task-failed",
            name=self._physical("job-failed"),
            description="A Pilotlight job task stopped with a non-zero exit code or failed to start",
            event_pattern=site.cluster.arn.apply(lambda arn: json.dumps(jobrules.failure_event_pattern(arn))),
            opts=self._opts(site.side),
        )
        # The alarm topic's policy and key already let EventBridge publish (components/alarms.py).
        aws.cloudwatch.EventTarget(
            f"{n}-task-failed-topic", rule=rule.name, arn=topic, target_id="alarm-topic",
            opts=self._opts(site.side),
        )
        aws.cloudwatch.MetricAlarm(
            f"{n}-dlq-depth",
            name=self._physical(site.side, "jobs-dlq"),
            alarm_description="Scheduler could not start a Pilotlight job (messages in its dead-letter queue)",
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": site.dlq.name},
            statistic="Maximum",
            period=300,
            evaluation_periods=1,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[topic],
            ok_actions=[topic],
            opts=self._opts(site.side),
        )

    def contract(self) -> list[dict]:
        """The ``jobs`` section of the outputs contract: what runs, when, where and as whom."""
        return [
            job.spec.contract(self._args.regions[job.spec.side], taskDefinition=job.task.arn, roleArn=job.role_arn,
                              cluster=job.site.cluster.arn)
            for job in self.jobs
        ]
