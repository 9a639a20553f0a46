"""The backup pipeline: stream an encrypted pg_dump into the vault (`pilotlight backup`).

    pg_dump -Fc -Z0 --snapshot  ->  SHA-256  ->  zstd -1  ->  AES-256-GCM STREAM + SHA-256  ->  S3 multipart

Each arrow is a bounded queue between threads (scripts.vault.pipeline), so the stages overlap and memory
stays bounded (~12 MiB of queues + the transfer manager's 3 in-flight 16 MiB parts); no plaintext
ever touches disk. The manifest is written LAST: a run that fails anywhere leaves no manifest, and
boto3's transfer manager aborts the multipart upload, so nothing looks like a valid backup.

Why zstd level 1, single-threaded (measured on this 2-core box, 64 MiB of realistic-entropy
JSON-like rows): level 1 = 328 MB/s at ratio 2.39; level 3 = 183 MB/s at ratio 3.03 (threads=1:
211 MB/s); level -1 = 384 MB/s at ratio 1.54. pg_dump -Z0 produces ~160 MB/s while the server
itself needs ~1 core, so level 3 (~7 CPU-s per 630 MiB dump) makes compression the bottleneck
and misses the 1.2x target; level 1 costs ~2 CPU-s and keeps pg_dump the limit, and its ratio
keeps the upload (45 MB/s to the sandbox) from becoming the limit. zstd's own worker threads only
compete with pg_dump and the server for the same two cores.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Iterable, Iterator

import zstandard
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from scripts import aws, progress
from scripts.vault import envelope
from scripts.postgres import client as pg
from scripts.postgres.globals import Globals, capture
from scripts.common import Exit, PilotlightError, iso, log, utcnow
from scripts.contract import Contract
from scripts.version import describe
from stacks.vocabulary import TIERS
from scripts.postgres.dsn import parse_dsn, side_dsn
from scripts.vault.pipeline import READ_SIZE, Digest, Reader, read_chunks, threaded, widen_pipe
from scripts.vault.layout import (BACKUP_ID_RE, DUMP, FORMAT_VERSION, GLOBALS, MANIFEST, POST_DATA, Manifest, aws_error,
                                  drill_name, filing_name, id_source_tag, id_time, new_backup_id, newest_complete, object_key,
                                  source_tag, write_once)

ZSTD_LEVEL = 1
PART_SIZE = max(5, int(os.environ.get("PILOTLIGHT_PART_MIB", "16"))) << 20  # S3's minimum part is 5 MiB
TRANSFER = TransferConfig(
    multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, max_concurrency=3,
    use_threads=True,
)
TRANSFER.max_in_memory_upload_chunks = 3  # s3transfer's knob (default 10 x 16 MiB): bounds memory


def tool_version() -> str:
    return describe()


def compress(chunks: Iterable[bytes], level: int = ZSTD_LEVEL) -> Iterator[bytes]:
    cobj = zstandard.ZstdCompressor(level=level).compressobj()
    for chunk in chunks:
        out = cobj.compress(chunk)
        if out:
            yield out
    yield cobj.flush()


def _dump_output(proc: subprocess.Popen, stderr_tail: list[str]) -> Iterator[bytes]:
    """pg_dump's stdout; a non-zero exit becomes an exception BEFORE the stream ends, so the
    upload never completes on a truncated dump."""
    yield from read_chunks(proc.stdout)
    if proc.wait() != 0:
        detail = stderr_tail[-1] if stderr_tail else f"exit {proc.returncode}"
        raise PilotlightError(f"pg_dump failed: {detail}")


def post_data_archive(dsn: str, snapshot: str) -> bytes:
    """``pg_dump -Fc --section=post-data`` of the same snapshot: the indexes, constraints, triggers,
    rules and materialized-view refreshes of the dump, in an archive small enough to keep whole.

    A restore streams the dump's pre-data and data sections through one ``pg_restore`` and then
    builds these with ``pg_restore -j N`` (it needs a seekable archive, which the stream is not):
    the index builds, most of a restore after the data, scale with the restore host's cores.
    """
    conninfo, env = pg.client_args(dsn)
    proc = subprocess.run([pg.binary("pg_dump"), "-Fc", "--section=post-data", f"--snapshot={snapshot}", "--no-password",
                           f"--dbname={conninfo}"], stdin=subprocess.DEVNULL, capture_output=True, env=env)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines() or [f"exit {proc.returncode}"]
        raise PilotlightError(f"pg_dump failed (its post-data section): {tail[-1]}")
    return proc.stdout


def _seal(chunks: Iterable[bytes], contract: Contract, backup_id: str, database: str, out: dict) -> Iterator[bytes]:
    """The encryption stage; it asks KMS for the data key itself, so pg_dump is already running."""
    data_key = envelope.generate_data_key(contract, backup_id, database)
    out["header"] = envelope.make_header(data_key, backup_id, database)
    out["seal_key"] = envelope.seal_key(data_key.plaintext, backup_id)
    yield from envelope.encrypt_stream(chunks, data_key.plaintext, out["header"])


def _drain(stream, into: list[str]) -> None:
    for line in iter(stream.readline, b""):
        into.append(line.decode(errors="replace").strip())
        del into[:-20]


def sse_args(contract: Contract, side: str) -> dict:
    """What the vault's bucket policy demands of every put: SSE-KMS with the region's key, a checksum."""
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": contract.keys[side].arn, "ChecksumAlgorithm": "SHA256"}


def perform_backup(contract: Contract, tier: str, source_dsn: str | None = None, db: str | None = None,
                   args=None, drill: bool = False) -> Manifest:
    """Back up a protected database (or ``source_dsn``'s) into ``tier``; returns the manifest once it is stored.

    The backup is filed under the database it came from (scripts.vault.filing_name): ``--source``
    naming another database never files a backup under a protected database's name. A ``drill``
    backup is filed apart (scripts.vault.drill_name) and publishes no backup-age metric: it never
    becomes a real restore's ``--latest`` nor hides a stale real backup.
    """
    if tier not in TIERS:
        raise PilotlightError(f"unknown tier {tier!r}; one of {', '.join(TIERS)}", Exit.USAGE)
    protected = contract.database(db)
    dsn = source_dsn or side_dsn(contract, contract.active, protected, superuser=True)  # the side serving traffic
    parts = parse_dsn(dsn, "--source")
    name = filing_name(contract, parts.get("dbname") or parts.get("user") or protected.db_name)
    name = drill_name(name) if drill else name
    started = utcnow()
    source = f"{parts.get('host', '')}:{parts.get('port', '')}/{parts.get('dbname', '')}"
    backup_id = new_backup_id(name, started, source)
    # The active side's vault, with its key: after a failover the DR vault (the primary region
    # may be the one that is down); S3 replication carries it to the other side.
    side = contract.active
    bucket = contract.buckets[side].bucket
    key = object_key(contract, tier, name, backup_id, DUMP)
    s3 = aws.client(contract, "s3", side)
    log.info("backup %s of %s into s3://%s/%s", backup_id, name, bucket, key)

    # Every put of this backup's objects is write-once (If-None-Match), as the bucket policy demands.
    with (write_once(s3, key.rsplit("/", 1)[0] + "/"),
          pg.exported_snapshot(dsn, lock=f"pilotlight-backup:{name}") as snap):
        pg.require_dump_client_for(snap.server_version)
        conninfo, env = pg.client_args(dsn)
        proc = subprocess.Popen(
            [pg.binary("pg_dump"), "-Fc", "-Z0", f"--snapshot={snap.id}", "--no-password", f"--dbname={conninfo}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, bufsize=READ_SIZE,
        )
        widen_pipe(proc.stdout)  # with bufsize: read() returns whole 1 MiB chunks, not the pipe's 64 KiB
        stderr_tail: list[str] = []
        threading.Thread(target=_drain, args=(proc.stderr, stderr_tail), daemon=True).start()
        dump, stored, sealed = Digest(), Digest(), {}
        with ThreadPoolExecutor(max_workers=5, thread_name_prefix="pilotlight-backup") as pool:
            counts = pool.submit(pg.count_rows, dsn, snap.tables, snap.id)
            # Stored beside the upload, not after it: no manifest names them unless the dump succeeds.
            globals_ = pool.submit(lambda: store_globals(contract, s3, object_key(contract, tier, name, backup_id, GLOBALS),
                                                         backup_id, name, capture(dsn, snap.id)))
            post_data = pool.submit(lambda: store_sealed(
                contract, s3, object_key(contract, tier, name, backup_id, POST_DATA), backup_id, name,
                post_data_archive(dsn, snap.id), "its post-data archive"))
            orphans = pool.submit(abort_orphaned_uploads, contract, name, started, key, source_tag(source))
            # The other tiers' newest backups for the backup-age metric, read while the dump runs, not after it.
            prior = None if drill else pool.submit(newest_complete, contract, side, name)
            stream = threaded(dump.tap(_dump_output(proc, stderr_tail)), name="pg_dump")
            stream = threaded(compress(stream), name="zstd")
            stream = threaded(stored.tap(_seal(stream, contract, backup_id, name, sealed)), name="encrypt")
            reader = None
            try:
                with progress.bar(args, f"backup {backup_id}") as bar:
                    reader = Reader(bar.tap(stream))
                    s3.upload_fileobj(reader, bucket, key, ExtraArgs=sse_args(contract, side), Config=TRANSFER)
                row_counts, globals_entry, post_entry = counts.result(), globals_.result(), post_data.result()
            except (ClientError, BotoCoreError) as exc:
                raise aws_error(exc, f"upload to s3://{bucket} failed (multipart upload aborted)") from None
            finally:
                if proc.poll() is None:
                    proc.kill()
                if reader is not None:
                    reader.close()
                proc.wait()
            try:
                orphans.result()
            except PilotlightError as exc:
                log.warning("could not clean up interrupted uploads: %s", exc)
    header = sealed["header"]
    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, "cannot confirm the uploaded object") from None
    if head["ContentLength"] != stored.size:
        raise PilotlightError(f"uploaded object is {head['ContentLength']} bytes, {stored.size} were sent")
    doc = {
        "formatVersion": FORMAT_VERSION,
        "tool": tool_version(),
        "id": backup_id,
        "tier": tier,
        "database": name,
        "times": {"started": iso(started), "snapshot": iso(snap.at), "finished": iso(utcnow())},
        "source": {"host": snap.host, "port": snap.port, "dbname": snap.dbname,
                   "serverVersion": snap.server_version, "systemIdentifier": snap.system_identifier},
        "dump": {"format": "pg_dump custom (-Fc -Z0)", "compression": f"zstd-{ZSTD_LEVEL}",
                 "bytes": dump.size, "sha256": dump.hexdigest()},
        "object": {"bucket": bucket, "key": key, "region": contract.regions[side],
                   "versionId": head.get("VersionId"), "storedBytes": stored.size, "sha256": stored.hexdigest(),
                   "checksumSha256": head.get("ChecksumSHA256")},
        "encryption": {"algorithm": header["algorithm"], "chunkSize": header["chunkSize"],
                       "wrappedKeys": header["wrappedKeys"], "keyArns": header["keyArns"],
                       "regions": dict(contract.regions), "context": header["context"]},
        "rowCounts": row_counts,
        "globals": globals_entry,
        "postData": post_entry,
    }
    # Sealed with the backup's data key: a rewritten manifest no longer verifies (scripts/vault/envelope.py).
    manifest = Manifest({**doc, "seal": envelope.seal(doc, sealed["seal_key"])})
    try:
        s3.put_object(Bucket=bucket, Key=object_key(contract, tier, name, backup_id, MANIFEST),
                      Body=manifest.dumps(), ContentType="application/json", IfNoneMatch="*",
                      **sse_args(contract, side))
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, f"backup {backup_id} uploaded but its manifest could not be written; not a backup") from None
    if not drill:
        publish_age(contract, name, newest=_newest_with(prior, tier, manifest.finished_at))
    return manifest


def _newest_with(prior, tier: str, finished: datetime) -> dict[str, datetime] | None:
    """Per tier, the newest complete backup's finish time, this one included (None: list the vault again)."""
    try:
        found = {t: e.manifest.finished_at for t, e in prior.result().items()}
    except (PilotlightError, ClientError, BotoCoreError):
        return None
    return {**found, tier: finished}


def store_globals(contract: Contract, s3, key: str, backup_id: str, database: str, captured: Globals) -> dict:
    """The database statements and roles, sealed and stored (:func:`store_sealed`), with who they name."""
    entry = store_sealed(contract, s3, key, backup_id, database, json.dumps(captured.to_doc()).encode(),
                         "its roles and database properties")
    return {**entry, "roles": list(captured.needed_roles), "owner": captured.owner}


def store_sealed(contract: Contract, s3, key: str, backup_id: str, database: str, plain: bytes, what: str) -> dict:
    """Seal a small object of the backup like the dump (own data key, same context) and store it.

    Returns its manifest entry: where it is and how to check (SHA-256 of the stored bytes and of
    the plaintext) and unwrap it.
    """
    data_key = envelope.generate_data_key(contract, backup_id, database)
    header = envelope.make_header(data_key, backup_id, database)
    body = b"".join(envelope.encrypt_stream([plain], data_key.plaintext, header))
    try:
        put = s3.put_object(Bucket=contract.buckets[contract.active].bucket, Key=key, Body=body, IfNoneMatch="*",
                            ContentType="application/octet-stream", **sse_args(contract, contract.active))
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, f"backup {backup_id}: {what} could not be stored") from None
    return {"key": key, "versionId": put.get("VersionId"), "storedBytes": len(body),
            "sha256": hashlib.sha256(body).hexdigest(), "plainSha256": hashlib.sha256(plain).hexdigest(),
            "wrappedKeys": header["wrappedKeys"]}


