"""Pure documents of the scheduled jobs: container definitions, role policies, event patterns.

Unit-tested directly and used inside ``apply`` by ``components/jobs.py``; no resource is
created here. Every statement names the one resource it is about (least privilege), except
where AWS has no resource type for the action (said next to it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

POLICY_VERSION = "2012-10-17"
ECS_TASKS = "ecs-tasks.amazonaws.com"
SCHEDULER = "scheduler.amazonaws.com"
CONTAINER = "pilotlight"
HTTPS = 443
# Interface endpoints a task calls when its subnets have no NAT (S3 is a gateway endpoint).
INTERFACE_ENDPOINTS = ("kms", "secretsmanager", "monitoring", "logs", "ecr.api", "ecr.dkr", "sts", "sns")


def service_trust_policy(service: str, account_id: str) -> dict[str, Any]:
    """Trust one AWS service, only on behalf of this account (the confused-deputy condition)."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ],
    }


def scheduler_policy(task_definition_arns: Sequence[str], pass_role_arns: Sequence[str], dlq_arns: Sequence[str],
                     key_arns: Sequence[str]) -> dict[str, Any]:
    """What Scheduler needs to start the tasks: RunTask on our task definitions, PassRole on their roles.

    AWS: "add iam:PassRole permissions for each task execution role, task role" (ECS developer
    guide, CWE_IAM_role) — so the execution role and the two tool roles, nothing else, and only
    towards ECS tasks. The DLQ is KMS-encrypted: sending to it needs the key.
    """
    families = sorted({arn.rsplit(":", 1)[0] + ":*" for arn in task_definition_arns})
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {"Sid": "RunJobTasks", "Effect": "Allow", "Action": "ecs:RunTask", "Resource": families},
            {
                "Sid": "PassTaskRoles",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": sorted(set(pass_role_arns)),
                "Condition": {"StringLike": {"iam:PassedToService": ECS_TASKS}},
            },
            {"Sid": "DeadLetters", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": sorted(set(dlq_arns))},
            {
                "Sid": "DeadLetterKey",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": sorted(set(key_arns)),
            },
        ],
    }


def execution_policy(log_group_arns: Sequence[str], repository_arn: str | None) -> dict[str, Any]:
    """What ECS itself needs to start a task: pull the image, write its logs. Never data access."""
    statements: list[dict[str, Any]] = [
        # GetAuthorizationToken has no resource type: "*" is the only valid resource.
        {"Sid": "RegistryLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [f"{arn}:*" for arn in sorted(set(log_group_arns))],
        },
    ]
    if repository_arn:
        statements.insert(1, {
            "Sid": "PullImage",
            "Effect": "Allow",
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            "Resource": repository_arn,
        })
    return {"Version": POLICY_VERSION, "Statement": statements}


