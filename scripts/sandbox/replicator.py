"""Emulated S3 cross-region replication - the ONE place the sandbox stands in for S3 CRR.

moto stores a bucket's replication configuration but copies nothing. This thread does what
S3 would, from the rules stored in moto (``get_bucket_replication`` on the primary bucket):

- every ``POLL_SECONDS`` it lists the primary bucket's current keys (``ListObjectsV2``) and
  compares each key's (ETag, LastModified, Size) with the previous listing; a new key's latest
  version or a vanished key's delete marker is found with ``HeadObject``, and each new one is
  copied, oldest first, to the rule's destination bucket (highest ``Priority`` wins when several
  enabled rules match the key's prefix);
- the full version listing (``ListObjectVersions``) is read only on the first pass after a
  start, and when a key that already existed changed (a new version may hide others made between two
  polls); a copy that failed is retried from the item it was, with a back-off, without listing
  anything again (a full listing per retry made every pass slower the fuller the bucket, the more so
  under load, when copies time out: replication lagged minutes). moto 5.2.5 deep-copies EVERY version of the bucket
  (body included, spooled to a temporary file) on each ``ListObjectVersions``, whatever the
  ``Prefix``; called every poll it filled the disk with deleted-but-open temporary files;
- object versions keep their body, user metadata, content type and Object Lock retention
  (mode, retain-until date, legal hold) and are re-encrypted with SSE-KMS under the rule's
  ``ReplicaKmsKeyID`` (the DR replica key); the storage class follows the rule;
- delete markers are replicated only when the rule's ``DeleteMarkerReplication`` is Enabled;
  deleting a specific version is never replicated (as on S3).

While DR serves (the contract's ``active`` is ``dr``) the sandbox does what ``pulumi up`` does for
that state: it puts the reverse rule (``rules.replication_configurations``: DR -> primary, the
primary key) on the DR bucket, and removes it once primary is active again; the DR bucket is then a
source too, polled the same way. A replica is never replicated again (as on S3): each copy's new
version is remembered as a replica, so a backup written to the DR vault goes to primary once and
does not come back.

It reads the source bucket straight from moto - replication is AWS-internal, not a client
call - but it pauses while either region's proxy is not passing traffic, as replication
between two regions stops when one is unreachable; it catches up afterwards.

Limits (documented in docs/sandbox.md): the replica gets a new version id (moto cannot set
one), no ``x-amz-replication-status`` headers (PENDING/COMPLETED/REPLICA) are set, multipart
checksums are recomputed by the copy, replication time (RTC) metrics are not emulated, and
objects that already existed when the rules were applied are copied too (S3 would need Batch
Replication for those; the sandbox buckets start empty, so it does not matter). Between two full
listings, only the latest version of a key created and rewritten within one poll is copied, and a
key rewritten with identical bytes in the same second or deleted again while already deleted shows
no change in the key listing, so that version or delete marker is not copied (vault keys are
written once each).
What has been copied is remembered in ``replicator.json`` in the state dir so a daemon restart does not copy twice.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

import boto3
from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from components import rules as vault_rules
from scripts.aws import botocore_config
from scripts.sandbox.state import EMULATOR_CREDENTIALS
from scripts.contract import Contract
from scripts.sandbox.state import REPLICATION, ContractWatcher, write_json

log = logging.getLogger("pilotlight.sandbox.replicator")
POLL_SECONDS = 0.5
REPLICA = "replica"
MAX_ATTEMPTS = 5
RETRY_SECONDS = 1.0  # first back-off after a failed copy; doubles per attempt
_HEAD_TO_PUT = {
    "Metadata": "Metadata",
    "ContentType": "ContentType",
    "ContentEncoding": "ContentEncoding",
    "CacheControl": "CacheControl",
    "ContentDisposition": "ContentDisposition",
    "ObjectLockMode": "ObjectLockMode",
    "ObjectLockRetainUntilDate": "ObjectLockRetainUntilDate",
    "ObjectLockLegalHoldStatus": "ObjectLockLegalHoldStatus",
}


class Replicator:
    """A thread replicating the primary vault bucket into the DR one per the stored rules."""

    def __init__(self, moto_url: str, watcher: ContractWatcher, paused: Callable[[], bool]):
        self._moto_url = moto_url
        self._watcher = watcher
        self._paused = paused
        self._journal = watcher.path.parent / "replicator.json"
        self._applied = watcher.path.parent / REPLICATION
        self._done: dict[str, str] = _read_journal(self._journal)
        self._attempts: dict[str, dict[str, int]] = {"primary": {}, "dr": {}}
        # per source side: token -> (the version or delete marker to copy again, not before this time)
        self._retry: dict[str, dict[str, tuple[dict[str, Any], float]]] = {"primary": {}, "dr": {}}
        # per source side: key -> (ETag, LastModified, Size) when last replicated
        self._seen: dict[str, dict[str, tuple] | None] = {"primary": None, "dr": None}
        self._active: str | None = None  # the state whose rules were last applied
        self._clean_since: float | None = None  # start of the last pass that left nothing to copy
        self._stats = {"replicated": 0, "deleteMarkers": 0, "skipped": 0, "failed": 0, "lastError": None,
                       "lastPass": None, "paused": False}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replicator", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def snapshot(self) -> dict[str, Any]:
        return dict(self._stats, pending=sum(map(len, self._attempts.values())), paused=self._paused(),
                    alive=self._thread.is_alive())

    def _client(self, region: str):
        return boto3.session.Session().client("s3", region_name=region, endpoint_url=self._moto_url,
                                              config=botocore_config(), **EMULATOR_CREDENTIALS)

    def settled(self, since: float) -> bool:
        """Whether a pass that began at or after ``since`` (``time.time()``) left nothing to copy."""
        return self._clean_since is not None and self._clean_since >= since

    def _run(self) -> None:
        clients: dict[str, Any] = {}
        while not self._stop.wait(POLL_SECONDS):
            began = time.time()
            contract = self._watcher.get()
            self._stats["paused"] = self._paused()
            if contract is None or self._stats["paused"]:
                continue
            try:
                for side in ("primary", "dr"):
                    if side not in clients:
                        clients[side] = self._client(contract.regions[side])
                self._follow_active(contract, clients)
                self._pass(contract, clients["primary"], clients["dr"])
                if contract.active == "dr":
                    self._pass(contract, clients["dr"], clients["primary"], side="dr")
                self._stats["lastPass"] = time.time()
                if not any(self._attempts.values()) and not self._paused():
                    self._clean_since = began
            except (BotoCoreError, ClientError) as exc:
                self._stats["lastError"] = str(exc)
                log.warning("replicator: %s", exc)
            except Exception as exc:  # noqa: BLE001 - a thread that dies stops replication for good, silently
                self._stats["lastError"] = f"{type(exc).__name__}: {exc}"
                log.exception("replicator: pass failed; the next poll tries again")

    def _follow_active(self, contract: Contract, clients: dict[str, Any]) -> None:
        """The DR bucket's rule for the recorded active side, as ``pulumi up`` would leave it."""
        if self._active == contract.active:
            return
        dr_bucket = contract.buckets["dr"].bucket
        if contract.active == "dr":
            role = clients["primary"].get_bucket_replication(
                Bucket=contract.buckets["primary"].bucket)["ReplicationConfiguration"]["Role"]
            config = vault_rules.replication_configurations(
                "dr", role, {s: contract.buckets[s].arn for s in ("primary", "dr")},
                {s: contract.keys[s].arn for s in ("primary", "dr")})["dr"]
            clients["dr"].put_bucket_replication(Bucket=dr_bucket, ReplicationConfiguration=config)
            log.info("active: dr; %s replicates back to %s", dr_bucket, contract.buckets["primary"].bucket)
        elif self._active is not None or _has_rules(clients["dr"], dr_bucket):
            clients["dr"].delete_bucket_replication(Bucket=dr_bucket)
        self._active = contract.active

    def _pass(self, contract: Contract, src, dst, side: str = "primary") -> None:
        bucket = contract.buckets[side].bucket
        try:
            rules = src.get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"]["Rules"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ReplicationConfigurationNotFoundError":
                return
            raise
        rules = sorted((r for r in _complete(rules, self._applied) if r.get("Status") == "Enabled"),
                       key=lambda r: -int(r.get("Priority", 0)))
        listing = _listing(src, bucket)
        attempts = self._attempts[side]
        items = self._changes(src, bucket, listing, side)
        if items is None:
            return
        changed, complete = False, True
        for item in items:
            version = f"{bucket}\0{item['Key']}\0{item['VersionId']}"  # how a replica is remembered
            token = f"{item['Key']}\0{item['VersionId']}" if side == "primary" else version
            if token in self._done or self._done.get(version) == REPLICA:
                continue
            if self._stop.is_set() or self._paused():
                complete = False
                continue
            rule = next((r for r in rules if item["Key"].startswith(_prefix(r))), None)
            retry = self._retry[side]
            if token in retry and retry[token][1] > time.monotonic():
                complete = False
                continue
            try:
                outcome = self._copy(src, dst, bucket, item, rule)
            except (BotoCoreError, ClientError, Boto3Error) as exc:
                attempts[token] = attempts.get(token, 0) + 1
                self._stats["lastError"] = f"{item['Key']}: {exc}"
                if attempts[token] < MAX_ATTEMPTS:
                    retry[token] = (item, time.monotonic() + RETRY_SECONDS * 2 ** (attempts[token] - 1))
                    complete = False
                    continue
                log.error("replicator: giving up on %s version %s: %s", item["Key"], item["VersionId"], exc)
                outcome = "failed"
            attempts.pop(token, None)
            retry.pop(token, None)
            self._done[token] = outcome
            self._stats[outcome] += 1
            changed = True
        if changed:
            write_json(self._journal, self._done)
        if complete:
            self._seen[side] = listing

    def _changes(self, src, bucket: str, listing: dict[str, tuple], side: str) -> list[dict[str, Any]] | None:
        """The versions and delete markers to look at this pass; None when the listing shows no change."""
        seen = self._seen[side]
        if seen is None:
            return _versions(src, bucket)
        retries = [item for item, _ in self._retry[side].values()]
        fresh = [key for key, mark in listing.items() if seen.get(key) != mark]
        gone = [key for key in seen if key not in listing]
        if not fresh and not gone:
            return retries or None
        if any(key in seen for key in fresh):
            return _versions(src, bucket)
        versions = [v for v in (_latest(src, bucket, key) for key in fresh) if v]
        if any(v["deleteMarker"] for v in versions):  # deleted since the listing: its version needs copying too
            return _versions(src, bucket)
        versions.sort(key=lambda v: v["LastModified"])
        return retries + versions + list(filter(None, (_latest(src, bucket, key) for key in gone)))

    def _copy(self, src, dst, bucket: str, item: dict[str, Any], rule: dict[str, Any] | None) -> str:
        if rule is None:
            return "skipped"
        dest = rule["Destination"]["Bucket"].rsplit(":", 1)[-1]
        if item["deleteMarker"]:
            if rule.get("DeleteMarkerReplication", {}).get("Status") != "Enabled":
                return "skipped"
            dst.delete_object(Bucket=dest, Key=item["Key"])
            log.info("replicated delete marker %s -> %s", item["Key"], dest)
            return "deleteMarkers"
        head = src.head_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])
        extra = {put: head[h] for h, put in _HEAD_TO_PUT.items() if head.get(h)}
        replica_key = rule["Destination"].get("EncryptionConfiguration", {}).get("ReplicaKmsKeyID")
        if replica_key:
            extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=replica_key)
        if rule["Destination"].get("StorageClass"):
            extra["StorageClass"] = rule["Destination"]["StorageClass"]
        body = src.get_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])["Body"]
        try:
            dst.upload_fileobj(body, dest, item["Key"], ExtraArgs=extra)
        finally:
            body.close()
        # The replica's version: never replicated again (vault keys are written once, so it is the latest).
        replica = dst.head_object(Bucket=dest, Key=item["Key"])["VersionId"]
        self._done[f"{dest}\0{item['Key']}\0{replica}"] = REPLICA
        log.info("replicated %s (%s) -> %s", item["Key"], item["VersionId"], dest)
        return "replicated"