def abort_orphaned_uploads(contract: Contract, database: str, before: datetime, own_key: str = "",
                           source: str | None = None) -> int:
    """Abort multipart uploads that a killed backup of ``database`` from the same server left behind.

    Runs while this run holds the database's backup lock on its source server, so an upload of
    ``database`` from that server (its backup id carries the server's ``source`` tag) begun
    before this run started, other than this run's own ``own_key``, belongs to a dead run (a
    SIGKILLed process cannot abort its own). The lock says nothing about other servers: a backup
    read from the standby leaves the primary's running upload alone. Start times come from the
    backup id (the client's clock), not S3's ``Initiated`` (moto reports one fixed time for every
    upload). On AWS the bucket's AbortIncompleteMultipartUpload lifecycle rule is the backstop.
    """
    s3 = aws.client(contract, "s3", contract.active)
    bucket = contract.buckets[contract.active].bucket
    prefixes = tuple(f"{tier.prefix}{database}/" for tier in contract.tiers.values())
    aborted = 0
    try:
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for up in page.get("Uploads", []):
                if up["Key"].startswith(prefixes) and up["Key"] != own_key and _orphan_of(up["Key"], before, source):
                    s3.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
                    log.warning("aborted the orphaned multipart upload of %s (an interrupted backup)", up["Key"])
                    aborted += 1
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, f"cannot list uploads in s3://{bucket}") from None
    return aborted


