"""The backup vault: a locked, encrypted bucket per region with replication from primary to DR.

Both buckets get the same hardening (versioning, SSE-KMS with bucket keys, the four public
access blocks, BucketOwnerEnforced, a TLS/encryption policy, Object Lock default retention,
lifecycle tiers). The primary bucket replicates every object to the DR bucket, re-encrypted
with the DR replica key, under Replication Time Control; while DR serves (``active: dr``) the DR
bucket, which then receives the backups, also replicates back to the primary one. The rules themselves come from
components.rules, the same functions the sandbox applies to the emulator.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import rules

SIDES = ("primary", "dr")
LEGACY_NAME_TAG = "pilotlight:legacy-bucket-name"


def _pulumi(docs: pulumi.Output, *path: str) -> pulumi.Output:
    """One document of ``rules.bucket_documents`` (or a field of it) in pulumi-aws argument shape."""
    def pick(d):
        for key in path:
            d = d[key] if key in d else d[key[0].upper() + key[1:]]
        return rules.as_pulumi_args(d)
    return docs.apply(pick)


@dataclass
class BackupVaultArgs:
    vault: rules.VaultRules
    """Object Lock and lifecycle settings (plain values, see stacks/documents.py)."""
    bucket_names: dict[str, str]
    """Physical bucket name per side (``primary``, ``dr``); globally unique (stacks.naming)."""
    key_arns: dict[str, pulumi.Input[str]]
    """KMS key per side: the multi-region key and its DR replica."""
    replication_role_name: str
    """Name of the replication role this component creates (the key policy already names it)."""
    account_id: str
    regions: dict[str, str]
    """Region per side; only used in policy conditions (``kms:ViaService``)."""
    dr_provider: pulumi.ProviderResource
    """Provider for the DR region; primary-region children inherit this component's provider."""
    force_destroy: bool = False
    """Never empty a backup vault on delete (Object Lock would refuse most of it anyway)."""
    active: str = "primary"
    """Side serving traffic (``pilotlight:active``): with ``dr`` the DR bucket replicates back to primary."""
    legacy_names: bool = False
    """The buckets keep names from before the account suffix (they cannot be renamed): tagged so the
    policy pack's global-uniqueness rule knows the name is already this account's."""


