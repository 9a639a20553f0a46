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

import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Iterable, Iterator

import zstandard
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from scripts import aws, progress
from scripts.vault import envelope
from scripts.postgres import client as pg
from scripts.common import Exit, PilotlightError, iso, log, utcnow
from scripts.contract import TIERS, Contract
from scripts.postgres.dsn import parse_dsn, side_dsn
from scripts.vault.pipeline import READ_SIZE, Digest, Reader, read_chunks, threaded, widen_pipe
from scripts.vault.layout import (DUMP, FORMAT_VERSION, MANIFEST, Manifest, aws_error, new_backup_id, newest_complete,
                                  object_key, write_once)

ZSTD_LEVEL = 1
PART_SIZE = max(5, int(os.environ.get("PILOTLIGHT_PART_MIB", "16"))) << 20  # S3's minimum part is 5 MiB
TRANSFER = TransferConfig(
    multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, max_concurrency=3,
    use_threads=True,
)
TRANSFER.max_in_memory_upload_chunks = 3  # s3transfer's knob (default 10 x 16 MiB): bounds memory


def tool_version() -> str:
    try:
        return f"pilotlight {version('pilotlight')}"
    except PackageNotFoundError:
        return "pilotlight (source)"


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
                   args=None) -> Manifest:
    """Back up one protected database into ``tier``; returns the manifest once it is stored."""
    if tier not in TIERS:
        raise PilotlightError(f"unknown tier {tier!r}; one of {', '.join(TIERS)}", Exit.USAGE)
    database = contract.database(db)
    dsn = source_dsn or side_dsn(contract, contract.active, database, superuser=True)  # the side serving traffic
    parse_dsn(dsn, "--source")
    started = utcnow()
    backup_id = new_backup_id(database.name, started)
    bucket = contract.buckets["primary"].bucket
    key = object_key(contract, tier, database.name, backup_id, DUMP)
    s3 = aws.client(contract, "s3", "primary")
    log.info("backup %s of %s into s3://%s/%s", backup_id, database.name, bucket, key)

    # Every put of this backup's objects is write-once (If-None-Match), as the bucket policy demands.
    with (write_once(s3, key.rsplit("/", 1)[0] + "/"),
          pg.exported_snapshot(dsn, lock=f"pilotlight-backup:{database.name}") as snap):
        conninfo, env = pg.client_args(dsn)
        proc = subprocess.Popen(
            [pg.binary("pg_dump"), "-Fc", "-Z0", f"--snapshot={snap.id}", "--no-password", f"--dbname={conninfo}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, bufsize=READ_SIZE,
        )
        widen_pipe(proc.stdout)  # with bufsize: read() returns whole 1 MiB chunks, not the pipe's 64 KiB
        stderr_tail: list[str] = []
        threading.Thread(target=_drain, args=(proc.stderr, stderr_tail), daemon=True).start()
        dump, stored, sealed = Digest(), Digest(), {}
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="pilotlight-backup") as pool:
            counts = pool.submit(pg.count_rows, dsn, snap.tables, snap.id)
            orphans = pool.submit(abort_orphaned_uploads, contract, database.name, started, key)
            stream = threaded(dump.tap(_dump_output(proc, stderr_tail)), name="pg_dump")
            stream = threaded(compress(stream), name="zstd")
            stream = threaded(stored.tap(_seal(stream, contract, backup_id, database.name, sealed)), name="encrypt")
            reader = None
            try:
                with progress.bar(args, f"backup {backup_id}") as bar:
                    reader = Reader(bar.tap(stream))
                    s3.upload_fileobj(reader, bucket, key, ExtraArgs=sse_args(contract, "primary"), Config=TRANSFER)
                row_counts = counts.result()
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
        "database": database.name,
        "times": {"started": iso(started), "snapshot": iso(snap.at), "finished": iso(utcnow())},
        "source": {"host": snap.host, "port": snap.port, "dbname": snap.dbname,
                   "serverVersion": snap.server_version, "systemIdentifier": snap.system_identifier},
        "dump": {"format": "pg_dump custom (-Fc -Z0)", "compression": f"zstd-{ZSTD_LEVEL}",
                 "bytes": dump.size, "sha256": dump.hexdigest()},
        "object": {"bucket": bucket, "key": key, "region": contract.regions["primary"],
                   "versionId": head.get("VersionId"), "storedBytes": stored.size, "sha256": stored.hexdigest(),
                   "checksumSha256": head.get("ChecksumSHA256")},
        "encryption": {"algorithm": header["algorithm"], "chunkSize": header["chunkSize"],
                       "wrappedKeys": header["wrappedKeys"], "keyArns": header["keyArns"],
                       "regions": dict(contract.regions), "context": header["context"]},
        "rowCounts": row_counts,
    }
    # Sealed with the backup's data key: a rewritten manifest no longer verifies (scripts/vault/envelope.py).
    manifest = Manifest({**doc, "seal": envelope.seal(doc, sealed["seal_key"])})
    try:
        s3.put_object(Bucket=bucket, Key=object_key(contract, tier, database.name, backup_id, MANIFEST),
                      Body=manifest.dumps(), ContentType="application/json", IfNoneMatch="*",
                      **sse_args(contract, "primary"))
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, f"backup {backup_id} uploaded but its manifest could not be written; not a backup") from None
    publish_age(contract, database.name)
    return manifest


def abort_orphaned_uploads(contract: Contract, database: str, before: datetime, own_key: str = "") -> int:
    """Abort multipart uploads that a killed backup of ``database`` left behind.

    Runs while this run holds the database's backup lock, so any upload of ``database`` begun
    before this run started (other than this run's own ``own_key``) belongs to a dead run (a SIGKILLed process cannot abort its own; on
    AWS the bucket's AbortIncompleteMultipartUpload lifecycle rule is the slower backstop).
    """
    s3 = aws.client(contract, "s3", "primary")
    bucket = contract.buckets["primary"].bucket
    prefixes = tuple(f"{tier.prefix}{database}/" for tier in contract.tiers.values())
    aborted = 0
    try:
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for up in page.get("Uploads", []):
                if up["Key"].startswith(prefixes) and up["Initiated"] < before and up["Key"] != own_key:
                    s3.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
                    log.warning("aborted the orphaned multipart upload of %s (an interrupted backup)", up["Key"])
                    aborted += 1
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, f"cannot list uploads in s3://{bucket}") from None
    return aborted


def publish_age(contract: Contract, database: str, now: datetime | None = None) -> dict[str, float]:
    """Newest complete backup's age per tier as the CloudWatch metric the program's alarm watches.

    Published in the active side's region: the program's backup-age alarms follow
    ``pilotlight:active``, so after a failover they watch the DR region. A failure here is
    logged, not fatal: the backup itself is already safe.
    """
    now = now or utcnow()
    ages: dict[str, float] = {}
    try:
        for tier, e in newest_complete(contract, "primary", database).items():
            ages[tier] = max(0.0, (now - e.manifest.finished_at).total_seconds())
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
