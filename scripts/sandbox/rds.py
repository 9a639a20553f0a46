"""The emulated RDS control plane: the RDS Query API answered on the sandbox's real PostgreSQL clusters.

moto's RDS keeps records but runs no database, so a promotion there changes nothing a client
could connect to. This module answers the RDS API the tools call, and carries each call out on
a real local cluster (``scripts.sandbox.postgres``):

=============================  ==========================================================================
DescribeDBInstances            status, endpoint (address in the sandbox zone, the cluster's port), KMS
                               key, subnet/parameter groups, ``ReadReplicaSourceDBInstanceIdentifier``
                               and ``ReadReplicaDBInstanceIdentifiers`` (ARNs across regions, as RDS)
PromoteReadReplica             ``modifying`` → ``pg_ctl promote`` → ``available``, no longer a replica
CreateDBInstanceReadReplica    ``creating`` → a new cluster, ``pg_basebackup -R`` from the source's
                               cluster (cross-region: source by ARN, ``KmsKeyId`` required) → ``available``;
                               an A record for its endpoint in the zone
DeleteDBInstance               ``deleting`` → cluster stopped and removed → DBInstanceNotFound
RebootDBInstance               ``rebooting`` → restart → ``available``
StopDBInstance/StartDBInstance ``stopping`` → ``stopped`` / ``starting`` → ``available`` (RDS refuses to
                               stop a replica or an instance with replicas; so does this)
RestoreDBInstanceToPoint...    ``creating`` → a NEW cluster recovered to ``RestoreTime`` from that region's copy of the
  InTime                       automated backups (:mod:`scripts.sandbox.pitr`: real WAL archive, base backups,
                               ``recovery_target_time``) → ``available``; the settings passed are recorded
CreateDBInstance               ``creating`` → a NEW empty cluster (initdb, the master user a superuser with a
                               generated password; ``ManageMasterUserPassword``: kept in Secrets Manager as RDS's
                               ``{username, password}`` secret, deleted with the instance) → ``available``; the
                               settings, key and tags passed are recorded; an A record for its endpoint
DescribeDBInstance...          the real restorable window of the source's automated backups held in the region
  AutomatedBackups             called (its own, or the replicated copy by ``DBInstanceAutomatedBackupsArn``)
ModifyDBInstance               ``DeletionProtection``, ``BackupRetentionPeriod``, ``DBParameterGroupName``
                               (``modifying`` → ``available``)
=============================  ==========================================================================

Requests reach it through the same per-region proxies as moto (``proxy.Proxy`` sends a connection
whose SigV4 scope is ``…/rds/aws4_request`` here), so a blocked region's RDS API is down too; the
region comes from that scope. Responses are serialized from botocore's own RDS model, so boto3
parses them and its waiters (``db_instance_available``, ``db_instance_deleted``) work unchanged.
Durations: each transition takes the real work plus ``Timing`` seconds (``fast`` adds nothing,
``aws`` adds AWS-like minutes). Anything else is answered ``InvalidAction`` naming this module:
an action is added to ``ACTIONS`` (a method, as below) when a tool needs it.

State lives in ``rds.json`` (instances, the clusters created for new ones, final snapshot names),
rewritten on every change so ``sandbox down`` stops every cluster this module started.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import boto3
import botocore.session

from scripts.aws import botocore_config
from scripts.sandbox import pitr, tls
from scripts.sandbox import postgres as pg
from scripts.sandbox.state import (EMULATOR_CREDENTIALS, RDS_STATE, ContractWatcher, SandboxState, free_port,
                                   load, read_json, write_json)

log = logging.getLogger("pilotlight.sandbox.rds")
XMLNS = "http://rds.amazonaws.com/doc/2014-10-31/"
_SCOPE = re.compile(rb"Credential=[^/\s]+/\d{8}/([a-z0-9-]+)/rds/aws4_request")
INTERNAL = ("Region", "cluster")


@dataclass(frozen=True)
class Timing:
    """Seconds added to each transition, on top of the real work on the cluster."""

    promote: float = 0.0
    create: float = 0.0
    delete: float = 0.0
    reboot: float = 0.0
    stop: float = 0.0
    start: float = 0.0
    modify: float = 0.0

    @classmethod
    def parse(cls, spec: str) -> "Timing":
        """``fast``, ``aws``, or ``KEY=SECONDS,...`` over fast (e.g. ``promote=60,create=300``)."""
        if spec == "fast":
            return cls()
        if spec == "aws":  # orders of magnitude RDS shows, not measurements
            return cls(promote=60, create=600, delete=120, reboot=60, stop=120, start=180, modify=30)
        values = {}
        for part in filter(None, spec.split(",")):
            key, _, seconds = part.partition("=")
            if key not in cls.__dataclass_fields__:
                raise ValueError(f"unknown RDS timing {key!r}; use fast, aws or "
                                 f"{'|'.join(cls.__dataclass_fields__)}=SECONDS,...")
            values[key] = float(seconds)
        return cls(**values)


class RdsError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.status = code, status


def not_found(ident: str) -> RdsError:
    return RdsError("DBInstanceNotFound", f"DBInstance {ident} not found.", 404)


class RdsEmulator:
    """Instances by identifier, their clusters, and an HTTP server answering the Query API."""

    def __init__(self, state_dir: Path, moto_url: str, watcher: ContractWatcher,
                 reachable: Callable[[str], bool], timing: Timing = Timing()):
        self.state_dir = state_dir
        self.timing = timing
        self._reachable = reachable
        self._watcher = watcher
        self._route53 = boto3.session.Session().client(
            "route53", region_name="us-east-1", endpoint_url=moto_url, config=botocore_config(),
            **EMULATOR_CREDENTIALS)
        self._moto_url = moto_url
        self._model = botocore.session.get_session().get_service_model("rds")
        self._lock = threading.RLock()
        saved = read_json(state_dir / RDS_STATE) or {}
        self.instances: dict[str, dict[str, Any]] = saved.get("instances", {})
        self.clusters: dict[str, dict[str, Any]] = saved.get("clusters", {})
        self.snapshots: list[dict[str, Any]] = saved.get("snapshots", [])
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    # --- the HTTP side -------------------------------------------------------------------------
    def start(self) -> None:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                match = _SCOPE.search(self.headers.get("Authorization", "").encode())
                status, xml = emulator.handle(match.group(1).decode() if match else "us-east-1",
                                              {k: v[0] for k, v in parse_qs(body.decode()).items()})
                data = xml.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug(fmt, *args)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="rds-api", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def handle(self, region: str, params: dict[str, str]) -> tuple[int, str]:
        action = params.get("Action", "")
        request_id = str(uuid.uuid4())
        try:
            method = ACTIONS.get(action)
            if method is None:
                raise RdsError("InvalidAction", f"{action or 'no action'} is not emulated by the sandbox "
                                                f"(scripts/sandbox/rds.py)")
            result = getattr(self, method)(region, params)
            return 200, self._response(action, result, request_id)
        except RdsError as exc:
            return exc.status, (f'<ErrorResponse xmlns="{XMLNS}"><Error><Type>Sender</Type><Code>{exc.code}</Code>'
                                f"<Message>{escape(str(exc))}</Message></Error><RequestId>{request_id}</RequestId>"
                                "</ErrorResponse>")
        except Exception as exc:  # noqa: BLE001 - an emulator bug is a 500 the client can see, not a hang
            log.exception("rds %s failed", action)
            return 500, (f'<ErrorResponse xmlns="{XMLNS}"><Error><Type>Receiver</Type><Code>InternalFailure</Code>'
                         f"<Message>{escape(type(exc).__name__)}</Message></Error>"
                         f"<RequestId>{request_id}</RequestId></ErrorResponse>")

    def _response(self, action: str, result: dict[str, Any], request_id: str) -> str:
        shape = self._model.operation_model(action).output_shape
        wrapper = shape.serialization.get("resultWrapper", f"{action}Result")
        return (f'<{action}Response xmlns="{XMLNS}"><{wrapper}>{_xml(shape, result)}</{wrapper}>'
                f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>")

    # --- registration (sandbox up) ---------------------------------------------------------------
    def register(self, instances: list[dict[str, Any]]) -> None:
        """The stack's instances as the program declares them, on clusters `up` already started."""
        with self._lock:
            for inst in instances:
                self.instances[inst["DBInstanceIdentifier"]] = {
                    "DBInstanceStatus": "available", "Engine": "postgres", "EngineVersion": "15",
                    "InstanceCreateTime": _now(), "DbiResourceId": f"db-{uuid.uuid4().hex[:26].upper()}",
                    "ReadReplicaDBInstanceIdentifiers": [], "StorageEncrypted": True, **inst}
            self._save()

    # --- actions -------------------------------------------------------------------------------
    def describe(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        ident = params.get("DBInstanceIdentifier")
        with self._lock:
            if ident:
                return {"DBInstances": [self._public(self._get(region, ident))]}
            return {"DBInstances": [self._public(i) for i in self.instances.values() if i["Region"] == region]}

    def promote(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            inst = self._get(region, params.get("DBInstanceIdentifier", ""))
            if not inst.get("ReadReplicaSourceDBInstanceIdentifier"):
                raise RdsError("InvalidDBInstanceState", f"DB Instance {inst['DBInstanceIdentifier']} is not a read "
                                                         "replica.")
            self._require(inst, "available")
            if "BackupRetentionPeriod" in params:
                inst["BackupRetentionPeriod"] = int(params["BackupRetentionPeriod"])
            inst["DBInstanceStatus"] = "modifying"
            self._save()

        def work() -> None:
            pg.run(self._pg(), ["pg_ctl", "-D", self.clusters_all()[inst["cluster"]]["dataDir"], "-w", "-t", "60",
                                "promote"], timeout=70)
            with self._lock:
                self._detach(inst)
        return {"DBInstance": self._transition(inst, work, self.timing.promote)}

    def create_replica(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        ident = params.get("DBInstanceIdentifier", "")
        with self._lock:
            if ident in self.instances:
                raise RdsError("DBInstanceAlreadyExists", "DB instance already exists")
            source = self._find(params.get("SourceDBInstanceIdentifier", ""), region)
            self._require(source, "available")
            cross = source["Region"] != region
            if cross and source.get("StorageEncrypted") and not params.get("KmsKeyId"):
                raise RdsError("InvalidParameterCombination", "Cross-region read replicas of an encrypted source "
                                                              "need KmsKeyId (a key of the destination region).")
            if not self._reachable(source["Region"]):
                raise RdsError("InvalidParameterValue", f"source region {source['Region']} is unreachable")
            contract = self._watcher.get()
            key = ident
            self.clusters[key] = {"port": free_port(), "dataDir": str(self._pgroot() / key)}
            arn = source["DBInstanceArn"].split(":")
            arn[3], arn[6] = region, ident
            inst = {
                "DBInstanceIdentifier": ident, "Region": region, "cluster": key,
                "DBInstanceArn": ":".join(arn),
                "DBInstanceClass": params.get("DBInstanceClass", source.get("DBInstanceClass", "db.t3.micro")),
                "Endpoint": {"Address": f"{ident}.{region}.{contract.zone_name if contract else 'sandbox'}",
                             "Port": self.clusters[key]["port"]},
                "KmsKeyId": params.get("KmsKeyId", source.get("KmsKeyId")),
                "DBSubnetGroup": {"DBSubnetGroupName": params.get("DBSubnetGroupName", "default")},
                "DBParameterGroups": [{"DBParameterGroupName": params.get("DBParameterGroupName", "default.postgres15"),
                                       "ParameterApplyStatus": "in-sync"}],
                "MultiAZ": params.get("MultiAZ", "false") == "true",
                "DeletionProtection": params.get("DeletionProtection", "false") == "true",
                "BackupRetentionPeriod": 0,
                "ReadReplicaSourceDBInstanceIdentifier": source["DBInstanceArn"] if cross
                else source["DBInstanceIdentifier"],
            }
            self.register([inst])
            inst = self.instances[ident]
            inst["DBInstanceStatus"] = "creating"
            source["ReadReplicaDBInstanceIdentifiers"].append(inst["DBInstanceArn"] if cross else ident)
            self._save()

        def work() -> None:
            state = self._pg()
            pg.basebackup(state, key, source["cluster"])
            pg.start(state, key)
            self._endpoint_record(inst["Endpoint"]["Address"])
        return {"DBInstance": self._transition(inst, work, self.timing.create)}

    def create_instance(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        ident = params.get("DBInstanceIdentifier", "")
        with self._lock:
            if ident in self.instances:
                raise RdsError("DBInstanceAlreadyExists", "DB instance already exists")
            for required in ("DBInstanceClass", "Engine", "MasterUsername", "AllocatedStorage"):
                if not params.get(required):
                    raise RdsError("InvalidParameterValue", f"{required} is required.")
            if params["Engine"] != "postgres":
                raise RdsError("InvalidParameterValue", f"the sandbox runs PostgreSQL only, not {params['Engine']}")
            managed = params.get("ManageMasterUserPassword") == "true"
            if managed == bool(params.get("MasterUserPassword")):
                raise RdsError("InvalidParameterCombination", "give exactly one of MasterUserPassword and "
                                                              "ManageMasterUserPassword")
            if params.get("KmsKeyId") and params.get("StorageEncrypted") != "true":
                raise RdsError("InvalidParameterCombination", "KmsKeyId needs StorageEncrypted.")
            contract = self._watcher.get()
            key = ident
            self.clusters[key] = {"port": free_port(), "dataDir": str(self._pgroot() / key)}
            account = contract.databases[0].primary.arn.split(":")[4] if contract else "000000000000"
            password = params.get("MasterUserPassword") or secrets.token_urlsafe(24)
            master_secret = None
            if managed:
                arn = self._secrets(region).create_secret(
                    Name=f"rds!db-{uuid.uuid4()}", SecretString=json.dumps(
                        {"username": params["MasterUsername"], "password": password}))["ARN"]
                master_secret = {"SecretArn": arn, "SecretStatus": "active",
                                 "KmsKeyId": params.get("MasterUserSecretKmsKeyId", "aws/secretsmanager")}
            inst = {
                "DBInstanceIdentifier": ident, "Region": region, "cluster": key,
                "DBInstanceArn": f"arn:aws:rds:{region}:{account}:db:{ident}",
                "DBInstanceClass": params["DBInstanceClass"], "EngineVersion": params.get("EngineVersion", "15"),
                "Endpoint": {"Address": f"{ident}.{region}.{contract.zone_name if contract else 'sandbox'}",
                             "Port": self.clusters[key]["port"]},
                "MasterUsername": params["MasterUsername"], "AllocatedStorage": int(params["AllocatedStorage"]),
                "StorageType": params.get("StorageType", "gp2"),
                "StorageEncrypted": params.get("StorageEncrypted") == "true", "KmsKeyId": params.get("KmsKeyId"),
                "IAMDatabaseAuthenticationEnabled": params.get("EnableIAMDatabaseAuthentication") == "true",
                **_settings_passed(params),
                "BackupRetentionPeriod": int(params.get("BackupRetentionPeriod", 1)),
                **({"MasterUserSecret": master_secret} if master_secret else {}),
            }
            self.register([inst])
            inst = self.instances[ident]
            inst["DBInstanceStatus"] = "creating"
            self._save()

        def work() -> None:
            state = self._pg()
            # the certificate `up` made (tls.write under <state>/tls and <pgroot>/tls) names *.<region>.<zone>
            pg.init_instance(state, key, params["MasterUsername"], password,
                             tls.files(self.state_dir / "tls", state.pgroot / "tls"))
            pg.start(state, key)
            self._endpoint_record(inst["Endpoint"]["Address"])
        return {"DBInstance": self._transition(inst, work, self.timing.create)}

    def _secrets(self, region: str):
        return boto3.session.Session().client("secretsmanager", region_name=region, endpoint_url=self._moto_url,
                                              config=botocore_config(), **EMULATOR_CREDENTIALS)

    def delete(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            inst = self._get(region, params.get("DBInstanceIdentifier", ""))
            if inst.get("DeletionProtection"):
                raise RdsError("InvalidParameterCombination", "Cannot delete protected DB Instance, please disable "
                                                              "deletion protection and try again.")
            skip = params.get("SkipFinalSnapshot", "false") == "true"
            if not skip and not params.get("FinalDBSnapshotIdentifier"):
                raise RdsError("InvalidParameterCombination",
                               "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.")
            if inst["DBInstanceStatus"] == "deleting":
                raise RdsError("InvalidDBInstanceState", "Instance is already being deleted.")
            inst["DBInstanceStatus"] = "deleting"
            self._save()

        def work() -> None:
            state = self._pg()
            if not skip:  # the final snapshot: a copy of the data directory, kept under the state dir
                pg.stop(state, inst["cluster"])
                target = self.state_dir / "snapshots" / params["FinalDBSnapshotIdentifier"]
                shutil.copytree(state.data_dir(inst["cluster"]), target, dirs_exist_ok=True)
                self.snapshots.append({"DBSnapshotIdentifier": params["FinalDBSnapshotIdentifier"],
                                       "DBInstanceIdentifier": inst["DBInstanceIdentifier"], "path": str(target)})
            pg.stop(state, inst["cluster"], mode="immediate")
            with self._lock:
                for other in list(self.instances.values()):  # RDS promotes the replicas of a deleted source
                    if other.get("ReadReplicaSourceDBInstanceIdentifier") in (inst["DBInstanceArn"],
                                                                               inst["DBInstanceIdentifier"]):
                        pg.run(state, ["pg_ctl", "-D", str(state.data_dir(other["cluster"])), "-w", "promote"],
                               check=False)
                        self._detach(other)
                self._detach(inst)
                self.instances.pop(inst["DBInstanceIdentifier"], None)
                if inst.get("MasterUserSecret"):  # RDS deletes the secret it manages with the instance
                    self._secrets(inst["Region"]).delete_secret(SecretId=inst["MasterUserSecret"]["SecretArn"],
                                                                ForceDeleteWithoutRecovery=True)
                if inst["cluster"] in self.clusters:
                    shutil.rmtree(self.clusters.pop(inst["cluster"])["dataDir"], ignore_errors=True)
                self._save()
        return {"DBInstance": self._transition(inst, work, self.timing.delete, final=None)}

    def reboot(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        inst = self._begin(region, params, "rebooting")

        def work() -> None:
            state = self._pg()
            pg.stop(state, inst["cluster"])
            pg.start(state, inst["cluster"])
        return {"DBInstance": self._transition(inst, work, self.timing.reboot)}

    def stop_instance(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            inst = self._get(region, params.get("DBInstanceIdentifier", ""))
            if inst.get("ReadReplicaSourceDBInstanceIdentifier") or inst["ReadReplicaDBInstanceIdentifiers"]:
                raise RdsError("InvalidDBInstanceState", "You can't stop a DB instance that has a read replica, "
                                                         "or that is a read replica.")
        inst = self._begin(region, params, "stopping")
        return {"DBInstance": self._transition(inst, lambda: pg.stop(self._pg(), inst["cluster"]), self.timing.stop,
                                               final="stopped")}

    def start_instance(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        inst = self._begin(region, params, "starting", want="stopped")
        return {"DBInstance": self._transition(inst, lambda: pg.start(self._pg(), inst["cluster"]), self.timing.start)}

    def modify(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        inst = self._begin(region, params, "modifying")
        with self._lock:
            if "DeletionProtection" in params:
                inst["DeletionProtection"] = params["DeletionProtection"] == "true"
            if "BackupRetentionPeriod" in params:
                inst["BackupRetentionPeriod"] = int(params["BackupRetentionPeriod"])
            if "DBParameterGroupName" in params:
                inst["DBParameterGroups"] = [{"DBParameterGroupName": params["DBParameterGroupName"],
                                              "ParameterApplyStatus": "pending-reboot"}]
        return {"DBInstance": self._transition(inst, lambda: None, self.timing.modify)}

    # --- point-in-time restore (scripts.sandbox.pitr: real WAL archive, base backups, recovery) -------
    def _backup_source(self, region: str, params: dict[str, str]) -> tuple[dict[str, Any], str]:
        """(source instance, region whose copy of its automated backups is used) for a PITR call."""
        arn = params.get("SourceDBInstanceAutomatedBackupsArn") or params.get("DBInstanceAutomatedBackupsArn")
        if arn:
            contract = self._watcher.get()
            for db in (contract.databases if contract else ()):
                target = db.restore.get("dr")
                if target and target.automated_backups_arn == arn and arn.split(":")[3] == region:
                    return self._find(db.primary.identifier, db.primary.arn.split(":")[3]), region
                if arn == _own_backups_arn(db.primary.arn) and arn.split(":")[3] == region:
                    return self._find(db.primary.identifier, region), region
            raise RdsError("DBInstanceAutomatedBackupNotFound", f"automated backup {arn} not found.", 404)
        ident = params.get("SourceDBInstanceIdentifier") or params.get("DBInstanceIdentifier", "")
        return self._get(region, ident), region

    def describe_automated_backups(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            if not (params.get("DBInstanceIdentifier") or params.get("DBInstanceAutomatedBackupsArn")):
                raise RdsError("InvalidParameterCombination", "the sandbox answers DescribeDBInstanceAutomatedBackups "
                                                              "for one instance or ARN")
            source, where = self._backup_source(region, params)
        found = pitr.window(self._pg(), where, source["cluster"])
        if found is None:
            return {"DBInstanceAutomatedBackups": []}
        contract = self._watcher.get()
        own = where == source["Region"]
        arn = _own_backups_arn(source["DBInstanceArn"]) if own else next(
            (db.restore["dr"].automated_backups_arn for db in (contract.databases if contract else ())
             if db.primary.identifier == source["DBInstanceIdentifier"] and "dr" in db.restore), "")
        return {"DBInstanceAutomatedBackups": [{
            "DBInstanceArn": source["DBInstanceArn"], "DbiResourceId": source["DbiResourceId"],
            "Region": source["Region"], "DBInstanceIdentifier": source["DBInstanceIdentifier"],
            "DBInstanceAutomatedBackupsArn": arn, "Status": "active" if own else "replicating",
            "RestoreWindow": {"EarliestTime": pitr.iso(found.earliest), "LatestTime": pitr.iso(found.latest)},
            "BackupRetentionPeriod": pitr.settings(self._pg()).retention_days, "Engine": "postgres",
            "Encrypted": True, "KmsKeyId": self._backup_key(source, where)}]}

    def _backup_key(self, source: dict[str, Any], where: str) -> str | None:
        """The source's own key in its region; in the other region the key the replication encrypts with."""
        if where == source["Region"]:
            return source.get("KmsKeyId")
        contract = self._watcher.get()
        for db in (contract.databases if contract else ()):
            if db.primary.identifier == source["DBInstanceIdentifier"] and "dr" in db.restore:
                return db.restore["dr"].kms_key_id
        return None

    def restore_to_time(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        ident = params.get("TargetDBInstanceIdentifier", "")
        with self._lock:
            if ident in self.instances:
                raise RdsError("DBInstanceAlreadyExists", "DB instance already exists")
            source, where = self._backup_source(region, params)
            latest = params.get("UseLatestRestorableTime") == "true"
            if latest == bool(params.get("RestoreTime")):
                raise RdsError("InvalidParameterCombination", "give exactly one of RestoreTime and UseLatestRestorableTime")
            target = None if latest else datetime.fromisoformat(params["RestoreTime"].replace("Z", "+00:00"))
            try:
                pitr.check_target(self._pg(), where, source["cluster"], target)
            except pitr.PitrError as exc:
                raise RdsError("InvalidRestoreFault", str(exc)) from None
            contract = self._watcher.get()
            key = ident
            self.clusters[key] = {"port": free_port(), "dataDir": str(self._pgroot() / key)}
            arn = source["DBInstanceArn"].split(":")
            arn[3], arn[6] = region, ident
            inst = {
                "DBInstanceIdentifier": ident, "Region": region, "cluster": key, "DBInstanceArn": ":".join(arn),
                "DBInstanceClass": params.get("DBInstanceClass", source.get("DBInstanceClass")),
                "Endpoint": {"Address": f"{ident}.{region}.{contract.zone_name if contract else 'sandbox'}",
                             "Port": self.clusters[key]["port"]},
                "KmsKeyId": self._backup_key(source, where),
                **_settings_passed(params),
                "BackupRetentionPeriod": source.get("BackupRetentionPeriod", 7),
            }
            self.register([inst])
            inst = self.instances[ident]
            inst["DBInstanceStatus"] = "creating"
            self._save()

        def work() -> None:
            state = self._pg()
            # archive_mode is off on a restored cluster (as the sandbox keeps no backups of it)
            pitr.recover(state, where, source["cluster"], Path(self.clusters[key]["dataDir"]),
                         self.clusters[key]["port"], target)
            self._endpoint_record(inst["Endpoint"]["Address"])
        return {"DBInstance": self._transition(inst, work, self.timing.create)}

    # --- helpers -------------------------------------------------------------------------------
    def clusters_all(self) -> dict[str, dict[str, Any]]:
        return self._pg().clusters

    def _pg(self) -> SandboxState:
        return load(self.state_dir)

    def _pgroot(self) -> Path:
        return self._pg().pgroot

    def _get(self, region: str, ident: str) -> dict[str, Any]:
        inst = self._find(ident, region)
        if inst["Region"] != region:
            raise not_found(ident)
        return inst

    def _find(self, ident: str, region: str) -> dict[str, Any]:
        """By identifier in ``region``, or by ARN anywhere (cross-region sources are named by ARN)."""
        for inst in self.instances.values():
            if ident == inst["DBInstanceArn"] or (ident == inst["DBInstanceIdentifier"] and inst["Region"] == region):
                return inst
        raise not_found(ident)

    def _require(self, inst: dict[str, Any], status: str) -> None:
        if inst["DBInstanceStatus"] != status:
            raise RdsError("InvalidDBInstanceState", f"DB instance {inst['DBInstanceIdentifier']} is "
                                                     f"{inst['DBInstanceStatus']}, not {status}.")

    def _begin(self, region: str, params: dict[str, str], status: str, want: str = "available") -> dict[str, Any]:
        with self._lock:
            inst = self._get(region, params.get("DBInstanceIdentifier", ""))
            self._require(inst, want)
            inst["DBInstanceStatus"] = status
            self._save()
            return inst

    def _detach(self, inst: dict[str, Any]) -> None:
        """``inst`` is no longer a replica (promoted, or its source is gone)."""
        source = inst.pop("ReadReplicaSourceDBInstanceIdentifier", None)
        for other in self.instances.values():
            if source in (other["DBInstanceArn"], other["DBInstanceIdentifier"]):
                other["ReadReplicaDBInstanceIdentifiers"] = [
                    r for r in other["ReadReplicaDBInstanceIdentifiers"]
                    if r not in (inst["DBInstanceArn"], inst["DBInstanceIdentifier"])]

    def _transition(self, inst: dict[str, Any], work: Callable[[], None], extra: float,
                    final: str | None = "available") -> dict[str, Any]:
        """Answer now with the in-between status; do the work and the wait in the background."""
        shown = self._public(inst)

        def run() -> None:
            try:
                time.sleep(extra)
                work()
                with self._lock:
                    if final is not None:
                        inst["DBInstanceStatus"] = final
                    self._save()
            except Exception as exc:  # noqa: BLE001 - RDS shows a failed instance, it does not crash
                log.exception("rds transition of %s failed", inst["DBInstanceIdentifier"])
                with self._lock:
                    inst["DBInstanceStatus"] = "failed"
                    inst["StatusInfos"] = [{"StatusType": "read replication", "Status": "error",
                                            "Normal": False, "Message": str(exc)[:200]}]
                    self._save()
        threading.Thread(target=run, name=f"rds-{inst['DBInstanceIdentifier']}", daemon=True).start()
        return shown

    def _endpoint_record(self, host: str) -> None:
        contract = self._watcher.get()
        if contract is None:
            return
        self._route53.change_resource_record_sets(HostedZoneId=contract.zone_id, ChangeBatch={"Changes": [{
            "Action": "UPSERT", "ResourceRecordSet": {"Name": host, "Type": "A", "TTL": 60,
                                                      "ResourceRecords": [{"Value": "127.0.0.1"}]}}]})

    def _public(self, inst: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in inst.items() if k not in INTERNAL}

    def _save(self) -> None:
        write_json(self.state_dir / RDS_STATE, {"instances": self.instances, "clusters": self.clusters,
                                                "snapshots": self.snapshots})


ACTIONS = {
    "RestoreDBInstanceToPointInTime": "restore_to_time",
    "DescribeDBInstanceAutomatedBackups": "describe_automated_backups",
    "DescribeDBInstances": "describe",
    "PromoteReadReplica": "promote",
    "CreateDBInstanceReadReplica": "create_replica",
    "CreateDBInstance": "create_instance",
    "DeleteDBInstance": "delete",
    "RebootDBInstance": "reboot",
    "StopDBInstance": "stop_instance",
    "StartDBInstance": "start_instance",
    "ModifyDBInstance": "modify",
}


def _settings_passed(params: dict[str, str]) -> dict[str, Any]:
    """What a new instance records of the request (CreateDBInstance, RestoreDBInstanceToPointInTime), as RDS shows it."""
    return {
        "DBSubnetGroup": {"DBSubnetGroupName": params.get("DBSubnetGroupName", "default")},
        "VpcSecurityGroups": [{"VpcSecurityGroupId": g, "Status": "active"}
                              for g in _members(params, "VpcSecurityGroupIds.VpcSecurityGroupId")],
        "DBParameterGroups": [{"DBParameterGroupName": params.get("DBParameterGroupName", "default.postgres15"),
                               "ParameterApplyStatus": "in-sync"}],
        "MultiAZ": params.get("MultiAZ", "false") == "true",
        "PubliclyAccessible": params.get("PubliclyAccessible", "false") == "true",
        "DeletionProtection": params.get("DeletionProtection", "false") == "true",
        "TagList": [{"Key": params[f"Tags.Tag.{n}.Key"], "Value": params.get(f"Tags.Tag.{n}.Value", "")}
                    for n in range(1, 51) if f"Tags.Tag.{n}.Key" in params],
    }


def _members(params: dict[str, str], prefix: str) -> list[str]:
    """A Query-protocol list (``Prefix.1``, ``Prefix.2``, ...) in order."""
    return [params[f"{prefix}.{n}"] for n in range(1, 101) if f"{prefix}.{n}" in params]


def _own_backups_arn(instance_arn: str) -> str:
    """The ARN of an instance's automated backups in its own region (``ab-`` + a stable id)."""
    parts = instance_arn.split(":")
    digest = hashlib.sha256(f"own:{instance_arn}".encode()).hexdigest()[:26]
    return ":".join([*parts[:5], "auto-backup", f"ab-{digest}"])


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _xml(shape, value: Any) -> str:
    """``value`` as the Query protocol's XML for ``shape`` (botocore's model: member and list names)."""
    kind = shape.type_name
    if kind == "structure":
        out = []
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                tag = member.serialization.get("name", name)
                out.append(f"<{tag}>{_xml(member, value[name])}</{tag}>")
        return "".join(out)
    if kind == "list":
        tag = shape.member.serialization.get("name", "member")
        return "".join(f"<{tag}>{_xml(shape.member, v)}</{tag}>" for v in value)
    if kind == "boolean":
        return "true" if value else "false"
    return escape(str(value))
