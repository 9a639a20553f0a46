"""The backup vault: object layout, backup ids, manifests, the catalog and backup selection.

Layout (per bucket, the tier prefix is the contract's, so lifecycle rules own retention)::

    {tier prefix}{database}/{backup id}/dump            the stored object (see scripts.vault.envelope)
    {tier prefix}{database}/{backup id}/globals         database properties and roles, sealed the same way
    {tier prefix}{database}/{backup id}/post-data       pg_dump --section=post-data of the same snapshot, sealed too
    {tier prefix}{database}/{backup id}/manifest.json   written LAST: no manifest, no backup

This is the stable API teammates call (``status``, drills): :func:`list_backups`,
:func:`select_backup`, :func:`check_object`, :class:`Manifest`, :func:`validate_backup_id`.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from botocore.exceptions import BotoCoreError, ClientError

from scripts import aws
from scripts.common import Exit, PilotlightError, Refused, UsageError, log, shown
from scripts.contract import Contract
from scripts.vault import envelope
from scripts.vault.envelope import IntegrityError

FORMAT_VERSION = 2  # 2: the manifest carries a seal (scripts/vault/envelope.py); 1 had none and is refused
DUMP = "dump"
MANIFEST = "manifest.json"
GLOBALS = "globals"  # the sealed database statements and roles (scripts.postgres.globals)
POST_DATA = "post-data"  # the sealed post-data archive (indexes, constraints, triggers) for pg_restore -j
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
BACKUP_ID_RE = re.compile(r"^(?P<db>[A-Za-z0-9][A-Za-z0-9_-]{0,62})-(?P<ts>\d{8}T\d{12}Z)-(?P<rand>[0-9a-f]{6})$")
_TS_FORMAT = "%Y%m%dT%H%M%S%fZ"


MAX_ID_LENGTH = 63 + 1 + 22 + 1 + 6


def new_backup_id(database: str, now: datetime, source: str = "") -> str:
    """``{database}-{UTC time to the microsecond}-{source tag (4 hex)}{random (2 hex)}``.

    The source tag (see :func:`source_tag`) tells which server a backup is read from, so the
    cleanup of interrupted uploads can leave another server's run alone.
    """
    return f"{database}-{now.astimezone(timezone.utc).strftime(_TS_FORMAT)}-{source_tag(source)}{secrets.token_hex(1)}"


def source_tag(source: str) -> str:
    """4 hex digits naming the server and database a backup reads (``host:port/dbname``)."""
    return hashlib.sha256(source.encode()).hexdigest()[:4]


def id_source_tag(backup_id: str) -> str:
    return BACKUP_ID_RE.fullmatch(backup_id)["rand"][:4]


def validate_backup_id(text: str) -> str:
    """The id itself, or a UsageError: ids become S3 keys, so nothing like ``../`` or ``/`` passes."""
    if not isinstance(text, str) or not BACKUP_ID_RE.fullmatch(text):
        raise UsageError(f"--backup {shown(str(text))} is not a backup id (like orders-20261124T093000123456Z-a1b2c3; "
                         f"at most {MAX_ID_LENGTH} characters)")
    return text


def id_database(backup_id: str) -> str:
    """The name a backup is filed under (its id starts with it)."""
    return BACKUP_ID_RE.fullmatch(backup_id)["db"]


DRILL_SUFFIX = "--drill"  # drills file their backups apart: never a real restore's --latest


def drill_name(name: str) -> str:
    """Where a drill files its backups of ``name``: a prefix of its own, beside the real ones."""
    return f"{name}{DRILL_SUFFIX}"


def filing_name(contract: Contract, dbname: str) -> str:
    """The name backups of the PostgreSQL database ``dbname`` are filed under.

    A protected database's backups are filed under its contract name; any other database's
    (``backup --source``) under its own name, so a backup's identity is the database it came from.
    """
    for db in contract.databases:
        if db.db_name == dbname:
            return db.name
    if not NAME_RE.fullmatch(dbname) or dbname.endswith(DRILL_SUFFIX):
        raise UsageError(f"database {dbname!r} cannot name backups (letters, digits, '_' and '-', at most 63, "
                         f"not ending in {DRILL_SUFFIX!r})")
    return dbname


def id_time(backup_id: str) -> datetime:
    return datetime.strptime(BACKUP_ID_RE.fullmatch(backup_id)["ts"], _TS_FORMAT).replace(tzinfo=timezone.utc)


def object_key(contract: Contract, tier: str, database: str, backup_id: str, name: str = DUMP) -> str:
    return f"{contract.tiers[tier].prefix}{database}/{backup_id}/{name}"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


@dataclass(frozen=True)
class Manifest:
    """A backup's manifest; ``doc`` is the JSON as stored (see docs/backup.md for every field)."""

    doc: Mapping[str, Any]

    id = property(lambda self: self.doc["id"])
    tier = property(lambda self: self.doc["tier"])
    database = property(lambda self: self.doc["database"])
    stored_bytes = property(lambda self: int(self.doc["object"]["storedBytes"]))
    stored_sha256 = property(lambda self: self.doc["object"]["sha256"])
    dump_sha256 = property(lambda self: self.doc["dump"]["sha256"])
    version_id = property(lambda self: self.doc["object"].get("versionId"))
    s3_checksum = property(lambda self: self.doc["object"].get("checksumSha256"))
    row_counts = property(lambda self: dict(self.doc.get("rowCounts", {})))
    wrapped_keys = property(lambda self: dict(self.doc["encryption"]["wrappedKeys"]))

    @property
    def snapshot_at(self) -> datetime:
        return parse_time(self.doc["times"]["snapshot"])

    @property
    def finished_at(self) -> datetime:
        return parse_time(self.doc["times"]["finished"])

    @classmethod
    def parse(cls, raw: bytes, expected_id: str) -> "Manifest":
        """Validate a stored manifest; IntegrityError with one line if it is not a usable one."""
        try:
            doc = json.loads(raw)
            if doc.get("formatVersion") == 1:
                raise IntegrityError(f"backup {expected_id}: manifest format 1 carries no seal, so a rewrite cannot be "
                                     "told apart; take a new backup")
            m = cls(doc)
            checks = (m.id == expected_id, doc["formatVersion"] == FORMAT_VERSION, m.stored_bytes > 0,
                      len(m.stored_sha256) == 64, len(m.dump_sha256) == 64, m.snapshot_at, m.finished_at,
                      m.wrapped_keys, m.tier, doc["seal"]["mac"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise IntegrityError(f"backup {expected_id}: manifest is not valid JSON of format {FORMAT_VERSION}") from None
        if not all(checks):
            raise IntegrityError(f"backup {expected_id}: manifest does not describe this backup")
        return m

    def dumps(self) -> bytes:
        return json.dumps(self.doc, indent=2, sort_keys=False).encode()


@dataclass
class Entry:
    """One backup as found in a bucket: complete only with a valid manifest and a matching object."""

    id: str
    tier: str
    database: str
    side: str
    manifest: Manifest | None = None
    object_size: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.manifest is not None and not self.problems

    @property
    def time(self) -> datetime:
        return self.manifest.snapshot_at if self.manifest else id_time(self.id)

    def summary(self) -> dict:
        m = self.manifest
        return {
            "id": self.id, "tier": self.tier, "database": self.database, "side": self.side,
            "complete": self.complete, "problems": list(self.problems),
            "snapshotAt": m.doc["times"]["snapshot"] if m else None,
            "finishedAt": m.doc["times"]["finished"] if m else None,
            "storedBytes": m.stored_bytes if m else self.object_size,
            "dumpBytes": m.doc["dump"]["bytes"] if m else None,
        }


def aws_error(exc: Exception, what: str) -> PilotlightError:
    """One line for an AWS failure: unreachable endpoints are NETWORK, the rest FAILED."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return PilotlightError(f"{what}: {err.get('Code', 'error')} {err.get('Message', '')}".strip())
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    return PilotlightError(f"{what}: {first}", Exit.NETWORK)


def _scan(contract: Contract, side: str, db: str | None, tier: str | None) -> tuple[dict[str, Entry], set[str]]:
    """Every backup's keys under the tier prefixes (no manifest read yet); and the ids with a manifest."""
    s3 = aws.client(contract, "s3", side)
    bucket = contract.buckets[side].bucket
    entries: dict[str, Entry] = {}
    with_manifest: set[str] = set()
    try:
        for t in [tier] if tier else list(contract.tiers):
            prefix = contract.tiers[t].prefix
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + (f"{db}/" if db else "")):
                for obj in page.get("Contents", []):
                    parts = obj["Key"][len(prefix):].split("/")
                    if len(parts) != 3 or not BACKUP_ID_RE.fullmatch(parts[1]) or parts[2] not in (DUMP, MANIFEST):
                        continue
                    e = entries.setdefault(parts[1], Entry(parts[1], t, parts[0], side))
                    if parts[2] == DUMP:
                        e.object_size = obj["Size"]
                    else:
                        with_manifest.add(e.id)
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, f"cannot list the {side} vault s3://{bucket}") from None
    return entries, with_manifest


