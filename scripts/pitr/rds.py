"""Every RDS call a restore into a NEW instance makes: point in time (``restore --to-time``) and from a
backup (``restore --new-instance``): the restorable window, the create or restore call, the waiter,
the master user's credentials, list and cleanup.

Both kinds share the instance's name, settings, tags, checks, listing and deletion; only the call
differs (RestoreDBInstanceToPointInTime, CreateDBInstance). The instance has the stack's own settings. Left to itself
RestoreDBInstanceToPointInTime "is created ... with the default security group, the default
subnet group, and the default DB parameter group" (RDS API reference), i.e. in the default VPC,
so every setting is passed: from the contract's ``databases[].restore.<side>`` (the standby's
network in the DR region), or, for the referenced production instance, copied from that
instance (DescribeDBInstances). The API has no KMS key parameter — the restore keeps the
backups' key — so the key is checked on the result instead.

From the DR region the source is the primary's automated backups replicated there
(``SourceDBInstanceAutomatedBackupsArn``): that call never touches the primary region.

CreateDBInstance takes the key (``KmsKeyId``, storage encrypted) and has RDS keep the master
user's password in Secrets Manager (``ManageMasterUserPassword``: no password is ever chosen,
passed or printed by the tools; they read it from the secret to connect) with IAM database
authentication on (AWS API reference, CreateDBInstance).
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, WaiterError

from scripts import aws
from scripts.common import Exit, PilotlightError, iso
from scripts.contract import Contract, Database, RestoreTarget

TAG_STACK = "pilotlight:stack"
TAG_DATABASE = "pilotlight:database"
TAG_RESTORE_OF = "pilotlight:restore-of"
TAG_RESTORE_TIME = "pilotlight:restore-time"
TAG_RESTORE_BACKUP = "pilotlight:restore-backup"
MIN_STORAGE_GB = 20  # gp3's minimum for RDS PostgreSQL (AWS: Amazon RDS DB instance storage)
# Polled every few seconds: a restore takes minutes on AWS, seconds on the sandbox.
WAITER = {"Delay": 3, "MaxAttempts": 1200}


@dataclass(frozen=True)
class Window:
    """Earliest and latest restorable time of one database's automated backups in one region."""

    earliest: datetime
    latest: datetime
    region: str

    def describe(self) -> str:
        return f"{iso(self.earliest)} .. {iso(self.latest)} in {self.region}"

    def contains(self, moment: datetime) -> bool:
        return self.earliest <= moment <= self.latest


@dataclass(frozen=True)
class RestoredInstance:
    identifier: str
    side: str
    status: str
    host: str | None
    port: int | None
    restore_time: str | None
    database: str | None
    settings: Mapping[str, Any]
    backup: str | None = None


def _fail(exc: Exception, what: str) -> PilotlightError:
    if isinstance(exc, EndpointConnectionError):
        return PilotlightError(f"{what}: RDS endpoint unreachable ({exc.kwargs.get('endpoint_url', '')})", Exit.NETWORK)
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        message = " ".join(str(err.get("Message", "")).split())
        return PilotlightError(f"{what}: {err.get('Code', 'error')}: {message}")
    return PilotlightError(f"{what}: {' '.join(str(exc).split())}", Exit.NETWORK)


def source_of(db: Database, side: str) -> dict[str, str]:
    """The restore's source: the production instance in its region, the replicated backups in DR."""
    if side == "primary":
        return {"SourceDBInstanceIdentifier": db.primary.identifier}
    target = db.restore.get("dr")
    if target is None or not target.automated_backups_arn:
        raise PilotlightError("the outputs name no automated backups replicated to the DR region "
                              f"(databases[{db.name}].restore.dr.automatedBackupsArn); re-run `pulumi up`", Exit.USAGE)
    return {"SourceDBInstanceAutomatedBackupsArn": target.automated_backups_arn}


