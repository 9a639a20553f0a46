"""The roles the companion tools run as on real AWS: a backup writer and a restore reader.

Least privilege split along what can go wrong: the credential that runs every hour in CI
(``pilotlight backup``) can add backups but never delete one, and the credential operators use
under stress (``pilotlight restore`` / ``verify``) can only read. Both trust the account, whose
administrators grant ``sts:AssumeRole`` to the CI runner and the operators. The vault key's
policy names these roles by their (predictable) ARNs, see ``rules.key_policy``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import rules


@dataclass
class VaultAccessArgs:
    writer_role_name: str
    """Physical name of the backup-writer role (stacks/naming.py: ``backup_writer_role_name``)."""
    reader_role_name: str
    """Physical name of the restore-reader role (stacks/naming.py: ``restore_reader_role_name``)."""
    partition: str
    """AWS partition of the account (``aws``, ``aws-us-gov``): the trust policy names its root."""
    account_id: str
    """The account whose administrators decide who may assume the roles."""
    bucket_arns: dict[str, pulumi.Input[str]]
    """Vault bucket ARN per side (``primary``, ``dr``); the writer gets only the primary one."""
    key_arns: dict[str, pulumi.Input[str]]
    """Vault key ARN per side: the primary key and its DR-region replica."""
    regions: dict[str, str]
    """Region per side: scopes SSE-KMS use to S3 in the bucket's own region (``kms:ViaService``)."""
    metric_namespace: str
    """CloudWatch namespace the backup tool publishes its backup age in (the contract's ``metricNamespace``)."""
    active: str = "primary"
    """Side whose vault the writer writes (``pilotlight:active``): the DR vault while DR serves."""
    break_glass_role_name: str | None = None
    """When set, also create the break-glass role of that name: the only principal the vault key
    lets schedule its deletion or disable it; assumable only with MFA, alarmed on every use."""
    key_arns_for_break_glass: list[pulumi.Input[str]] | None = None
    """Keys the break-glass role may disable, delete or restore (default: ``key_arns``)."""
    max_session_seconds: int = 12 * 3600
    """Longest session a caller may request directly (not through role chaining, which AWS caps at 1 h)."""


class VaultAccess(pulumi.ComponentResource):
    backup_writer_role_arn: pulumi.Output[str]
    restore_reader_role_arn: pulumi.Output[str]
    break_glass_role_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: VaultAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pilotlight:dr:VaultAccess", name, None, opts)
        self._name = name
        self._args = args
        # The writer writes the ACTIVE side's vault with its key (the DR vault and key after failover),
        # wrapping the data key for the other side too.
        active, other = args.active, "dr" if args.active == "primary" else "primary"
        writer_policy = pulumi.Output.all(args.bucket_arns[active], args.key_arns[active], args.key_arns[other]).apply(
            lambda v: rules.backup_writer_policy(
                bucket_arn=v[0],
                key_arn=v[1],
                dr_key_arn=v[2],
                region=args.regions[active],
                metric_namespace=args.metric_namespace,
            )
        )
        reader_policy = pulumi.Output.all(
            args.bucket_arns["primary"], args.bucket_arns["dr"], args.key_arns["primary"], args.key_arns["dr"]
        ).apply(
            lambda v: rules.restore_reader_policy(
                bucket_arns={"primary": v[0], "dr": v[1]},
                key_arns={"primary": v[2], "dr": v[3]},
                regions=dict(args.regions),
            )
        )
        writer = self._create_role(
            "backup-writer",
            args.writer_role_name,
            "Pilotlight backup: writes the primary vault, cannot delete or unlock anything",
            writer_policy,
        )
        reader = self._create_role(
            "restore-reader",
            args.reader_role_name,
            "Pilotlight restore and verify: reads both vaults, writes only locked restore-test evidence",
            reader_policy,
        )
        self.backup_writer_role_arn = writer.arn
        self.restore_reader_role_arn = reader.arn
        self.break_glass_role_arn = None
        if args.break_glass_role_name:
            keys = args.key_arns_for_break_glass or list(args.key_arns.values())
            glass = self._create_role(
                "key-break-glass",
                args.break_glass_role_name,
                "Pilotlight break glass: the only principal that may disable or delete the vault key",
                pulumi.Output.all(*keys).apply(lambda arns: rules.break_glass_policy(list(arns))),
                trust=rules.account_trust_policy(args.partition, args.account_id, require_mfa=True),
            )
            self.break_glass_role_arn = glass.arn
        self.register_outputs(
            {
                "backup_writer_role_arn": self.backup_writer_role_arn,
                "restore_reader_role_arn": self.restore_reader_role_arn,
                "break_glass_role_arn": self.break_glass_role_arn,
            }
        )

    def _create_role(self, what: str, physical: str, description: str, policy: pulumi.Output[dict],
                     trust: dict | None = None) -> aws.iam.Role:
        """A role trusted by the account, with one inline policy named after it (``<role>-policy``)."""
        a = self._args
        role = aws.iam.Role(
            f"{self._name}-{what}",
            name=physical,
            description=description,
            assume_role_policy=json.dumps(trust or rules.account_trust_policy(a.partition, a.account_id, ecs_tasks=True)),
            max_session_duration=a.max_session_seconds,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.iam.RolePolicy(
            f"{self._name}-{what}-policy",
            role=role.id,
            policy=policy.apply(json.dumps),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return role

    def arns(self) -> dict[str, pulumi.Output[str]]:
        """The ``accessRoles`` stack output: which role each tool runs as."""
        return {"backupWriter": self.backup_writer_role_arn, "restoreReader": self.restore_reader_role_arn}
