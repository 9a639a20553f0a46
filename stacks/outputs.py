"""The stack outputs contract (version 1, see scripts/contract.py and docs/outputs-contract.md).

One builder for both producers: the Pulumi program passes ``pulumi.Output`` values and exports
each top-level key with ``pulumi.export``; the sandbox passes plain strings and writes the
document as JSON. Values are placed, never inspected, so either kind works unchanged.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from stacks import naming
from stacks.config import DatabaseConfig, StackConfig
from stacks.vocabulary import BACKUP_AGE_METRIC, CONTRACT_VERSION, METRIC_NAMESPACE, SIDES
from stacks.objectives import PROMOTION_SECONDS

DNS_KEYS = ("recordName", "healthCheckId", "primaryTarget", "drTarget")
OPTIONAL_DNS_KEYS = ("switch", "signalAlarm")
# Per-database sections the program always exports and producers without them (older sandboxes) omit.
OPTIONAL_DATABASE_KEYS = ("promotion", "failback")
# Dimensions the backup tool publishes BACKUP_AGE_METRIC with (one series per database and tier).
BACKUP_AGE_DIMENSIONS = ("Database", "Tier")


def outputs_document(
    cfg: StackConfig,
    *,
    keys: Mapping[str, Mapping[str, Any]],
    buckets: Mapping[str, Mapping[str, Any]],
    zone_id: Any,
    databases: Sequence[Mapping[str, Any]],
    topic_arn: Any,
    sandbox: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the contract document.

    Arguments (each value a ``str`` or a ``pulumi.Output[str]``):

    - ``keys``: ``{"primary": {"arn", "alias"}, "dr": {"arn", "alias"}}`` — the multi-region key and its replica.
    - ``buckets``: ``{"primary": {"bucket", "arn"}, "dr": {"bucket", "arn"}}`` — the vault buckets.
    - ``zone_id``: the hosted zone id (usually ``cfg.dns.zone_id``).
    - ``databases``: one item per ``cfg.databases`` entry, in any order::

          {"config": DatabaseConfig,
           "primary": {"identifier", "arn", "host"},
           "standby": {"identifier", "arn", "host"},
           "dns": {"recordName", "healthCheckId", "primaryTarget", "drTarget",
                   "switch": {"healthCheckId", "threshold": {"primary", "dr"}},      # optional
                   "signalAlarm": {"name", "region"}},                               # optional (DATABASE signal)
           "promotion": {"backupRetentionDays", "multiAz"},                          # optional
           "failback": {"generation", "primaryIdentifier", "standbyIdentifier", "standbyUrn"},  # optional
           "restore": {"dr": {"subnetGroupName", "securityGroupIds", "parameterGroupName",  # optional
                              "kmsKeyId", "instanceClass", "automatedBackupsArn"}},
           "credentials": {"user", "iamAuth", "secretArn": {"primary", "dr"}}}       # optional: default from config

    - ``topic_arn``: the alarm topic of the active side's region.
    - ``sandbox``: the sandbox section (camelCase, as :func:`scripts.contract._parse_sandbox` reads it) or None.

    Objectives, tiers, object lock, DNS zone name and TTL come from ``cfg``, and so do each database's
    optional ``application`` and ``smokeChecks`` (:func:`application_sections`).
    """
    missing = {s for s in SIDES if s not in keys or s not in buckets}
    if missing:
        raise ValueError(f"keys and buckets need both sides, missing: {sorted(missing)}")
    database_items = _databases(cfg, databases)
    doc: dict[str, Any] = {
        "contractVersion": CONTRACT_VERSION,
        "project": cfg.project,
        "stack": cfg.stack,
        "active": cfg.active,
        "regions": {side: cfg.region(side) for side in SIDES},
        "keys": {side: {"arn": keys[side]["arn"], "alias": keys[side]["alias"]} for side in SIDES},
        "vault": {
            **{side: {"bucket": buckets[side]["bucket"], "arn": buckets[side]["arn"]} for side in SIDES},
            "objectLock": {"mode": cfg.vault.object_lock_mode, "days": cfg.vault.object_lock_days},
            "tiers": {
                name: {
                    "prefix": tier.prefix,
                    "intervalSeconds": tier.interval_seconds,
                    "slackSeconds": cfg.alarms.backup_age_slack_seconds,
                    "retentionDays": tier.retention_days,
                }
                for name, tier in cfg.vault.tiers.items()
            },
        },
        "dns": {"zoneId": zone_id, "zoneName": cfg.dns.zone_name, "ttl": cfg.dns.ttl},
        "databases": database_items,
        "alarms": {"topicArn": topic_arn, "metricNamespace": METRIC_NAMESPACE, "backupAgeMetric": BACKUP_AGE_METRIC},
        "objectives": {
            name: {"rtoSeconds": o.rto_seconds, "rpoSeconds": o.rpo_seconds} for name, o in cfg.objectives.items()
        },
        # The stack's own recovery figures, so a drill report can project the RTO on AWS (optional in v1).
        "recovery": {
            "detectionSeconds": cfg.dns.health_check.detection_seconds,
            "healthCheck": {"intervalSeconds": cfg.dns.health_check.interval_seconds,
                            "failureThreshold": cfg.dns.health_check.failure_threshold},
            "promotionSeconds": PROMOTION_SECONDS,
        },
    }
    if cfg.contacts:
        doc["contacts"] = contacts_document(cfg)
    if sandbox is not None:
        doc["sandbox"] = dict(sandbox)
    return doc