def window(contract: Contract, db: Database, side: str) -> Window:
    """The restorable window from DescribeDBInstanceAutomatedBackups in ``side``'s region."""
    rds = aws.client(contract, "rds", side)
    source = source_of(db, side)
    query = ({"DBInstanceIdentifier": db.primary.identifier} if side == "primary"
             else {"DBInstanceAutomatedBackupsArn": source["SourceDBInstanceAutomatedBackupsArn"]})
    try:
        items = rds.describe_db_instance_automated_backups(**query)["DBInstanceAutomatedBackups"]
    except (BotoCoreError, ClientError) as exc:
        raise _fail(exc, f"reading the automated backups of {db.name} in {contract.regions[side]}") from None
    windows = [i["RestoreWindow"] for i in items if i.get("RestoreWindow", {}).get("LatestTime")]
    if not windows:
        raise PilotlightError(f"{contract.regions[side]} has no restorable automated backups of {db.name}")
    return Window(min(w["EarliestTime"] for w in windows), max(w["LatestTime"] for w in windows),
                  contract.regions[side])


def target_settings(contract: Contract, db: Database, side: str) -> RestoreTarget:
    """The stack's settings for a restore in ``side``'s region; for production, its own (DescribeDBInstances)."""
    if side in db.restore:
        return db.restore[side]
    rds = aws.client(contract, "rds", side)
    try:
        inst = rds.describe_db_instances(DBInstanceIdentifier=db.primary.identifier)["DBInstances"][0]
    except (BotoCoreError, ClientError) as exc:
        raise _fail(exc, f"reading the settings of {db.primary.identifier}") from None
    return RestoreTarget(
        subnet_group_name=inst["DBSubnetGroup"]["DBSubnetGroupName"],
        security_group_ids=tuple(g["VpcSecurityGroupId"] for g in inst.get("VpcSecurityGroups", [])),
        parameter_group_name=inst["DBParameterGroups"][0]["DBParameterGroupName"],
        kms_key_id=inst.get("KmsKeyId", ""),
        instance_class=inst["DBInstanceClass"],
    )


def instance_name(contract: Contract, db: Database, moment: datetime, kind: str = "pitr") -> str:
    """``<project>-<stack>-<db>-<kind>-<YYYYmmddHHMMSS>``, within RDS's 63 characters (a hash if longer);
    ``kind`` is ``pitr`` (restored to that time) or ``new`` (created then, for a backup)."""
    stamp = moment.strftime("%Y%m%d%H%M%S")
    base = f"{contract.project}-{contract.stack}-{db.name}".lower().replace("_", "-")
    name = f"{base}-{kind}-{stamp}"
    if len(name) > 63:
        digest = hashlib.sha256(base.encode()).hexdigest()[:8]
        name = f"{base[:63 - len(stamp) - len(kind) - 11]}-{digest}-{kind}-{stamp}"
    return "-".join(part for part in name.split("-") if part)


def restore_arguments(contract: Contract, db: Database, side: str, name: str, to_time: datetime,
                      target: RestoreTarget) -> dict[str, Any]:
    """The RestoreDBInstanceToPointInTime request: a new, private, tagged instance with the stack's settings."""
    return {
        **source_of(db, side),
        "TargetDBInstanceIdentifier": name,
        "RestoreTime": to_time,
        **_instance_arguments(contract, db, target, {TAG_RESTORE_TIME: iso(to_time)}),
    }


def create_arguments(contract: Contract, db: Database, name: str, target: RestoreTarget, *, backup_id: str,
                     engine_version: str, storage_gb: int, master_user: str) -> dict[str, Any]:
    """The CreateDBInstance request for ``restore --new-instance``: empty, encrypted with the stack's key,
    the master password kept by RDS in Secrets Manager, IAM authentication on; the same settings and tags."""
    retention = db.promotion.backup_retention_days if db.promotion else 7
    return {
        "DBInstanceIdentifier": name,
        "Engine": "postgres",
        "EngineVersion": engine_version,
        "AllocatedStorage": storage_gb,
        "StorageType": "gp3",
        "StorageEncrypted": True,
        "KmsKeyId": target.kms_key_id,
        "MasterUsername": master_user,
        "ManageMasterUserPassword": True,
        "MasterUserSecretKmsKeyId": target.kms_key_id,
        "EnableIAMDatabaseAuthentication": True,
        "BackupRetentionPeriod": retention,
        **_instance_arguments(contract, db, target, {TAG_RESTORE_BACKUP: backup_id}),
    }


