"""RDS rules the mock runtime enforces; each cites where AWS or the provider states it.

The provider is terraform-provider-aws ``internal/service/rds/instance.go`` (pulumi-aws bridges
it): a read replica is created with CreateDBInstanceReadReplica and then, for every argument
that call lacks (backup retention, parameter group, password, storage ceiling), one
ModifyDBInstance; an update sends one ModifyDBInstance with every changed argument and only
THEN PromoteReadReplica when ``replicate_source_db`` was removed.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

from scripts.preview.awsrules import (
    Resource, camel_case, changes, replace_only, resource_rule, stack_rule, transition_rule,
)

INSTANCE = "aws:rds/instance:Instance"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
BACKUPS_REPLICATION = "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"

INSTANCE_GO = "terraform-provider-aws internal/service/rds/instance.go"
READ_REPLICAS = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.html"
REPLICATE_BACKUPS = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReplicateBackups.html"
CREATE_REPLICA_API = "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstanceReadReplica.html"

replace_only(INSTANCE, "identifier", "identifierPrefix", "kmsKeyId", "storageEncrypted", "engine", "username",
             "dbName", "availabilityZone", "snapshotIdentifier", "characterSetName", "timezone",
             cite=f"{INSTANCE_GO} (schema: ForceNew)")
replace_only(BACKUPS_REPLICATION, "sourceDbInstanceArn", "kmsKeyId", "retentionPeriod", "preSignedUrl",
             cite="terraform-provider-aws internal/service/rds/instance_automated_backups_replication.go (every argument ForceNew)")

_ARN_RE = re.compile(r"^arn:[a-z-]+:rds:([a-z0-9-]+):\d{12}:db:(.+)$")


def _is_replica(r: Resource) -> bool:
    return bool(r.inputs.get("replicateSourceDb"))


def _postgres(instance: Resource, resources: Sequence[Resource]) -> bool:
    """The engine is PostgreSQL: an instance names its engine, a replica its parameter group's family."""
    if str(instance.inputs.get("engine") or "").startswith("postgres"):
        return True
    group = instance.inputs.get("parameterGroupName")
    return any(r.type == PARAMETER_GROUP and r.inputs.get("name") == group
               and str(r.inputs.get("family", "")).startswith("postgres") for r in resources)


@resource_rule("rds-replica-inherits-engine", INSTANCE, cite=f"{INSTANCE_GO} (engine, engine_version, username, "
               "db_name: ConflictsWith replicate_source_db)")
def replica_inherits_engine(r: Resource) -> Iterable[str]:
    if not _is_replica(r):
        return []
    return [f"{key} conflicts with replicateSourceDb (a read replica inherits it from its source)"
            for key in ("engine", "engineVersion", "username", "dbName") if r.inputs.get(key)]


@resource_rule("rds-cross-region-replica-key", INSTANCE, cite=f"{CREATE_REPLICA_API} (KmsKeyId: for an encrypted "
               "cross-Region read replica, specify a KMS key valid in the destination Region)")
def cross_region_replica_key(r: Resource) -> str | None:
    match = _ARN_RE.match(str(r.inputs.get("replicateSourceDb") or ""))
    if not match or not r.region or match.group(1) == r.region:
        return None
    key = str(r.inputs.get("kmsKeyId") or "")
    if not key:
        return "an encrypted cross-region read replica needs kmsKeyId, a key of its own region"
    key_region = key.split(":")[3] if key.startswith("arn:") and key.count(":") >= 4 else None
    if key_region and key_region != r.region:
        return f"kmsKeyId is a key of {key_region}; the replica in {r.region} needs a key of {r.region}"
    return None


@stack_rule("rds-postgres-replica-no-backups", cite=f"{READ_REPLICAS} (automatic backups of read replicas: "
            f"PostgreSQL not supported); {INSTANCE_GO} (create: ModifyDBInstance BackupRetentionPeriod after "
            "CreateDBInstanceReadReplica)")
def postgres_replica_no_backups(resources: Sequence[Resource]) -> Iterable[str]:
    for r in resources:
        if r.type == INSTANCE and _is_replica(r) and (r.inputs.get("backupRetentionPeriod") or 0) > 0 \
                and _postgres(r, resources):
            yield (f"{r.urn}: backupRetentionPeriod on a PostgreSQL read replica: RDS refuses the ModifyDBInstance "
                   "the provider sends after CreateDBInstanceReadReplica; declare retention on the promoted instance")


