"""Pure builders for the vault's rules and the stack's policy documents.

Everything here returns the shape the S3 / IAM / KMS APIs take (what boto3's
``put_bucket_lifecycle_configuration(LifecycleConfiguration={"Rules": ...})``,
``put_bucket_replication(ReplicationConfiguration=...)``, ``put_bucket_policy`` and
``put_object_lock_configuration`` accept), so the sandbox applies them to the emulator with
boto3 and the components convert the same dicts to pulumi-aws arguments. No pulumi import:
the rules are unit-tested directly and can never drift between sandbox and real stack.
"""
from __future__ import annotations

import re
from typing import Any

from stacks.config import VaultConfig

POLICY_VERSION = "2012-10-17"
RTC_MINUTES = 15
REPLICATION_RULE_ID = "vault-to-dr"
KEY_USER_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey")
# The encryption context every direct KMS call of the tools carries (scripts/vault/envelope.py: context()).
BACKUP_CONTEXT_KEYS = ("pilotlight:backup-id", "pilotlight:database")


def lifecycle_rules(vault: VaultConfig) -> list[dict[str, Any]]:
    """One rule per tier prefix: expire at retention, tier down to IA/archive, clean up leftovers.

    STANDARD_IA only when the object outlives the IA threshold (S3 rejects a transition on or
    after the expiration day); the archive transition only for tiers that configure one.
    """
    rules = []
    for name, tier in vault.tiers.items():
        transitions = []
        if tier.retention_days > vault.infrequent_access_after_days:
            transitions.append({"Days": vault.infrequent_access_after_days, "StorageClass": "STANDARD_IA"})
        if tier.archive_after_days is not None and tier.archive_after_days < tier.retention_days:
            transitions.append({"Days": tier.archive_after_days, "StorageClass": tier.archive_class})
        rule: dict[str, Any] = {
            "ID": f"tier-{name}",
            "Status": "Enabled",
            "Filter": {"Prefix": tier.prefix},
            "Expiration": {"Days": tier.retention_days},
            "NoncurrentVersionExpiration": {"NoncurrentDays": vault.noncurrent_version_days},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": vault.abort_multipart_days},
        }
        if transitions:
            rule["Transitions"] = transitions
        rules.append(rule)
    return rules


def replication_configuration(role_arn: str, destination_bucket_arn: str, replica_key_arn: str) -> dict[str, Any]:
    """Replicate the whole vault to the DR bucket, re-encrypted with the DR replica key.

    Replication Time Control (15 min SLA) and its metrics make lag measurable and alarmable;
    delete markers replicate so the DR copy mirrors the primary (locked versions survive anyway).
    """
    return {
        "Role": role_arn,
        "Rules": [
            {
                "ID": REPLICATION_RULE_ID,
                "Priority": 1,
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "DeleteMarkerReplication": {"Status": "Enabled"},
                "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"}},
                "Destination": {
                    "Bucket": destination_bucket_arn,
                    "EncryptionConfiguration": {"ReplicaKmsKeyID": replica_key_arn},
                    "ReplicationTime": {"Status": "Enabled", "Time": {"Minutes": RTC_MINUTES}},
                    "Metrics": {"Status": "Enabled", "EventThreshold": {"Minutes": RTC_MINUTES}},
                },
            }
        ],
    }


def object_lock_configuration(mode: str, days: int) -> dict[str, Any]:
    """Default retention for every new object version (GOVERNANCE unless the config asks otherwise)."""
    if mode not in ("GOVERNANCE", "COMPLIANCE") or days < 1:
        raise ValueError(f"object lock needs GOVERNANCE|COMPLIANCE and days >= 1, got {mode!r}, {days!r}")
    return {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}}}


def _present_and_not(condition_key: str, value: str) -> dict[str, Any]:
    """A condition true only when the request carries ``condition_key`` with another value."""
    return {"Null": {condition_key: "false"}, "StringNotEquals": {condition_key: value}}