def _load(contract: Contract, e: Entry, has_manifest: bool) -> Entry:
    """Read and check ``e``'s manifest; record every reason it is not a complete backup."""
    if has_manifest:
        bucket = contract.buckets[e.side].bucket
        key = object_key(contract, e.tier, e.database, e.id, MANIFEST)
        try:
            raw = aws.client(contract, "s3", e.side).get_object(Bucket=bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise aws_error(exc, f"cannot read s3://{bucket}/{key}") from None
        try:
            e.manifest = Manifest.parse(raw, e.id)
        except IntegrityError as exc:
            e.problems.append(str(exc))
    elif not e.problems:
        e.problems.append("no manifest (incomplete or interrupted backup)")
    if e.object_size is None:
        e.problems.append("stored object missing")
    elif e.manifest is not None and e.object_size != e.manifest.stored_bytes:
        e.problems.append(f"stored object is {e.object_size} bytes, manifest says {e.manifest.stored_bytes}")
    return e


def list_backups(contract: Contract, side: str = "primary", db: str | None = None,
                 tier: str | None = None) -> list[Entry]:
    """Every backup (complete or not) in ``side``'s bucket, newest first; reads every manifest."""
    entries, with_manifest = _scan(contract, side, db, tier)
    loaded = [_load(contract, e, e.id in with_manifest) for e in entries.values()]
    return sorted(loaded, key=lambda e: e.time, reverse=True)


def newest_complete(contract: Contract, side: str, db: str) -> dict[str, Entry]:
    """Per tier, the newest complete backup of ``db``: reads manifests newest-first, stops at the first good one."""
    entries, with_manifest = _scan(contract, side, db, None)
    newest: dict[str, Entry] = {}
    for e in sorted((e for e in entries.values() if e.id in with_manifest), key=lambda e: id_time(e.id), reverse=True):
        if e.tier not in newest and _load(contract, e, True).complete:
            newest[e.tier] = e
    return newest


def check_object(contract: Contract, side: str, manifest: Manifest) -> dict:
    """Metadata checks before any byte is read: present, same size, same version, same S3 checksum.

    On the primary the latest version must be the one the backup wrote (a newer version means
    someone overwrote it). On the DR side, replicated versions keep their id on AWS but not in the
    sandbox's emulated replicator, so there size and checksum decide. Returns head_object's answer.
    """
    s3 = aws.client(contract, "s3", side)
    bucket = contract.buckets[side].bucket
    key = object_key(contract, manifest.tier, manifest.database, manifest.id)
    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise IntegrityError(f"backup {manifest.id}: stored object missing from s3://{bucket}") from None
        raise aws_error(exc, f"cannot read s3://{bucket}/{key}") from None
    except BotoCoreError as exc:
        raise aws_error(exc, f"cannot reach the {side} vault s3://{bucket}") from None
    if head["ContentLength"] != manifest.stored_bytes:
        raise IntegrityError(
            f"backup {manifest.id}: stored object is {head['ContentLength']} bytes, manifest says {manifest.stored_bytes}"
        )
    if side == "primary" and manifest.version_id and head.get("VersionId") not in (None, manifest.version_id):
        raise IntegrityError(f"backup {manifest.id}: stored object was overwritten after the backup (new version)")
    theirs = head.get("ChecksumSHA256")
    if theirs and manifest.s3_checksum and theirs != manifest.s3_checksum:
        raise IntegrityError(f"backup {manifest.id}: S3 checksum of the stored object differs from the manifest")
    return head


@contextmanager
def write_once(s3, key_prefix: str):
    """While open, every put under ``key_prefix`` (one backup) is conditional on the key not existing.

    ``If-None-Match: *`` on ``PutObject`` and ``CompleteMultipartUpload`` (boto3's transfer
    manager has no argument for the latter, hence the event hook): S3 refuses (412) a put over an
    existing backup, and the vault's bucket policy refuses any put without the header
    (rules.bucket_policy). Scoped to one backup's keys and to the run, as the client is shared.
    """
    def add(params, **_):
        if params.get("Key", "").startswith(key_prefix):
            params.setdefault("IfNoneMatch", "*")

    events = [f"before-parameter-build.s3.{op}" for op in ("PutObject", "CompleteMultipartUpload")]
    for event in events:
        s3.meta.events.register(event, add)
    try:
        yield s3
    finally:
        for event in events:
            s3.meta.events.unregister(event, add)


def _read_prefix(s3, bucket: str, key: str, extra: dict) -> bytes:
    """The stored object's first bytes (its header). A dropped response stream is not retried by
    botocore (only the request is), so the read is retried here, as the transfer manager does."""
    last: Exception | None = None
    for _ in range(aws.MAX_ATTEMPTS):
        try:
            return s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{envelope.HEADER_PREFIX_BYTES - 1}",
                                 **extra)["Body"].read()
        except ClientError as exc:
            raise aws_error(exc, f"download of s3://{bucket}/{key} failed") from None
        except BotoCoreError as exc:
            last = exc
    raise aws_error(last, f"download of s3://{bucket}/{key} failed after retries") from None