def storage_for(dump_bytes: int) -> int:
    """GiB for an instance that receives a dump: three times its size (tables, indexes, WAL), at least gp3's minimum."""
    return max(MIN_STORAGE_GB, math.ceil(3 * dump_bytes / 2**30))


def engine_version(contract: Contract, db: Database, side: str, target: RestoreTarget) -> str:
    """The engine version a new instance gets: the contract's, else the instance serving in that region."""
    if target.engine_version:
        return target.engine_version
    inst = describe_raw(contract, side, db.endpoint(side).identifier)
    return inst["EngineVersion"]


def _instance_arguments(contract: Contract, db: Database, target: RestoreTarget,
                        tags: Mapping[str, str]) -> dict[str, Any]:
    """What both kinds of new instance get: the stack's class, network and parameters, private, tagged as ours."""
    return {
        "DBInstanceClass": target.instance_class,
        "DBSubnetGroupName": target.subnet_group_name,
        "VpcSecurityGroupIds": list(target.security_group_ids),
        "DBParameterGroupName": target.parameter_group_name,
        "Port": db.port,
        "MultiAZ": False,
        "PubliclyAccessible": False,
        "DeletionProtection": False,
        "CopyTagsToSnapshot": True,
        "Tags": [
            {"Key": TAG_STACK, "Value": f"{contract.project}/{contract.stack}"},
            {"Key": TAG_DATABASE, "Value": db.name},
            {"Key": TAG_RESTORE_OF, "Value": db.primary.identifier},
            *({"Key": k, "Value": v} for k, v in tags.items()),
        ],
    }


def start_restore(contract: Contract, side: str, arguments: dict[str, Any]) -> None:
    _start(contract, side, "restore_db_instance_to_point_in_time", arguments,
           f"restore of {arguments['TargetDBInstanceIdentifier']} refused")


def start_create(contract: Contract, side: str, arguments: dict[str, Any]) -> None:
    _start(contract, side, "create_db_instance", arguments, f"creation of {arguments['DBInstanceIdentifier']} refused")


def _start(contract: Contract, side: str, call: str, arguments: dict[str, Any], refused: str) -> None:
    try:
        getattr(aws.client(contract, "rds", side), call)(**arguments)
    except (BotoCoreError, ClientError) as exc:
        raise _fail(exc, refused) from None


def wait_checked(contract: Contract, side: str, name: str, target: RestoreTarget) -> tuple["RestoredInstance", float]:
    """The new instance once available, with the stack's settings (key included) and an endpoint; seconds waited."""
    began = time.monotonic()
    instance = wait_available(contract, side, name)
    waited = round(time.monotonic() - began, 3)
    wrong = settings_mismatch(instance, target)
    if wrong:
        raise PilotlightError(f"{name} does not have the stack's settings: {'; '.join(wrong)}")
    if not instance.host or not instance.port:
        raise PilotlightError(f"{name} is available but has no endpoint")
    return instance, waited


def master_credentials(contract: Contract, side: str, instance: "RestoredInstance") -> tuple[str, str]:
    """(user, password) of the instance's master user, from the secret RDS keeps it in (never shown)."""
    arn = instance.settings.get("masterUserSecretArn")
    if not arn:
        raise PilotlightError(f"{instance.identifier} names no master user secret (ManageMasterUserPassword)")
    try:
        secret = aws.client(contract, "secretsmanager", side).get_secret_value(SecretId=arn)["SecretString"]
        doc = json.loads(secret)
        return doc["username"], doc["password"]
    except (BotoCoreError, ClientError) as exc:
        raise _fail(exc, f"reading the master user secret of {instance.identifier}") from None
    except (ValueError, KeyError):
        raise PilotlightError(f"the master user secret of {instance.identifier} is not RDS's "
                              "{username, password} document") from None


def wait_available(contract: Contract, side: str, name: str) -> RestoredInstance:
    rds = aws.client(contract, "rds", side)
    try:
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=name, WaiterConfig=WAITER)
    except WaiterError as exc:
        reason = exc.last_response.get("DBInstances", [{}])[0].get("DBInstanceStatus") if exc.last_response else None
        raise PilotlightError(f"{name} did not become available ({reason or exc.kwargs.get('reason', 'waiter')}); "
                              f"it is listed by `restore --list-restored`, remove it with `--cleanup {name}`") from None
    except (BotoCoreError, ClientError) as exc:
        raise _fail(exc, f"waiting for {name}") from None
    return describe(contract, side, name)