def credentials_policy(secret_arns: Iterable[str], db_users: Iterable[str], secret_key_arns: Iterable[str] = (),
                       regions: Iterable[str] = ()) -> dict[str, Any] | None:
    """Only the credentials the tasks log in with: each secret, and ``rds-db:connect`` for IAM-auth users.

    ``db_users`` are ``rds-db`` resource ARNs (``arn:aws:rds-db:<region>:<acct>:dbuser:<DbiResourceId>/<user>``).
    A secret under a customer KMS key needs ``kms:Decrypt`` on it too, only through Secrets Manager
    (``kms:ViaService``, one per region the secret is read in). None when nothing is to be granted
    (a policy with no statement is refused by IAM).
    """
    statements = []
    secrets = sorted(set(secret_arns))
    users = sorted(set(db_users))
    keys = sorted(set(secret_key_arns))
    if secrets:
        statements.append({"Sid": "ReadDatabaseSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                           "Resource": secrets})
    if secrets and keys:
        statements.append({"Sid": "DecryptDatabaseSecrets", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": keys,
                           "Condition": {"StringEquals": {"kms:ViaService": sorted(
                               f"secretsmanager.{region}.amazonaws.com" for region in set(regions))}}})
    if users:
        statements.append({"Sid": "ConnectWithIamAuth", "Effect": "Allow", "Action": "rds-db:connect", "Resource": users})
    return {"Version": POLICY_VERSION, "Statement": statements} if statements else None


def jobs_key_policy(partition: str, account_id: str, region: str, break_glass_arn: str) -> dict[str, Any]:
    """The jobs key encrypts the log groups and the dead-letter queue of one region.

    CloudWatch Logs must be named in the key policy, scoped to this account's log groups
    (CloudWatch Logs user guide, encrypt-log-data-kms). SQS SSE with a customer key needs the
    sender (Scheduler, through its role) to have GenerateDataKey/Decrypt, granted by IAM.
    """
    root = f"arn:{partition}:iam::{account_id}:root"
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {"Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"},
            # As on the vault and alarm keys: only the break-glass principal may delete or disable it.
            {"Sid": "DenyDestructiveKeyActions", "Effect": "Deny", "Principal": {"AWS": "*"},
             "Action": ["kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:DeleteImportedKeyMaterial"], "Resource": "*",
             "Condition": {"ArnNotEquals": {"aws:PrincipalArn": break_glass_arn}}},
            {
                "Sid": "LogsEncrypt",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account_id}:log-group:*"}},
            },
            {
                "Sid": "CloudWatchAlarmsOnQueue",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            },
        ],
    }


def failure_event_pattern(cluster_arn: str) -> dict[str, Any]:
    """A job task that stopped with a non-zero exit code (or never started: no exit code at all)."""
    return {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {
            "clusterArn": [cluster_arn],
            "lastStatus": ["STOPPED"],
            "$or": [
                {"containers": {"exitCode": [{"anything-but": 0}]}},
                {"stopCode": ["TaskFailedToStart"]},
            ],
        },
    }


def container_definitions(
    *, image: str, command: Sequence[str], environment: Mapping[str, str], log_group: str, region: str,
    sidecar_image: str | None = None,
) -> list[dict[str, Any]]:
    """The task's containers: the tool (essential, non-root) and, for verification,
    a scratch PostgreSQL it restores into — never a production server."""
    tool: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "essential": True,
        "command": list(command),
        "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
        "user": "10001",
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": log_group, "awslogs-region": region, "awslogs-stream-prefix": CONTAINER},
        },
    }
    if sidecar_image is None:
        return [tool]
    tool["dependsOn"] = [{"containerName": "scratch", "condition": "HEALTHY"}]
    scratch = {
        "name": "scratch",
        "image": sidecar_image,
        "essential": False,
        # A throwaway server on localhost of the task: trust auth on loopback only, no data kept.
        "environment": [{"name": "POSTGRES_HOST_AUTH_METHOD", "value": "trust"}],
        "command": ["postgres", "-c", "listen_addresses=127.0.0.1"],
        "healthCheck": {"command": ["CMD-SHELL", "pg_isready -h 127.0.0.1"], "interval": 5, "retries": 12,
                        "timeout": 3, "startPeriod": 10},
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": log_group, "awslogs-region": region, "awslogs-stream-prefix": "scratch"},
        },
    }
    return [tool, scratch]


@dataclass(frozen=True)
class JobSpec:
    name: str
    kind: str
    """``backup`` or ``verify``."""
    database: str
    tier: str | None
    side: str
    """Whose region runs it: the active side for backups, ``dr`` for verification."""
    cron: str
    timezone: str
    command: tuple[str, ...]
    environment: Mapping[str, str] = field(default_factory=dict)

    def contract(self, region: str, **aws: Any) -> dict[str, Any]:
        """This job as the contract lists it (``aws``: taskDefinition, roleArn, cluster on a real stack)."""
        return {
            "name": self.name, "kind": self.kind, "database": self.database, "tier": self.tier,
            "side": self.side, "region": region, "schedule": self.cron, "timezone": self.timezone,
            "command": list(self.command), "environment": dict(self.environment), **aws,
        }
