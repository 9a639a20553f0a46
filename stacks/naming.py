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

SIDES = ("primary", "dr")
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


def vault_bucket_name(cfg: StackConfig, side: str) -> str:
    """``<project>-<stack>-vault-<region>``: a valid, globally unique-per-stack S3 bucket name."""
    _side(side)
    return _fit(f"{base(cfg)}-vault-{cfg.region(side)}", BUCKET_MAX)


def key_alias(cfg: StackConfig) -> str:
    """The same alias names the multi-region key and its replica (one per region)."""
    return f"alias/{base(cfg)}-vault"


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
    """The role ``pilotlight restore``/``verify`` run as: reads both vaults, writes nothing."""
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