@stack_rule("rds-backups-replication-source", cite=f"{REPLICATE_BACKUPS} (the source must have automated backups; "
            f"a PostgreSQL read replica has none, {READ_REPLICAS})")
def backups_replication_source(resources: Sequence[Resource]) -> Iterable[str]:
    replicas = {r.inputs.get("identifier") for r in resources if r.type == INSTANCE and _is_replica(r)}
    seen: dict[tuple[str | None, str], str] = {}
    for r in resources:
        if r.type != BACKUPS_REPLICATION:
            continue
        source = str(r.inputs.get("sourceDbInstanceArn") or "")
        match = _ARN_RE.match(source)
        if match and match.group(2) in replicas:
            yield f"{r.urn}: replicates the automated backups of {match.group(2)}, a read replica that has none"
        where = (r.region, source)
        if where in seen:
            yield f"{r.urn}: {source} is already replicated into {r.region} by {seen[where]}"
        seen[where] = r.urn


@transition_rule("rds-modify-before-promote", cite=f"{INSTANCE_GO} (update: ModifyDBInstance with every changed "
                 f"argument, then PromoteReadReplica); {READ_REPLICAS} (no automated backups on PostgreSQL replicas)")
def modify_before_promote(before: Sequence[Resource], after: Sequence[Resource]) -> Iterable[str]:
    for c in changes(before, after):
        if c.op != "update" or c.after.type != INSTANCE or not _is_replica(c.before) or _is_replica(c.after):
            continue
        if "backupRetentionPeriod" in c.keys and _postgres(c.after, after):
            yield (f"{c.after.urn}: promoting in `pulumi up` sends ModifyDBInstance(BackupRetentionPeriod) to the "
                   "replica first, which RDS refuses for PostgreSQL; promote with `pilotlight cutover` "
                   "(PromoteReadReplica with the retention), then `pulumi up --refresh`")


@transition_rule("rds-no-demotion", cite=f"{INSTANCE_GO} (update: a new replicate_source_db is refused, "
                 "\"cannot elect new source database for replication\"); "
                 "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_PostgreSQL.Replication.ReadReplicas.html "
                 "(promotion is not reversible)")
def no_demotion(before: Sequence[Resource], after: Sequence[Resource]) -> Iterable[str]:
    for c in changes(before, after):
        if c.op == "update" and c.after.type == INSTANCE and "replicateSourceDb" in c.keys and _is_replica(c.after):
            yield f"{c.after.urn}: an instance cannot be turned (back) into a read replica"


@transition_rule("rds-create-needs-a-source-or-engine", cite=f"{INSTANCE_GO} (create: without replicate_source_db, "
                 "snapshot_identifier, s3_import or restore_to_point_in_time the provider calls CreateDBInstance, "
                 "which needs engine, allocated_storage and username); https://docs.aws.amazon.com/AmazonRDS/latest/"
                 "APIReference/API_CreateDBInstance.html")
def create_needs_source_or_engine(before: Sequence[Resource], after: Sequence[Resource]) -> Iterable[str]:
    for c in changes(before, after):
        if c.op not in ("create", "replace") or c.after.type != INSTANCE:
            continue
        inputs = dict(c.after.inputs)
        if c.op == "replace":
            # Ignored inputs keep their stored (refreshed) values, on a replacement too.
            for key in map(camel_case, c.after.ignore_changes):
                inputs[key] = c.before.inputs.get(key)
        if any(inputs.get(k) for k in ("replicateSourceDb", "snapshotIdentifier", "s3Import", "restoreToPointInTime")):
            continue
        missing = [k for k in ("engine", "allocatedStorage", "username") if not inputs.get(k)]
        if missing:
            yield (f"{c.after.urn}: {c.op} calls CreateDBInstance without {', '.join(missing)} "
                   "(no replicateSourceDb to copy them from)")


@transition_rule("rds-backups-replication-delete-first", cite="https://docs.aws.amazon.com/AmazonRDS/latest/"
                 "APIReference/API_StartDBInstanceAutomatedBackupsReplication.html (one replication of a source per "
                 "destination Region); terraform-provider-aws internal/service/rds/"
                 "instance_automated_backups_replication.go (every argument ForceNew)")
def backups_replication_delete_first(before: Sequence[Resource], after: Sequence[Resource]) -> Iterable[str]:
    for c in changes(before, after):
        if c.op == "replace" and c.after.type == BACKUPS_REPLICATION and not c.after.delete_before_replace:
            yield (f"{c.after.urn}: replaced create-before-delete, so a second replication of the source starts "
                   "while the first runs; set delete_before_replace")
