"""Physical names, derived from project + stack so two stacks never collide.

Pure functions shared by the program and the sandbox: the sandbox creates the same bucket,
alias and instance names in the emulator, so a contract from either looks the same.
Every name is lowercased, stripped to the characters its AWS service allows, and, when too
long, shortened with a stable hash suffix (never silently truncated into a collision).
"""
from __future__ import annotations

import hashlib
import re

from stacks.config import DatabaseConfig, StackConfig
from stacks.vocabulary import SIDES

BUCKET_MAX = 63
RDS_MAX = 63
IAM_ROLE_MAX = 64


def _fit(name: str, limit: int) -> str:
    """Lowercase, hyphen-separated, at most ``limit`` chars; long names end in a hash of the full name."""
    clean = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    clean = re.sub(r"-{2,}", "-", clean)
    if not clean[:1].isalpha():
        clean = "p" + clean
    if len(clean) <= limit:
        return clean
    digest = hashlib.sha256(clean.encode()).hexdigest()[:8]
    return f"{clean[: limit - 9].rstrip('-')}-{digest}"


def base(cfg: StackConfig) -> str:
    """``<project>-<stack>``: the prefix of every physical name."""
    return _fit(f"{cfg.project}-{cfg.stack}", 40)


def _side(side: str) -> None:
    if side not in SIDES:
        raise ValueError(f"side must be 'primary' or 'dr', got {side!r}")


def bucket_suffix(cfg: StackConfig) -> str:
    """What makes vault bucket names unique in S3's global namespace: the account id by default.

    Bucket names are global across all accounts of a partition, so project + stack + region
    alone collide with any other account deploying the same project (``BucketAlreadyExists``).
    ``none`` keeps the old names, for stacks whose Object-Locked buckets already exist under them
    (a protected bucket cannot be replaced, so a rename would fail the update).
    """
    suffix = cfg.vault.bucket_suffix
    if suffix == "account":
        return cfg.account_id
    return "" if suffix == "none" else suffix


def vault_bucket_name(cfg: StackConfig, side: str) -> str:
    """``<project>-<stack>-vault-<region>-<account id or suffix>``: a valid, globally unique bucket name.

    The suffix is kept whole: a long base is shortened (with a hash) before it, never the suffix.
    """
    _side(side)
    suffix = bucket_suffix(cfg)
    if not suffix:
        return _fit(f"{base(cfg)}-vault-{cfg.region(side)}", BUCKET_MAX)
    head = _fit(f"{base(cfg)}-vault-{cfg.region(side)}", BUCKET_MAX - len(suffix) - 1)
    return f"{head}-{suffix}"


def break_glass_role_name(cfg: StackConfig) -> str:
    """The only role the vault key lets schedule its deletion or disable it (MFA required to assume)."""
    return _fit(f"{base(cfg)}-key-break-glass", IAM_ROLE_MAX)


def break_glass_arn(cfg: StackConfig) -> str:
    return cfg.vault.break_glass_arn or role_arn(cfg, break_glass_role_name(cfg))


def trail_name(cfg: StackConfig) -> str:
    return _fit(f"{base(cfg)}-vault-audit", 128)


def trail_bucket_name(cfg: StackConfig) -> str:
    """The audit trail's log bucket: in the primary region, as unique as the vault buckets."""
    suffix = bucket_suffix(cfg) or cfg.account_id
    return f"{_fit(f'{base(cfg)}-audit-{cfg.primary_region}', BUCKET_MAX - len(suffix) - 1)}-{suffix}"


def key_alias(cfg: StackConfig) -> str:
    """The same alias names the multi-region key and its replica (one per region)."""
    return f"alias/{base(cfg)}-vault"


def alarm_key_alias(cfg: StackConfig) -> str:
    """The alarm topics' own key (one per region), never the vault key."""
    return f"alias/{base(cfg)}-alarms"


def _generation(generation: int) -> str:
    return f"-g{generation}" if generation else ""


def standby_identifier(cfg: StackConfig, db: DatabaseConfig, generation: int | None = None) -> str:
    """RDS identifier of a database's DR-region standby of ``generation`` (default: the configured one).

    Generation 0 keeps the original name; each failback makes a new standby, ``...-standby-g<n>``.
    Letters, digits, single hyphens, at most 63 characters.
    """
    g = db.generation if generation is None else generation
    return _fit(f"{base(cfg)}-{db.name}-standby{_generation(g)}", RDS_MAX)