def _restored(inst: Mapping[str, Any], side: str) -> RestoredInstance:
    tags = {t["Key"]: t["Value"] for t in inst.get("TagList", [])}
    endpoint = inst.get("Endpoint") or {}
    return RestoredInstance(
        identifier=inst["DBInstanceIdentifier"], side=side, status=inst.get("DBInstanceStatus", "unknown"),
        host=endpoint.get("Address"), port=endpoint.get("Port"), restore_time=tags.get(TAG_RESTORE_TIME),
        database=tags.get(TAG_DATABASE), backup=tags.get(TAG_RESTORE_BACKUP),
        settings={
            "subnetGroupName": (inst.get("DBSubnetGroup") or {}).get("DBSubnetGroupName"),
            "securityGroupIds": [g["VpcSecurityGroupId"] for g in inst.get("VpcSecurityGroups", [])],
            "parameterGroupName": next(iter(inst.get("DBParameterGroups") or []), {}).get("DBParameterGroupName"),
            "kmsKeyId": inst.get("KmsKeyId"),
            "instanceClass": inst.get("DBInstanceClass"),
            "masterUserSecretArn": (inst.get("MasterUserSecret") or {}).get("SecretArn"),
            "tags": tags,
        },
    )


def describe(contract: Contract, side: str, name: str) -> RestoredInstance:
    return _restored(describe_raw(contract, side, name), side)


def describe_raw(contract: Contract, side: str, name: str) -> Mapping[str, Any]:
    rds = aws.client(contract, "rds", side)
    try:
        return rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
    except (BotoCoreError, ClientError) as exc:
        raise _fail(exc, f"reading {name}") from None


def settings_mismatch(instance: RestoredInstance, target: RestoreTarget) -> list[str]:
    """What differs between the restored instance and the stack's settings (empty: all match)."""
    want = {"subnetGroupName": target.subnet_group_name, "securityGroupIds": sorted(target.security_group_ids),
            "parameterGroupName": target.parameter_group_name, "instanceClass": target.instance_class}
    have = dict(instance.settings, securityGroupIds=sorted(instance.settings["securityGroupIds"]))
    out = [f"{k} is {have.get(k)!r}, the stack's is {v!r}" for k, v in want.items() if have.get(k) != v]
    if target.kms_key_id and not _same_key(have.get("kmsKeyId"), target.kms_key_id):
        out.append(f"kmsKeyId is {have.get('kmsKeyId')!r}, the stack's is {target.kms_key_id!r}")
    return out


def _same_key(actual: str | None, wanted: str) -> bool:
    """Key ARNs and ids name the same key when their key ids agree (``key/<id>``)."""
    return bool(actual) and actual.rsplit("/", 1)[-1] == wanted.rsplit("/", 1)[-1]


def list_restored(contract: Contract, side: str) -> list[RestoredInstance]:
    """Instances this stack's restores made in ``side``'s region (by tag)."""
    rds = aws.client(contract, "rds", side)
    found = []
    try:
        for page in rds.get_paginator("describe_db_instances").paginate():
            for inst in page["DBInstances"]:
                tags = {t["Key"]: t["Value"] for t in inst.get("TagList", [])}
                if tags.get(TAG_STACK) == f"{contract.project}/{contract.stack}" and TAG_RESTORE_OF in tags:
                    found.append(_restored(inst, side))
    except (BotoCoreError, ClientError) as exc:
        raise _fail(exc, f"listing restored instances in {contract.regions[side]}") from None
    return found


def delete_restored(contract: Contract, side: str, name: str) -> None:
    """Delete one instance a restore made (refused for anything else: the tag says whose it is)."""
    mine = {i.identifier for i in list_restored(contract, side)}
    if name not in mine:
        raise PilotlightError(f"{name} is not an instance made by `restore --to-time` or `--new-instance` of stack "
                              f"{contract.stack} in {contract.regions[side]}; not deleted", Exit.REFUSED)
    rds = aws.client(contract, "rds", side)
    try:
        rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True, DeleteAutomatedBackups=True)
    except (BotoCoreError, ClientError) as exc:
        raise _fail(exc, f"deleting {name}") from None
