"""Pure builders for the vault's rules and the stack's policy documents.

Everything here returns the shape the S3 / IAM / KMS APIs take (what boto3's
``put_bucket_lifecycle_configuration(LifecycleConfiguration={"Rules": ...})``,
``put_bucket_replication(ReplicationConfiguration=...)``, ``put_bucket_policy`` and
``put_object_lock_configuration`` accept), so the sandbox applies them to the emulator with
boto3 and the components convert the same dicts to pulumi-aws arguments. No pulumi import and
nothing from ``stacks/``: the builders take plain values (:class:`VaultRules`), which
``stacks.documents`` derives from the validated config for both the program and the sandbox, so
the rules are unit-tested directly and can never drift between sandbox and real stack.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

POLICY_VERSION = "2012-10-17"
RTC_MINUTES = 15
REPLICATION_RULE_ID = "vault-to-dr"
# While DR serves (``active: dr``) backups are written to the DR vault and replicate back with this rule.
REVERSE_REPLICATION_RULE_ID = "vault-to-primary"
# Where the verification job writes its restore-test records (scripts/vault/evidence.py: PREFIX).
EVIDENCE_PREFIX = "evidence/"
KEY_USER_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey")
# The encryption context every direct KMS call of the tools carries (scripts/vault/envelope.py: context()).
BACKUP_CONTEXT_KEYS = ("pilotlight:backup-id", "pilotlight:database")
DELETE_MARKER_RULE_ID = "expired-delete-markers"
# Key actions that make every backup (and the standby) unreadable; only the break-glass principal may call them.
DESTRUCTIVE_KEY_ACTIONS = ("kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:DeleteImportedKeyMaterial")
# What the account (through IAM) may do to the vault key: administer it, never use it. The use
# statements below are then the only way to encrypt or decrypt with it, so none is decorative.
KEY_ADMIN_ACTIONS = (
    "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*",
    "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion", "kms:ReplicateKey", "kms:RotateKeyOnDemand",
)


@dataclass(frozen=True)
class TierLifecycle:
    """One retention tier, as the lifecycle rules need it (plain values, no config types)."""

    name: str
    prefix: str
    retention_days: int
    noncurrent_days: int
    """How long a version stays once it is no longer current (deleted or expired): never below retention."""
    archive_after_days: int | None = None
    archive_class: str | None = None


@dataclass(frozen=True)
class VaultRules:
    """Everything the vault buckets' documents are built from."""

    tiers: tuple[TierLifecycle, ...]
    infrequent_access_after_days: int
    abort_multipart_days: int
    object_lock_mode: str
    object_lock_days: int


def lifecycle_rules(vault: VaultRules) -> list[dict[str, Any]]:
    """One rule per tier prefix, plus one that clears delete markers left with no version behind them.

    Per tier: expire at retention, tier down to IA/archive, abort leftover uploads, and keep a
    noncurrent version ``noncurrent_days`` (at least the retention): a backup someone deleted
    (a delete marker on top of it) stays recoverable for as long as its tier promised.
    STANDARD_IA only when the object outlives the IA threshold (S3 rejects a transition on or
    after the expiration day); the archive transition only for tiers that configure one.
    ``ExpiredObjectDeleteMarker`` sits in a rule of its own: S3 refuses it next to ``Days``
    (API LifecycleExpiration).
    """
    rules = []
    for tier in vault.tiers:
        transitions = []
        if tier.retention_days > vault.infrequent_access_after_days:
            transitions.append({"Days": vault.infrequent_access_after_days, "StorageClass": "STANDARD_IA"})
        if tier.archive_after_days is not None and tier.archive_after_days < tier.retention_days:
            transitions.append({"Days": tier.archive_after_days, "StorageClass": tier.archive_class})
        rule: dict[str, Any] = {
            "ID": f"tier-{tier.name}",
            "Status": "Enabled",
            "Filter": {"Prefix": tier.prefix},
            "Expiration": {"Days": tier.retention_days},
            "NoncurrentVersionExpiration": {"NoncurrentDays": tier.noncurrent_days},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": vault.abort_multipart_days},
        }
        if transitions:
            rule["Transitions"] = transitions
        rules.append(rule)
    rules.append({"ID": DELETE_MARKER_RULE_ID, "Status": "Enabled", "Filter": {"Prefix": ""},
                  "Expiration": {"ExpiredObjectDeleteMarker": True}})
    return rules