def check_seal(contract: Contract, side: str, manifest: Manifest) -> None:
    """The manifest is the one the backup wrote: sealed by the data key of the object it describes.

    The stored object's header (write-once, authenticated by every frame) must name the same
    wrapped data keys, and the seal must verify under that data key (unwrapped with ``side``'s key).
    """
    s3 = aws.client(contract, "s3", side)
    bucket = contract.buckets[side].bucket
    key = object_key(contract, manifest.tier, manifest.database, manifest.id)
    extra = {"VersionId": manifest.version_id} if side == "primary" and manifest.version_id else {}
    prefix = _read_prefix(s3, bucket, key, extra)
    header = envelope.read_header(prefix, manifest.id)
    if header.get("wrappedKeys") != manifest.wrapped_keys:
        raise IntegrityError(f"backup {manifest.id}: manifest names other data keys than the stored object (rewritten)")
    data_key = envelope.unwrap(contract, side, manifest.wrapped_keys, manifest.id, manifest.database)
    if not envelope.seal_matches(manifest.doc, envelope.seal_key(data_key, manifest.id)):
        raise IntegrityError(f"backup {manifest.id}: manifest seal does not verify (rewritten after the backup)")


def select_backup(contract: Contract, side: str = "primary", db: str | None = None, *,
                  backup_id: str | None = None, before: datetime | None = None, latest: bool = False,
                  tier: str | None = None) -> tuple[Manifest, dict]:
    """The backup to restore: the given id, the newest strictly before ``before``, or the newest.

    Only complete backups whose stored object passes :func:`check_object` qualify; the newest
    candidates that fail are skipped with a warning (a given id that fails is refused).
    """
    if sum(x is not None and x is not False for x in (backup_id, before, latest or None)) != 1:
        raise UsageError("choose exactly one of --latest, --backup ID, --before TIMESTAMP")
    database = db or (id_database(backup_id) if backup_id else contract.database().name)
    entries = list_backups(contract, side, database, tier)
    bucket = contract.buckets[side].bucket
    if backup_id is not None:
        validate_backup_id(backup_id)
        found = [e for e in entries if e.id == backup_id]
        if not found:
            raise PilotlightError(f"unknown backup id {backup_id} (not in s3://{bucket})", Exit.USAGE)
        if not found[0].complete:
            raise Refused(f"backup {backup_id} is not usable: {'; '.join(found[0].problems)}")
        head = check_object(contract, side, found[0].manifest)
        check_seal(contract, side, found[0].manifest)
        return found[0].manifest, head
    candidates = [e for e in entries if before is None or e.time < before]
    for e in candidates:
        if not e.complete:
            log.warning("skipping backup %s: %s", e.id, "; ".join(e.problems))
            continue
        try:
            head = check_object(contract, side, e.manifest)
            check_seal(contract, side, e.manifest)
            return e.manifest, head
        except IntegrityError as exc:
            log.warning("skipping backup %s: %s", e.id, exc)
    when = f" before {before.isoformat()}" if before else ""
    raise PilotlightError(f"no valid backup of {database}{when} in s3://{bucket}")