def _has_rules(s3, bucket: str) -> bool:
    try:
        s3.get_bucket_replication(Bucket=bucket)
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ReplicationConfigurationNotFoundError":
            return False
        raise


def _prefix(rule: dict[str, Any]) -> str:
    flt = rule.get("Filter") or {}
    return flt.get("Prefix") or flt.get("And", {}).get("Prefix") or rule.get("Prefix") or ""


def _complete(rules: list[dict[str, Any]], applied_path: Path) -> list[dict[str, Any]]:
    """moto 5.2.5's GetBucketReplication answers every rule with ``Filter: {Prefix: ""}`` and
    ``DeleteMarkerReplication: Disabled`` whatever was put; take those two from the configuration
    `sandbox up` applied (``replication.json``), matched by rule ID. Status, priority and destination
    still come from moto."""
    try:
        applied = {r["ID"]: r for r in json.loads(applied_path.read_text())["Rules"]}
    except (OSError, KeyError, json.JSONDecodeError):
        return rules
    out = []
    for rule in rules:
        known = applied.get(rule.get("ID"), {})
        out.append({**rule, **{k: known[k] for k in ("Filter", "DeleteMarkerReplication") if k in known}})
    return out


def _listing(s3, bucket: str) -> dict[str, tuple]:
    """Each current key's (ETag, LastModified, Size): a new version changes it, a delete marker drops the key.

    moto answers ``ListObjectsV2`` from its key index without copying any body."""
    return {o["Key"]: (o["ETag"], o["LastModified"], o["Size"])
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])}


def _latest(s3, bucket: str, key: str) -> dict[str, Any] | None:
    """The key's current version, or its delete marker; None if it has neither (its only version was deleted)."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
        return {"Key": key, "VersionId": head["VersionId"], "LastModified": head["LastModified"], "deleteMarker": False}
    except ClientError as exc:
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        if headers.get("x-amz-delete-marker") == "true" and headers.get("x-amz-version-id"):
            return {"Key": key, "VersionId": headers["x-amz-version-id"], "LastModified": None, "deleteMarker": True}
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey"):
            return None
        raise


def _versions(s3, bucket: str) -> list[dict[str, Any]]:
    """Every object version and delete marker of ``bucket``, oldest first.

    LastModified has one-second resolution, so ties are broken the way S3 lists a key's
    versions: newest first (and the ``IsLatest`` one is the newest of all).
    """
    items = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for kind, marker in (("Versions", False), ("DeleteMarkers", True)):
            listed = page.get(kind, [])
            items += [dict(v, deleteMarker=marker, _order=len(listed) - i) for i, v in enumerate(listed)]
    return sorted(items, key=lambda v: (v["LastModified"], v.get("IsLatest", False), v["_order"]))


def _read_journal(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
