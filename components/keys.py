"""The vault key: one multi-region KMS key in the primary region and its replica in the DR region.

A multi-region key pair shares key material, so a backup encrypted in one region decrypts in
the other with no re-encryption, and the DR side keeps working when the primary region (and
its KMS endpoint) is gone. Nothing in the stack uses an AWS-managed default key.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.rules import key_policy


@dataclass
class VaultKeysArgs:
    alias: str
    """Alias given to the key in both regions, e.g. ``alias/pilotlight-dr-vault``."""
    partition: str
    """AWS partition of the account (``aws``, ``aws-us-gov``)."""
    account_id: str
    """The account that administers and uses the key."""
    primary_region: str
    dr_region: str
    replication_role_arn: pulumi.Input[str]
    """The vault's S3 replication role (named in the key policy by condition, see rules.key_policy)."""
    backup_writer_role_arn: pulumi.Input[str]
    """The role ``pilotlight backup`` runs as: may wrap data keys directly (components/access.py)."""
    restore_reader_role_arn: pulumi.Input[str]
    """The role ``pilotlight restore``/``verify`` run as: may unwrap data keys directly."""
    break_glass_arn: str
    """The one principal the key policy lets schedule deletion of / disable the key (rules.key_policy)."""
    dr_provider: pulumi.ProviderResource
    """Provider for the DR region; the primary-region provider comes from this component's opts."""
    deletion_window_days: int = 30
    """Longest window KMS allows: a scheduled deletion of the vault key can be cancelled for 30 days."""
    description: str = "Pilotlight backup vault and standby encryption key"


class VaultKeys(pulumi.ComponentResource):
    primary_key_arn: pulumi.Output[str]
    primary_key_id: pulumi.Output[str]
    dr_key_arn: pulumi.Output[str]
    alias: pulumi.Output[str]

    def __init__(self, name: str, args: VaultKeysArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pilotlight:dr:VaultKeys", name, None, opts)
        self._args = args
        primary = aws.kms.Key(
            f"{name}-primary",
            description=args.description,
            multi_region=True,
            enable_key_rotation=True,  # rotation is a property of the primary; the replica shares it
            deletion_window_in_days=args.deletion_window_days,
            policy=self._policy(args.primary_region),
            # Every backup's data key is wrapped by this key: `pulumi destroy` (or a replace) must
            # never schedule its deletion, and removing it from the program must leave it in AWS.
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )
        replica = aws.kms.ReplicaKey(
            f"{name}-dr",
            description=args.description,
            primary_key_arn=primary.arn,
            deletion_window_in_days=args.deletion_window_days,
            policy=self._policy(args.dr_region),
            # The only key that opens backups when the primary region is gone: same protection.
            opts=pulumi.ResourceOptions(parent=self, provider=args.dr_provider, protect=True, retain_on_delete=True),
        )
        aws.kms.Alias(
            f"{name}-primary-alias",
            name=args.alias,
            target_key_id=primary.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.kms.Alias(
            f"{name}-dr-alias",
            name=args.alias,
            target_key_id=replica.key_id,
            opts=pulumi.ResourceOptions(parent=self, provider=args.dr_provider),
        )
        self.primary_key_arn = primary.arn
        self.primary_key_id = primary.key_id
        self.dr_key_arn = replica.arn
        self.alias = pulumi.Output.from_input(args.alias)
        self.register_outputs(
            {
                "primary_key_arn": self.primary_key_arn,
                "primary_key_id": self.primary_key_id,
                "dr_key_arn": self.dr_key_arn,
                "alias": self.alias,
            }
        )

    def _policy(self, region: str) -> pulumi.Output[str]:
        a = self._args
        return pulumi.Output.all(a.replication_role_arn, a.backup_writer_role_arn, a.restore_reader_role_arn).apply(
            lambda arns: json.dumps(
                key_policy(
                    partition=a.partition,
                    account_id=a.account_id,
                    region=region,
                    replication_role_arn=arns[0],
                    backup_writer_role_arn=arns[1],
                    restore_reader_role_arn=arns[2],
                    break_glass_arn=a.break_glass_arn,
                )
            )
        )

    def arn(self, side: str) -> pulumi.Output[str]:
        return self.primary_key_arn if side == "primary" else self.dr_key_arn