def contacts_document(cfg: StackConfig) -> list[dict[str, Any]]:
    """The incident contacts in escalation order (optional in v1; the runbook prints them)."""
    return [{"name": c.name, "role": c.role, "reach": c.reach,
             **({"escalateAfterSeconds": c.escalate_after_seconds} if c.escalate_after_seconds else {})}
            for c in cfg.contacts]


def _databases(cfg: StackConfig, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    by_name = {item["config"].name: item for item in items}
    wanted = [db.name for db in cfg.databases]
    if sorted(by_name) != sorted(wanted):
        raise ValueError(f"databases must match the config exactly: got {sorted(by_name)}, config has {sorted(wanted)}")
    out = []
    for db in cfg.databases:
        item = by_name[db.name]
        out.append(
            {
                "name": db.name,
                "dbName": db.db_name,
                "port": db.port,
                "primary": {k: item["primary"][k] for k in ("identifier", "arn", "host")},
                "standby": {k: item["standby"][k] for k in ("identifier", "arn", "host")},
                "dns": {k: item["dns"][k] for k in DNS_KEYS}
                | {k: item["dns"][k] for k in OPTIONAL_DNS_KEYS if k in item["dns"]},
                **({"restore": {side: dict(target) for side, target in item["restore"].items()}}
                   if item.get("restore") else {}),
                **{k: item[k] for k in OPTIONAL_DATABASE_KEYS if k in item},
                **({"credentials": item.get("credentials") or credentials_section(cfg, db)}
                   if db.credentials_secret_arn or db.iam_auth else {}),
                **application_sections(db),
            }
        )
    return out


def application_sections(db: DatabaseConfig) -> dict[str, Any]:
    """The optional ``application`` and ``smokeChecks`` of a database (stacks/appconfig.py), as declared."""
    out: dict[str, Any] = {}
    if db.application is not None:
        out["application"] = db.application.contract()
    if db.smoke_checks:
        out["smokeChecks"] = [check.contract() for check in db.smoke_checks]
    return out


def credentials_section(cfg: StackConfig, db: DatabaseConfig, secret_arns: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """How the tools log in to ``db`` (the contract's ``databases[].credentials``): names and ARNs, never a value.

    A secret is read in the region of the side the tools connect to: the DR one is the primary's
    replica (same ARN, the DR region), so logging in to the DR side needs no primary-region call.
    """
    out: dict[str, Any] = {"user": db.user, "iamAuth": db.iam_auth}
    if db.credentials_secret_arn:
        out["secretArn"] = dict(secret_arns or {
            "primary": db.credentials_secret_arn, "dr": naming.arn_in_region(db.credentials_secret_arn, cfg.dr_region)})
    return out


def promotion_document(cfg: StackConfig) -> dict[str, Any]:
    """What a promotion must pass so the promoted standby is what ``active: dr`` declares.

    ``pilotlight cutover`` calls PromoteReadReplica with ``BackupRetentionPeriod`` = backupRetentionDays
    (RDS keeps no automated backups of a PostgreSQL replica, so retention starts at promotion).
    """
    return {"backupRetentionDays": cfg.standby.backup_retention_days, "multiAz": cfg.standby.multi_az_when_promoted}


def restore_target(*, subnet_group_name: Any, security_group_ids: Sequence[Any], parameter_group_name: Any,
                   kms_key_id: Any, instance_class: str, automated_backups_arn: Any = None,
                   engine_version: str | None = None) -> dict[str, Any]:
    """Where a restore into a new instance in one region lands (the contract's ``databases[].restore.<side>``):
    point in time, or ``restore --new-instance`` (which also needs the engine version to create one)."""
    target = {"subnetGroupName": subnet_group_name, "securityGroupIds": list(security_group_ids),
              "parameterGroupName": parameter_group_name, "kmsKeyId": kms_key_id, "instanceClass": instance_class}
    if engine_version is not None:
        target["engineVersion"] = engine_version
    if automated_backups_arn is not None:
        target["automatedBackupsArn"] = automated_backups_arn
    return target


def primary_endpoint(db: DatabaseConfig) -> dict[str, str]:
    """The referenced production instance, as the contract's ``primary`` endpoint."""
    return {"identifier": db.primary_identifier, "arn": db.primary_arn, "host": db.primary_host}
