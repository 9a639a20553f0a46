"""Vault audit: alarm on every delete, and every lifecycle, lock or policy change, of the vault and its keys.

What EventBridge needs to see those calls (EventBridge user guide, eb-service-event-cloudtrail):

- a CloudTrail **trail** that is logging: without one, no "AWS API Call via CloudTrail" event
  reaches EventBridge at all. The trail is multi-region, so calls in the DR region are seen too;
- object-level calls (``DeleteObject``, ``DeleteObjects``, ``PutObjectRetention``...) are data
  events, recorded only for the buckets a data-event selector of the trail names;
- the rule in the **region of the call**: CloudTrail delivers each event to the default bus of
  the region where the call was made, so there is one rule per side for that side's bucket and key;
- an SNS target whose topic policy lets ``events.amazonaws.com`` publish and whose KMS key lets
  it encrypt (components/alarms.py); otherwise the invocation fails silently.

The trail writes to a log bucket of its own (versioned, SSE-KMS with the alarm key, private,
Object Lock), never into the vault: the vault's bucket policy refuses puts without If-None-Match.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import rules

SIDES = ("primary", "dr")


@dataclass
class VaultAuditArgs:
    trail_name: str
    trail_bucket_name: str
    """Physical name of the trail's log bucket (globally unique, stacks.naming)."""
    partition: str
    account_id: str
    primary_region: str
    vault_bucket_names: dict[str, pulumi.Input[str]]
    vault_bucket_arns: dict[str, pulumi.Input[str]]
    vault_key_arns: dict[str, pulumi.Input[str]]
    topic_arns: dict[str, pulumi.Input[str]]
    """The alarm topic per side: each side's rules notify its own region's topic."""
    trail_key_arn: pulumi.Input[str]
    """The primary-region alarm key: encrypts the trail's log files (its policy admits this trail)."""
    dr_provider: pulumi.ProviderResource
    name_prefix: str
    log_retention_days: int = 365
    """How long audit logs are kept (and locked)."""


class VaultAudit(pulumi.ComponentResource):
    trail_arn: pulumi.Output[str]

    def __init__(self, name: str, args: VaultAuditArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pilotlight:dr:VaultAudit", name, None, opts)
        self._name, self._args = name, args
        trail_arn = rules.trail_arn_of(args.partition, args.primary_region, args.account_id, args.trail_name)
        bucket, policy = self._create_log_bucket(trail_arn)
        trail = aws.cloudtrail.Trail(
            f"{name}-trail",
            name=args.trail_name,
            s3_bucket_name=bucket.id,
            kms_key_id=args.trail_key_arn,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_log_file_validation=True,
            enable_logging=True,
            event_selectors=[{
                "read_write_type": "WriteOnly",
                "include_management_events": True,
                "data_resources": [{"type": "AWS::S3::Object",
                                    "values": [pulumi.Output.concat(args.vault_bucket_arns[s], "/") for s in SIDES]}],
            }],
            # CreateTrail checks the bucket policy first (InsufficientS3BucketPolicyException).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        for side in SIDES:
            self._create_rule(side, "vault", pulumi.Output.from_input(args.vault_bucket_names[side]).apply(
                rules.vault_events_pattern), "a delete or a lifecycle/lock/policy change on the backup vault", trail)
            self._create_rule(side, "key", pulumi.Output.from_input(args.vault_key_arns[side]).apply(
                rules.key_events_pattern), "a destructive or policy call on the vault key", trail)
        self.trail_arn = trail.arn
        self.register_outputs({"trail_arn": self.trail_arn})

    def _opts(self, side: str, **kwargs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._args.dr_provider if side == "dr" else None, **kwargs)

    def _create_log_bucket(self, trail_arn: str) -> tuple[aws.s3.Bucket, aws.s3.BucketPolicy]:
        a, n = self._args, f"{self._name}-logs"
        bucket = aws.s3.Bucket(n, bucket=a.trail_bucket_name, object_lock_enabled=True,
                               # The evidence of an attack must outlive the attacker's `pulumi destroy`.
                               opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True))
        versioning = aws.s3.BucketVersioning(f"{n}-versioning", bucket=bucket.id,
                                             versioning_configuration={"status": "Enabled"},
                                             opts=pulumi.ResourceOptions(parent=self))
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{n}-encryption", bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms",
                                                                "kms_master_key_id": a.trail_key_arn},
                    "bucket_key_enabled": True}],
            opts=pulumi.ResourceOptions(parent=self))
        block = aws.s3.BucketPublicAccessBlock(f"{n}-public-access", bucket=bucket.id, block_public_acls=True,
                                               block_public_policy=True, ignore_public_acls=True,
                                               restrict_public_buckets=True, opts=pulumi.ResourceOptions(parent=self))
        aws.s3.BucketObjectLockConfiguration(
            f"{n}-object-lock", bucket=bucket.id,
            **rules.as_pulumi_args(rules.object_lock_configuration("GOVERNANCE", a.log_retention_days)),
            # Default retention applies to versions, so versioning is configured first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]))
        policy = aws.s3.BucketPolicy(
            f"{n}-policy", bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(rules.trail_bucket_policy(arn, trail_arn, a.account_id))),
            # S3 rejects concurrent bucket-level writes: the policy after the public access block.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[block]))
        return bucket, policy

    def _create_rule(self, side: str, what: str, pattern: pulumi.Output, description: str,
                     trail: aws.cloudtrail.Trail) -> None:
        a = self._args
        rule = aws.cloudwatch.EventRule(
            f"{self._name}-{side}-{what}",
            name=f"{a.name_prefix}-{what}-changes-{side}",
            description=f"Pilotlight: {description}",
            event_pattern=pattern.apply(json.dumps),
            # Matches only while the trail delivers the calls it watches.
            opts=self._opts(side, depends_on=[trail]),
        )
        aws.cloudwatch.EventTarget(
            f"{self._name}-{side}-{what}-notify",
            rule=rule.name,
            arn=a.topic_arns[side],
            opts=self._opts(side),
        )