def replication_configuration(role_arn: str, destination_bucket_arn: str, replica_key_arn: str,
                              rule_id: str = REPLICATION_RULE_ID) -> dict[str, Any]:
    """Replicate the whole vault to the other bucket (DR by default), re-encrypted with that region's key.

    Replication Time Control (15 min SLA) and its metrics make lag measurable and alarmable.
    Delete markers do NOT replicate: a delete in the source region (an attacker's, or a
    mistake) leaves the other copy current, so the other region still lists and restores it.
    """
    return {
        "Role": role_arn,
        "Rules": [
            {
                "ID": rule_id,
                "Priority": 1,
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "DeleteMarkerReplication": {"Status": "Disabled"},
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


def replication_configurations(active: str, role_arn: str, bucket_arns: dict[str, str],
                               key_arns: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per source side, the replication configuration the vault has while ``active`` serves.

    Always primary -> DR. With ``active: dr`` backups go to the DR vault with the DR key, so the
    DR bucket also replicates back to the primary one (re-encrypted with the primary key), which
    S3 catches up once the primary region is reachable again. No loop: S3 never replicates a
    replica again (only with replica modification sync, which this never enables).
    """
    out = {"primary": replication_configuration(role_arn, bucket_arns["dr"], key_arns["dr"])}
    if active == "dr":
        out["dr"] = replication_configuration(role_arn, bucket_arns["primary"], key_arns["primary"],
                                              REVERSE_REPLICATION_RULE_ID)
    return out


def object_lock_configuration(mode: str, days: int) -> dict[str, Any]:
    """Default retention for every new object version (GOVERNANCE unless the config asks otherwise)."""
    if mode not in ("GOVERNANCE", "COMPLIANCE") or days < 1:
        raise ValueError(f"object lock needs GOVERNANCE|COMPLIANCE and days >= 1, got {mode!r}, {days!r}")
    return {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}}}


def _present_and_not(condition_key: str, value: str) -> dict[str, Any]:
    """A condition true only when the request carries ``condition_key`` with another value."""
    return {"Null": {condition_key: "false"}, "StringNotEquals": {condition_key: value}}


def bucket_policy(bucket_arn: str, key_arn: str) -> dict[str, Any]:
    """Deny plain-HTTP access, any put that asks for other encryption than our KMS key, and overwrites.

    A put without encryption headers gets the bucket's default SSE-KMS with this very key, and
    requiring the header outright would also deny multipart ``UploadPart`` requests, which never
    carry it (boto/botocore#471). So each encryption deny fires only when the header is present
    (``Null: false``) and names something else. Not ``StringNotEqualsIfExists``: IAM evaluates
    ``...IfExists`` as true when the key is absent, so that Deny would refuse every headerless put.

    Backup objects are write-once: a ``PutObject``/``CompleteMultipartUpload`` without
    ``If-None-Match`` is denied (``s3:if-none-match`` absent), so nobody with ``s3:PutObject`` can
    put a new version over a backup or its manifest. ``s3:ObjectCreationOperation`` exempts the
    multipart steps that cannot carry the header (S3 user guide, conditional-writes-enforce).
    Replication writes replicas with ``s3:ReplicateObject``, which this does not touch.
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
            {
                "Sid": "DenyOverwrites",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/*",
                "Condition": {"Null": {"s3:if-none-match": "true"}, "Bool": {"s3:ObjectCreationOperation": "true"}},
            },
        ],
    }


def bucket_documents(rules: VaultRules, *, bucket_arn: str, key_arn: str) -> dict[str, dict[str, Any]]:
    """Every configuration document of one vault bucket, in the S3 API's shape, by what it configures.

    The component turns each into its pulumi-aws resource and the sandbox puts each with boto3
    (``scripts/sandbox/emulator.py``): both read this one mapping, so they cannot drift.
    """
    return {
        "versioning": {"Status": "Enabled"},
        "encryption": {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                                         "KMSMasterKeyID": key_arn},
                                  "BucketKeyEnabled": True}]},
        "public_access_block": {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                                "RestrictPublicBuckets": True},
        "ownership": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "object_lock": object_lock_configuration(rules.object_lock_mode, rules.object_lock_days),
        "lifecycle": {"Rules": lifecycle_rules(rules)},
        "policy": bucket_policy(bucket_arn, key_arn),
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
    break_glass_arn: str,
    backup_writer_role_arn: str | None = None,
    restore_reader_role_arn: str | None = None,
) -> dict[str, Any]:
    """Policy of the vault key in one region: the account administers it, each user gets one statement.

    - administration: the account (through IAM) gets the admin actions only, never ``kms:*``:
      with ``kms:*`` on root every narrower statement below would be decorative. ``kms:Put*``
      stays with the account: KMS refuses a policy that would lock the caller out of
      ``PutKeyPolicy`` (the policy lockout safety check), so the deployer must keep it;
    - destructive actions (``DESTRUCTIVE_KEY_ACTIONS``) are denied to every principal except the
      named break-glass principal: a deleted or disabled key makes every backup and the standby
      unreadable whatever Object Lock keeps. The stack alarms on each of those calls;
    - the vault: any principal of this account, only through S3 in this region;
    - replication: only the replication role, only through S3 in this region. The role is
      named by a condition on ``aws:PrincipalArn``, not as ``Principal``: KMS rejects a policy
      whose principal does not exist yet, and the role is created after the keys (its policy
      needs their ARNs), so naming it as principal would be a dependency cycle;
    - the backup writer (when given): direct ``GenerateDataKey``/``Encrypt`` of a backup's data key,
      the restore reader (when given): direct ``Decrypt`` of it — both named the same way and only
      under the tools' encryption context, so neither can use the key for anything else;
    - the standby and its replicated backups: this account, only through RDS in this region.

    Alarm topics have a key of their own (:func:`alarm_key_policy`). The tool roles are optional
    so the sandbox (moto does not enforce key policies) can pass only the replication role.
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
                "Action": list(KEY_ADMIN_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "DenyDestructiveKeyActions",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": list(DESTRUCTIVE_KEY_ACTIONS),
                "Resource": "*",
                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": break_glass_arn}},
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
        ],
    }


NOTIFYING_SERVICES = ("cloudwatch.amazonaws.com", "events.amazonaws.com")


def alarm_key_policy(*, partition: str, account_id: str, region: str, break_glass_arn: str,
                     trail_arn: str | None = None) -> dict[str, Any]:
    """Policy of the alarm topics' key (one per region): the account administers and uses it.

    Deleting or disabling it would silence every alarm (and make the audit logs unreadable), so
    the same destructive actions as on the vault key are denied to all but the break-glass principal.

    CloudWatch alarms and EventBridge rules publish to the KMS-encrypted topics, so both
    services may ``GenerateDataKey``/``Decrypt`` (SNS developer guide, sns-key-management:
    AWS services publishing to an encrypted topic need this in the key policy, or the
    notification is dropped). With ``trail_arn`` CloudTrail may encrypt that trail's log files
    with it (CloudTrail user guide, create-kms-key-policy-for-cloudtrail).
    """
    root = f"arn:{partition}:iam::{account_id}:root"
    statements: list[dict[str, Any]] = [
        {"Sid": "AccountAdministersAndUses", "Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*",
         "Resource": "*"},
        {"Sid": "DenyDestructiveKeyActions", "Effect": "Deny", "Principal": {"AWS": "*"},
         "Action": list(DESTRUCTIVE_KEY_ACTIONS), "Resource": "*",
         "Condition": {"ArnNotEquals": {"aws:PrincipalArn": break_glass_arn}}},
        {"Sid": "AlarmServicesPublish", "Effect": "Allow", "Principal": {"Service": list(NOTIFYING_SERVICES)},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:SourceAccount": account_id}}},
    ]
    if trail_arn:
        statements.append({
            "Sid": "CloudTrailEncryptsLogs", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": ["kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceArn": trail_arn},
                          "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn":
                                         f"arn:{partition}:cloudtrail:*:{account_id}:trail/*"}},
        })
    return {"Version": POLICY_VERSION, "Statement": statements}


def topic_policy(topic_arn: str, account_id: str) -> dict[str, Any]:
    """Who may publish to an alarm topic: the account, and CloudWatch/EventBridge on its behalf."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {"Sid": "AccountPublishes", "Effect": "Allow", "Principal": {"AWS": account_id},
             "Action": ["sns:Publish", "sns:Subscribe", "sns:GetTopicAttributes", "sns:ListSubscriptionsByTopic"],
             "Resource": topic_arn},
            {"Sid": "AlarmServicesPublish", "Effect": "Allow", "Principal": {"Service": list(NOTIFYING_SERVICES)},
             "Action": "sns:Publish", "Resource": topic_arn,
             "Condition": {"StringEquals": {"aws:SourceAccount": account_id}}},
        ],
    }


def trail_arn_of(partition: str, region: str, account_id: str, name: str) -> str:
    """A trail's ARN is known before it exists: lets the alarm key's policy admit it without a cycle."""
    return f"arn:{partition}:cloudtrail:{region}:{account_id}:trail/{name}"


def trail_bucket_policy(bucket_arn: str, trail_arn: str, account_id: str) -> dict[str, Any]:
    """What CloudTrail needs on its log bucket (CloudTrail user guide, create-s3-bucket-policy-for-cloudtrail).

    Without ``GetBucketAcl`` and ``PutObject`` for ``cloudtrail.amazonaws.com`` (scoped to this
    trail by ``aws:SourceArn``) CreateTrail fails with InsufficientS3BucketPolicyException.
    """
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": [bucket_arn, f"{bucket_arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Sid": "DenyNonKmsEncryption", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
             "Resource": f"{bucket_arn}/*", "Condition": _present_and_not("s3:x-amz-server-side-encryption", "aws:kms")},
            {"Sid": "CloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:GetBucketAcl", "Resource": bucket_arn,
             "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}}},
            {"Sid": "CloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:PutObject", "Resource": f"{bucket_arn}/AWSLogs/{account_id}/*",
             "Condition": {"StringEquals": {"aws:SourceArn": trail_arn, "s3:x-amz-acl": "bucket-owner-full-control"}}},
        ],
    }


# CloudTrail event names of every change that could shorten what the vault keeps, or delete it.
VAULT_CHANGE_EVENTS = (
    "PutBucketLifecycle", "DeleteBucketLifecycle", "PutBucketPolicy", "DeleteBucketPolicy",
    "PutObjectLockConfiguration", "PutBucketReplication", "DeleteBucketReplication", "PutBucketVersioning",
    "PutBucketEncryption", "DeleteBucketEncryption", "PutBucketPublicAccessBlock", "DeleteBucketPublicAccessBlock",
    "DeleteBucket",
)
# Object-level (data) events: CloudTrail records them only for buckets a trail's data selector names.
VAULT_DATA_EVENTS = ("DeleteObject", "DeleteObjects", "PutObjectRetention", "PutObjectLegalHold")
KEY_CHANGE_EVENTS = ("ScheduleKeyDeletion", "DisableKey", "DeleteImportedKeyMaterial", "PutKeyPolicy",
                     "CancelKeyDeletion", "DeleteAlias", "UpdateAlias")


def vault_events_pattern(bucket_name: str) -> dict[str, Any]:
    """EventBridge pattern: a delete, or a lifecycle/lock/policy change, on one vault bucket."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {"eventSource": ["s3.amazonaws.com"], "eventName": [*VAULT_CHANGE_EVENTS, *VAULT_DATA_EVENTS],
                   "requestParameters": {"bucketName": [bucket_name]}},
    }


def key_events_pattern(key_arn: str) -> dict[str, Any]:
    """EventBridge pattern: a destructive or policy-changing call on one vault key."""
    return {
        "source": ["aws.kms"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {"eventSource": ["kms.amazonaws.com"], "eventName": list(KEY_CHANGE_EVENTS),
                   "resources": {"ARN": [key_arn]}},
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


def account_trust_policy(partition: str, account_id: str, *, require_mfa: bool = False,
                         ecs_tasks: bool = False) -> dict[str, Any]:
    """Trust the account itself: its administrators decide who may assume the role (CI runner, operators).

    A role trusting ``:root`` is assumable by no one until an identity policy in the account
    grants ``sts:AssumeRole`` on it, so the program never has to know the CI runner's identity.
    ``require_mfa``: only a caller who signed in with MFA (the break-glass role).
    ``ecs_tasks``: also the scheduled job tasks of this account (the role is their task role).
    """
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
        "Action": "sts:AssumeRole",
    }
    if require_mfa:
        statement["Condition"] = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    statements = [statement]
    if ecs_tasks:
        statements.append({
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        })
    return {"Version": POLICY_VERSION, "Statement": statements}


def break_glass_policy(key_arns: list[str]) -> dict[str, Any]:
    """The break-glass role: the destructive key actions the key policy denies everyone else, and their undo."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [{"Sid": "KeyBreakGlass", "Effect": "Allow",
                       "Action": [*DESTRUCTIVE_KEY_ACTIONS, "kms:CancelKeyDeletion", "kms:EnableKey"],
                       "Resource": list(key_arns)}],
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

    Read-only for backups (on the tier prefixes every action is ``s3:Get*``/``s3:List*``/
    ``kms:Decrypt``), so an operator restoring under stress cannot damage the vault. Both sides,
    because a restore during a regional outage reads the DR copy with the DR key alone. Direct
    ``Decrypt`` only under the backup context; SSE-KMS reads through S3 only in each bucket's own
    region, with its own key.

    The one write: the verification job's restore-test records under ``EVIDENCE_PREFIX``
    (scripts/vault/evidence.py), new objects only (the bucket policy denies overwrites), locked by
    the bucket's default retention like every backup. ``s3:PutObject`` alone: explicit
    ``x-amz-object-lock-*`` headers would need ``s3:PutObjectRetention``, which no role gets (it
    could set retention on any object in reach). SSE-KMS on a put needs ``kms:GenerateDataKey``
    through S3.
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
            "Sid": "WriteRestoreTestEvidence",
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": [f"{bucket_arns[s]}/{EVIDENCE_PREFIX}*" for s in sides],
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
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],  # GenerateDataKey: the evidence puts
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