class BackupVault(pulumi.ComponentResource):
    bucket_names: dict[str, pulumi.Output[str]]
    bucket_arns: dict[str, pulumi.Output[str]]
    replication_role_arn: pulumi.Output[str]
    replication_rule_id: str

    def __init__(self, name: str, args: BackupVaultArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pilotlight:dr:BackupVault", name, None, opts)
        self._name, self._args = name, args
        buckets, versionings = {}, {}
        for side in SIDES:
            buckets[side], versionings[side] = self._create_bucket(side)
        role, role_policy = self._create_replication_role(buckets)
        self._create_replication(buckets, versionings, role, role_policy)
        if args.active == "dr":
            self._create_replication(buckets, versionings, role, self._replication_policy(role, buckets, "dr"), "dr")
        self.bucket_names = {side: b.bucket for side, b in buckets.items()}
        self.bucket_arns = {side: b.arn for side, b in buckets.items()}
        self.replication_role_arn = role.arn
        self.replication_rule_id = rules.REPLICATION_RULE_ID
        self.register_outputs(
            {
                "bucket_names": self.bucket_names,
                "bucket_arns": self.bucket_arns,
                "replication_role_arn": self.replication_role_arn,
                "replication_rule_id": self.replication_rule_id,
            }
        )

    def _opts(self, side: str, **kwargs) -> pulumi.ResourceOptions:
        provider = self._args.dr_provider if side == "dr" else None
        return pulumi.ResourceOptions(parent=self, provider=provider, **kwargs)

    def _create_bucket(self, side: str) -> tuple[aws.s3.Bucket, aws.s3.BucketVersioning]:
        a, n = self._args, f"{self._name}-{side}"
        key_arn = a.key_arns[side]
        bucket = aws.s3.Bucket(
            n,
            bucket=a.bucket_names[side],
            object_lock_enabled=True,  # only settable at creation
            force_destroy=a.force_destroy,
            tags={LEGACY_NAME_TAG: "true"} if a.legacy_names else None,
            # The backups are the point of the stack: `pulumi destroy` must never take them along,
            # and dropping the bucket from the program must leave it (and its locked versions) in AWS.
            opts=self._opts(side, protect=True, retain_on_delete=True),
        )
        docs = pulumi.Output.all(bucket.arn, key_arn).apply(
            lambda v: rules.bucket_documents(a.vault, bucket_arn=v[0], key_arn=v[1]))
        versioning = aws.s3.BucketVersioning(
            f"{n}-versioning",
            bucket=bucket.id,
            versioning_configuration=_pulumi(docs, "versioning"),
            opts=self._opts(side),
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{n}-encryption",
            bucket=bucket.id,
            rules=_pulumi(docs, "encryption", "rules"),
            opts=self._opts(side),
        )
        block = rules.bucket_documents(a.vault, bucket_arn="", key_arn="")["public_access_block"]
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{n}-public-access",
            bucket=bucket.id,
            **rules.as_pulumi_args(block),
            opts=self._opts(side),
        )
        ownership = aws.s3.BucketOwnershipControls(
            f"{n}-ownership",
            bucket=bucket.id,
            rule=_pulumi(docs, "ownership", "rules").apply(lambda r: r[0]),
            opts=self._opts(side),
        )
        aws.s3.BucketPolicy(
            f"{n}-policy",
            bucket=bucket.id,
            policy=docs.apply(lambda d: json.dumps(d["policy"])),
            # S3 rejects concurrent bucket-level writes ("conflicting conditional operation"): policy after the blocks.
            opts=self._opts(side, depends_on=[public_access, ownership]),
        )
        lock = _pulumi(docs, "object_lock")
        aws.s3.BucketObjectLockConfiguration(
            f"{n}-object-lock",
            bucket=bucket.id,
            object_lock_enabled=lock["object_lock_enabled"],
            rule=lock["rule"],
            # Default retention applies to versions, so versioning is configured first.
            opts=self._opts(side, depends_on=[versioning]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{n}-lifecycle",
            bucket=bucket.id,
            rules=_pulumi(docs, "lifecycle", "rules"),
            # Noncurrent-version rules only mean something once versioning is on.
            opts=self._opts(side, depends_on=[versioning]),
        )
        return bucket, versioning

    def _create_replication_role(self, buckets: dict[str, aws.s3.Bucket]) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        a = self._args
        role = aws.iam.Role(
            f"{self._name}-replication-role",
            name=a.replication_role_name,
            description="S3 replication of the Pilotlight backup vault between its regions",
            assume_role_policy=json.dumps(rules.replication_trust_policy(a.account_id)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return role, self._replication_policy(role, buckets, "primary")

    def _replication_policy(self, role: aws.iam.Role, buckets: dict[str, aws.s3.Bucket], source: str) -> aws.iam.RolePolicy:
        """The role's permissions for one direction (one inline policy each: the reverse one only exists while DR serves)."""
        a, dest = self._args, "dr" if source == "primary" else "primary"
        policy = pulumi.Output.all(
            buckets[source].arn, buckets[dest].arn, a.key_arns[source], a.key_arns[dest]
        ).apply(
            lambda v: json.dumps(
                rules.replication_role_policy(
                    source_bucket_arn=v[0],
                    destination_bucket_arn=v[1],
                    source_key_arn=v[2],
                    replica_key_arn=v[3],
                    source_region=a.regions[source],
                    destination_region=a.regions[dest],
                )
            )
        )
        return aws.iam.RolePolicy(
            f"{self._name}-replication-policy" if source == "primary" else f"{self._name}-replication-back-policy",
            role=role.id,
            policy=policy,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_replication(
        self,
        buckets: dict[str, aws.s3.Bucket],
        versionings: dict[str, aws.s3.BucketVersioning],
        role: aws.iam.Role,
        role_policy: aws.iam.RolePolicy,
        source: str = "primary",
    ) -> None:
        a = self._args
        config = pulumi.Output.all(role.arn, buckets["primary"].arn, buckets["dr"].arn, a.key_arns["primary"],
                                   a.key_arns["dr"]).apply(
            lambda v: rules.as_pulumi_args(rules.replication_configurations(
                a.active, v[0], {"primary": v[1], "dr": v[2]}, {"primary": v[3], "dr": v[4]})[source])
        )
        aws.s3.BucketReplicationConfig(
            f"{self._name}-replication" if source == "primary" else f"{self._name}-replication-back",
            bucket=buckets[source].id,
            role=config["role"],
            rules=config["rules"],
            # S3 refuses replication unless both buckets are versioned; the role must be able to
            # act before the first object is written.
            opts=self._opts(source, depends_on=[versionings["primary"], versionings["dr"], role_policy]),
        )