def standby_logical_name(db: DatabaseConfig, generation: int | None = None) -> str:
    """Pulumi name of the Standby component of ``generation``: a new generation is a new resource."""
    g = db.generation if generation is None else generation
    return f"standby-{db.name}{_generation(g)}"


def failback_primary_identifier(cfg: StackConfig, db: DatabaseConfig) -> str:
    """RDS identifier of the primary-region replica ``pilotlight failback`` creates from the current standby."""
    return _fit(f"{base(cfg)}-{db.name}-primary-g{db.generation + 1}", RDS_MAX)


def subnet_group_name(cfg: StackConfig) -> str:
    return _fit(f"{base(cfg)}-standby", 255)


def parameter_group_name(cfg: StackConfig) -> str:
    return _fit(f"{base(cfg)}-standby-{cfg.standby.parameter_group_family}", 255)


def security_group_name(cfg: StackConfig) -> str:
    return _fit(f"{base(cfg)}-standby", 255)


def replication_role_name(cfg: StackConfig) -> str:
    return _fit(f"{base(cfg)}-vault-replication", IAM_ROLE_MAX)


def backup_writer_role_name(cfg: StackConfig) -> str:
    """The role ``pilotlight backup`` runs as: writes the primary vault, never deletes."""
    return _fit(f"{base(cfg)}-backup-writer", IAM_ROLE_MAX)


def restore_reader_role_name(cfg: StackConfig) -> str:
    """The role ``pilotlight restore``/``verify`` run as: reads both vaults, writes only restore-test evidence."""
    return _fit(f"{base(cfg)}-restore-reader", IAM_ROLE_MAX)


def monitoring_role_name(cfg: StackConfig) -> str:
    return _fit(f"{base(cfg)}-rds-monitoring", IAM_ROLE_MAX)


def role_arn(cfg: StackConfig, role_name: str) -> str:
    """A role's ARN is known before it exists: lets the key policy name it without a cycle."""
    return f"arn:{cfg.partition}:iam::{cfg.account_id}:role/{role_name}"


def topic_name(cfg: StackConfig, side: str = "primary") -> str:
    """Alarm topic per region (CloudWatch alarms can only notify a topic in their own region)."""
    _side(side)
    suffix = "alarms" if side == "primary" else "alarms-dr"
    return _fit(f"{base(cfg)}-{suffix}", 256)


def health_check_name(cfg: StackConfig, what: str) -> str:
    return _fit(f"{base(cfg)}-{what}", 255)


def set_identifier(side: str) -> str:
    """Route 53 failover record set identifiers: ``primary`` is always PRIMARY, ``dr`` always SECONDARY."""
    _side(side)
    return side


def arn_in_region(arn: str, region: str) -> str:
    """The same ARN in ``region``: a Secrets Manager secret's replica, a multi-region KMS key's.

    AWS: "The ARN for a replicated secret is the same as the primary secret except for the
    Region" (Secrets Manager user guide, replicate-secrets); a multi-region key's replicas share
    its key id (KMS developer guide, multi-region keys).
    """
    parts = arn.split(":")
    parts[3] = region
    return ":".join(parts)


def secret_key_arns(cfg: StackConfig, db: DatabaseConfig) -> list[str]:
    """The secret's customer KMS key, and its DR-region replica when it is a multi-region key (``mrk-``):
    the secret's replica in the DR region is encrypted with a key of that region."""
    key = db.credentials_secret_key_arn
    if not key:
        return []
    return [key, arn_in_region(key, cfg.dr_region)] if "key/mrk-" in key else [key]


def secret_name(arn: str) -> str:
    """The secret's name in its ARN, without the 6 random characters Secrets Manager appends (``-a1b2c3``)."""
    name = arn.split(":secret:", 1)[1]
    return name[:-7] if len(name) > 7 and name[-7] == "-" else name


def db_user_arn(cfg: StackConfig, db: DatabaseConfig, side: str, resource_id: str) -> str:
    """The ``rds-db:connect`` resource of a database's tool user on one side's instance.

    AWS's format (Service Authorization Reference, Amazon RDS IAM Authentication, resource type
    db-user): ``arn:${Partition}:rds-db:${Region}:${Account}:dbuser:${DbiResourceId}/${DbUserName}``:
    the instance by its DbiResourceId (``db-...``), never its identifier.
    """
    return f"arn:{cfg.partition}:rds-db:{cfg.region(side)}:{cfg.account_id}:dbuser:{resource_id}/{db.user}"
