"""The RDS control plane, the one platform: describe, promote, create cross-region replicas, stop.

Cutover, failback and drills make these calls against RDS (``boto3`` clients from
:mod:`scripts.aws`, in the region of the side concerned) whether the stack is real or the
sandbox (which answers the same API on local PostgreSQL). Waiting is boto3's own waiters,
then a check of what RDS reports: right after a call RDS may still show the old status, so
``available`` alone does not prove a promotion finished.
"""
from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from scripts import aws
from scripts.common import Exit, PilotlightError
from scripts.contract import Contract, Database
from scripts.postgres.replication import wait_writable

PROMOTE_TIMEOUT = 60.0
# RDS takes minutes to promote or create a replica; poll every 2 s for up to 40 min.
WAIT = {"Delay": 2, "MaxAttempts": 1200}


class RdsPlatform:
    """RDS instances of a contract, by side (the region) and identifier."""

    def __init__(self, contract: Contract):
        self.contract = contract

    def client(self, side: str):
        return aws.client(self.contract, "rds", side)

    def describe(self, side: str, identifier: str) -> dict[str, Any] | None:
        """The instance as RDS shows it, None if it does not exist."""
        try:
            return self.client(side).describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "DBInstanceNotFound":
                return None
            raise

    def wait_available(self, side: str, identifier: str, timeout: float = 2400.0,
                       replica: bool | None = None) -> dict[str, Any]:
        """boto3's ``db_instance_available`` waiter, then until RDS shows the replica relation wanted."""
        self.client(side).get_waiter("db_instance_available").wait(DBInstanceIdentifier=identifier, WaiterConfig=WAIT)
        deadline = time.monotonic() + timeout
        while True:
            inst = self.describe(side, identifier)
            is_replica = bool(inst and inst.get("ReadReplicaSourceDBInstanceIdentifier"))
            if inst and inst["DBInstanceStatus"] == "available" and (replica is None or is_replica == replica):
                return inst
            if time.monotonic() > deadline:
                shown = inst["DBInstanceStatus"] if inst else "gone"
                raise PilotlightError(f"RDS instance {identifier} still {shown} after {timeout:.0f} s", Exit.FAILED)
            time.sleep(WAIT["Delay"])

    def promote(self, db: Database, side: str, backup_retention: int | None = None) -> None:
        """PromoteReadReplica (unless RDS already shows it standalone), wait, then until it takes writes."""
        ident = db.endpoint(side).identifier
        inst = self.describe(side, ident)
        if inst is None:
            raise PilotlightError(f"RDS instance {ident} does not exist in {self.contract.regions[side]}", Exit.FAILED)
        if inst.get("ReadReplicaSourceDBInstanceIdentifier"):
            extra = {"BackupRetentionPeriod": backup_retention} if backup_retention is not None else {}
            self.client(side).promote_read_replica(DBInstanceIdentifier=ident, **extra)
        self.wait_available(side, ident, replica=False)
        wait_writable(self.contract, db, side, PROMOTE_TIMEOUT)

    def create_replica(self, side: str, identifier: str, source_arn: str, source_side: str,
                       like: dict[str, Any]) -> dict[str, Any]:
        """CreateDBInstanceReadReplica of ``source_arn`` in ``side``'s region, settings copied from ``like``.

        Idempotent: an instance with that identifier that is already a replica of the source is reused.
        Encrypted with the contract's KMS key of that region (RDS requires one for a cross-region replica).
        """
        existing = self.describe(side, identifier)
        if existing is not None:
            if existing.get("ReadReplicaSourceDBInstanceIdentifier") not in (source_arn, source_arn.rsplit(":", 1)[-1]):
                raise PilotlightError(f"RDS instance {identifier} exists but is not a replica of {source_arn}; "
                                      "delete or rename it first", Exit.REFUSED)
            return self.wait_available(side, identifier)
        params: dict[str, Any] = {
            "DBInstanceIdentifier": identifier, "SourceDBInstanceIdentifier": source_arn,
            "KmsKeyId": self.contract.keys[side].arn, "SourceRegion": self.contract.regions[source_side],
            "DBInstanceClass": like["DBInstanceClass"], "MultiAZ": bool(like.get("MultiAZ")),
        }
        if like.get("DBSubnetGroup", {}).get("DBSubnetGroupName"):
            params["DBSubnetGroupName"] = like["DBSubnetGroup"]["DBSubnetGroupName"]
        groups = like.get("DBParameterGroups") or []
        if groups:
            params["DBParameterGroupName"] = groups[0]["DBParameterGroupName"]
        security = [g["VpcSecurityGroupId"] for g in like.get("VpcSecurityGroups") or []]
        if security:
            params["VpcSecurityGroupIds"] = security
        self.client(side).create_db_instance_read_replica(**params)
        return self.wait_available(side, identifier, replica=True)

    def stop(self, side: str, identifier: str) -> str:
        """StopDBInstance (nobody can write to a stopped instance); returns what RDS said."""
        try:
            self.client(side).stop_db_instance(DBInstanceIdentifier=identifier)
            return "stopping"
        except ClientError as exc:
            return f"not stopped ({exc.response['Error']['Code']}: {exc.response['Error']['Message']})"


def platform_for(contract: Contract) -> RdsPlatform:
    return RdsPlatform(contract)