def _orphan_of(key: str, before: datetime, source: str | None) -> bool:
    backup_id = key.rsplit("/", 2)[-2] if key.count("/") >= 2 else ""
    if not BACKUP_ID_RE.fullmatch(backup_id):
        return False
    return id_time(backup_id) < before and (source is None or id_source_tag(backup_id) == source)


def publish_age(contract: Contract, database: str, now: datetime | None = None,
                newest: dict[str, datetime] | None = None) -> dict[str, float]:
    """Newest complete backup's age per tier as the CloudWatch metric the program's alarm watches.

    Published in the active side's region: the program's backup-age alarms follow
    ``pilotlight:active``, so after a failover they watch the DR region. A failure here is
    logged, not fatal: the backup itself is already safe. ``newest`` (tier -> finish time of its
    newest complete backup), when the caller knows it, spares listing the vault.
    """
    now = now or utcnow()
    ages: dict[str, float] = {}
    try:
        if newest is None:
            newest = {tier: e.manifest.finished_at for tier, e in newest_complete(contract, contract.active, database).items()}
        for tier, finished in newest.items():
            ages[tier] = max(0.0, (now - finished).total_seconds())
        if ages:
            aws.client(contract, "cloudwatch", contract.active).put_metric_data(
                Namespace=contract.metric_namespace,
                MetricData=[{"MetricName": contract.backup_age_metric, "Value": age, "Unit": "Seconds",
                             "Dimensions": [{"Name": "Database", "Value": database}, {"Name": "Tier", "Value": tier}]}
                            for tier, age in ages.items()],
            )
    except (PilotlightError, ClientError, BotoCoreError) as exc:
        log.warning("could not publish the backup-age metric: %s", str(exc).splitlines()[0])
    return ages