def bucket_policy(bucket_arn: str, key_arn: str) -> dict[str, Any]:
    """Deny plain-HTTP access and any put that asks for other encryption than our KMS key.

    A put without encryption headers gets the bucket's default SSE-KMS with this very key, and
    requiring the header outright would also deny multipart ``UploadPart`` requests, which never
    carry it (boto/botocore#471). So each deny fires only when the header is present
    (``Null: false``) and names something else. Not ``StringNotEqualsIfExists``: IAM evaluates
    ``...IfExists`` as true when the key is absent, so that Deny would refuse every headerless put.
    """
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "DenyNonKmsEncryption",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/*",
                "Condition": _present_and_not("s3:x-amz-server-side-encryption", "aws:kms"),
            },
            {
                "Sid": "DenyOtherKmsKey",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/*",
                "Condition": _present_and_not("s3:x-amz-server-side-encryption-aws-kms-key-id", key_arn),
            },
        ],
    }


def assume_role_policy(service: str, account_id: str | None = None) -> dict[str, Any]:
    """Trust exactly one AWS service (optionally only on behalf of our account: confused deputy)."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if account_id:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account_id}}
    return {"Version": POLICY_VERSION, "Statement": [statement]}


def replication_trust_policy(account_id: str | None = None) -> dict[str, Any]:
    return assume_role_policy("s3.amazonaws.com", account_id)


def replication_role_policy(
    *,
    source_bucket_arn: str,
    destination_bucket_arn: str,
    source_key_arn: str,
    replica_key_arn: str,
    source_region: str,
    destination_region: str,
) -> dict[str, Any]:
    """Least privilege for S3 replication: read versions here, write replicas there, one key each way.

    KMS use is bound to S3 in the right region (``kms:ViaService``) and to the right bucket via
    the encryption context (the bucket ARN when S3 Bucket Keys are on, the object ARN otherwise).
    """
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "ReadReplicationConfiguration",
                "Effect": "Allow",
                "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                "Resource": source_bucket_arn,
            },
            {
                "Sid": "ReadSourceVersions",
                "Effect": "Allow",
                "Action": [
                    "s3:GetObjectVersionForReplication",
                    "s3:GetObjectVersionAcl",
                    "s3:GetObjectVersionTagging",
                    "s3:GetObjectRetention",
                    "s3:GetObjectLegalHold",
                ],
                "Resource": f"{source_bucket_arn}/*",
            },
            {
                "Sid": "WriteReplicas",
                "Effect": "Allow",
                "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                "Resource": f"{destination_bucket_arn}/*",
            },
            {
                "Sid": "DecryptSource",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": source_key_arn,
                "Condition": {
                    "StringEquals": {"kms:ViaService": f"s3.{source_region}.amazonaws.com"},
                    "StringLike": {
                        "kms:EncryptionContext:aws:s3:arn": [source_bucket_arn, f"{source_bucket_arn}/*"]
                    },
                },
            },
            {
                "Sid": "EncryptReplicas",
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
                "Resource": replica_key_arn,
                "Condition": {
                    "StringEquals": {"kms:ViaService": f"s3.{destination_region}.amazonaws.com"},
                    "StringLike": {
                        "kms:EncryptionContext:aws:s3:arn": [destination_bucket_arn, f"{destination_bucket_arn}/*"]
                    },
                },
            },
        ],
    }


def key_policy(
    *,
    partition: str,
    account_id: str,
    region: str,
    replication_role_arn: str,
    backup_writer_role_arn: str | None = None,
    restore_reader_role_arn: str | None = None,
) -> dict[str, Any]:
    """Policy of the vault key in one region: the account administers it, users get one statement each.

    - the vault: any principal of this account, only through S3 in this region;
    - replication: only the replication role, only through S3 in this region. The role is
      named by a condition on ``aws:PrincipalArn``, not as ``Principal``: KMS rejects a policy
      whose principal does not exist yet, and the role is created after the keys (its policy
      needs their ARNs), so naming it as principal would be a dependency cycle;
    - the backup writer (when given): direct ``GenerateDataKey``/``Encrypt`` of a backup's data key,
      the restore reader (when given): direct ``Decrypt`` of it — both named the same way and only
      under the tools' encryption context, so neither can use the key for anything else;
    - the standby and its replicated backups: this account, only through RDS in this region;
    - alarms: CloudWatch may encrypt notifications to the KMS-encrypted SNS topic.

    The tool roles are optional so the sandbox (moto does not enforce key policies) can keep
    passing only the replication role; the program always passes both.
    """
    root = f"arn:{partition}:iam::{account_id}:root"
    tool_users = []
    if backup_writer_role_arn:
        tool_users.append(_envelope_statement(
            "BackupWriterEnvelopeKeys", root, backup_writer_role_arn, ["kms:GenerateDataKey", "kms:Encrypt"]))
    if restore_reader_role_arn:
        tool_users.append(_envelope_statement("RestoreReaderEnvelopeKeys", root, restore_reader_role_arn, ["kms:Decrypt"]))
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "AccountAdministers",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "VaultUseThroughS3",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": list(KEY_USER_ACTIONS),
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"kms:CallerAccount": account_id, "kms:ViaService": f"s3.{region}.amazonaws.com"}
                },
            },
            {
                "Sid": "ReplicationRoleThroughS3",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                "Resource": "*",
                "Condition": {
                    "ArnEquals": {"aws:PrincipalArn": replication_role_arn},
                    "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
                },
            },
            *tool_users,
            {
                "Sid": "StandbyUseThroughRds",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": [*KEY_USER_ACTIONS, "kms:CreateGrant", "kms:ListGrants"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"kms:CallerAccount": account_id, "kms:ViaService": f"rds.{region}.amazonaws.com"}
                },
            },
            {
                "Sid": "AlarmNotifications",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            },
        ],
    }


def _envelope_statement(sid: str, root: str, role_arn: str, actions: list[str]) -> dict[str, Any]:
    """A key-policy statement for one tool role, only for calls that carry the backup context."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": root},
        "Action": actions,
        "Resource": "*",
        "Condition": {"ArnEquals": {"aws:PrincipalArn": role_arn}, **backup_context_condition()},
    }


def backup_context_condition() -> dict[str, Any]:
    """True only for KMS calls whose encryption context is exactly the tools' backup context.

    ``ForAllValues`` alone is also true for a call WITHOUT any context (an empty set), so the
    ``Null: false`` clauses additionally require both keys to be present.
    """
    return {
        "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(BACKUP_CONTEXT_KEYS)},
        "Null": {f"kms:EncryptionContext:{k}": "false" for k in BACKUP_CONTEXT_KEYS},
    }


def _through_s3(region: str, bucket_arn: str) -> dict[str, Any]:
    """SSE-KMS calls S3 makes for us in ``region`` on ``bucket_arn`` (context: bucket ARN with Bucket Keys, object ARN without)."""
    return {
        "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
        "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket_arn, f"{bucket_arn}/*"]},
    }


def account_trust_policy(partition: str, account_id: str) -> dict[str, Any]:
    """Trust the account itself: its administrators decide who may assume the role (CI runner, operators).

    A role trusting ``:root`` is assumable by no one until an identity policy in the account
    grants ``sts:AssumeRole`` on it, so the program never has to know the CI runner's identity.
    """
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def backup_writer_policy(
    *,
    bucket_arn: str,
    key_arn: str,
    dr_key_arn: str,
    region: str,
    metric_namespace: str,
) -> dict[str, Any]:
    """What ``pilotlight backup`` needs on real AWS, and nothing that could destroy a backup.

    Writes (and reads back, to check and to find the newest backups) the PRIMARY vault only; S3
    replication carries objects to DR. No delete, retention, bucket-policy or lock action: a
    stolen CI credential can add backups, never remove them. KMS: a data key from the primary
    key and the same key wrapped by the DR key, only under the backup context
    (scripts/vault/envelope.py); SSE-KMS on the bucket also needs ``GenerateDataKey``/``Decrypt``
    through S3 (multipart uploads decrypt the data key per part), scoped to this bucket.
    """
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "ListVault",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                "Resource": bucket_arn,
            },
            {
                "Sid": "WriteBackups",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                "Resource": f"{bucket_arn}/*",
            },
            {
                "Sid": "NewDataKey",
                "Effect": "Allow",
                "Action": "kms:GenerateDataKey",
                "Resource": key_arn,
                "Condition": backup_context_condition(),
            },
            {
                "Sid": "WrapDataKeyForDr",
                "Effect": "Allow",
                "Action": "kms:Encrypt",
                "Resource": dr_key_arn,
                "Condition": backup_context_condition(),
            },
            {
                "Sid": "VaultEncryptionThroughS3",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": key_arn,
                "Condition": _through_s3(region, bucket_arn),
            },
            {
                "Sid": "PublishBackupAge",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",  # PutMetricData has no resource type; the namespace condition scopes it
                "Condition": {"StringEquals": {"cloudwatch:namespace": metric_namespace}},
            },
        ],
    }


def restore_reader_policy(
    *,
    bucket_arns: dict[str, str],
    key_arns: dict[str, str],
    regions: dict[str, str],
) -> dict[str, Any]:
    """What ``pilotlight restore`` / ``verify`` need: read both vaults and unwrap with either key.

    Read-only by construction (every action is ``s3:Get*``/``s3:List*``/``kms:Decrypt``), so an
    operator restoring under stress cannot damage the vault. Both sides, because a restore during
    a regional outage reads the DR copy with the DR key alone. Direct ``Decrypt`` only under the
    backup context; SSE-KMS reads through S3 only in each bucket's own region, with its own key.
    """
    sides = list(bucket_arns)
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ListVaults",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
            "Resource": [bucket_arns[s] for s in sides],
        },
        {
            "Sid": "ReadBackups",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectAttributes"],
            "Resource": [f"{bucket_arns[s]}/*" for s in sides],
        },
        {
            "Sid": "UnwrapDataKeys",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": [key_arns[s] for s in sides],
            "Condition": backup_context_condition(),
        },
    ]
    for side in sides:
        statements.append(
            {
                "Sid": f"ReadThroughS3{side.capitalize()}",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": key_arns[side],
                "Condition": _through_s3(regions[side], bucket_arns[side]),
            }
        )
    return {"Version": POLICY_VERSION, "Statement": statements}


def as_pulumi_args(value: Any) -> Any:
    """S3-API shape -> pulumi-aws input shape: ``ReplicaKmsKeyID`` -> ``replica_kms_key_id``, recursively."""
    if isinstance(value, dict):
        return {_snake(k): as_pulumi_args(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_pulumi_args(v) for v in value]
    return value


def _snake(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", key).lower()
