"""Restore-test evidence: each verification run's record, written into the vault under Object Lock.

Auditors ask for proof that backups are tested, not for a green dashboard: which backups were
checked, what each check (checksum, decryption with the DR key, test restore with its row counts)
found, how long it took, which job and task ran it and when. ``pilotlight verify --evidence``
writes that record to ``evidence/<database>/<yyyy>/<mm>/<dd>/<timestamp>-<job>.json`` in the vault
it verified, write-once (``If-None-Match``, as the bucket policy demands of every put) and locked
by the bucket's default Object Lock retention (the stack's mode and days, as every backup), so
nobody — the job's own role included — can rewrite or delete a record inside its retention. No
explicit retention headers: those would need ``s3:PutObjectRetention`` (components/rules.py). ``pilotlight status`` reads the
newest record of each database (:func:`newest`).

The record carries no secret: the scratch server is named by host and port only, and the job's
identity is its name and ECS task ARN.
"""
from __future__ import annotations

import json
import os
import socket
import urllib.request
from datetime import datetime
from typing import Any

from scripts import aws
from scripts.common import iso, parse_timestamp, utcnow
from scripts.contract import Contract
from scripts.version import describe

PREFIX = "evidence/"
KIND = "pilotlight-restore-test"
JOB_ENV = "PILOTLIGHT_JOB"
# ECS sets this in every container of a Fargate task (ECS developer guide, task-metadata-endpoint-v4-fargate).
ECS_METADATA_ENV = "ECS_CONTAINER_METADATA_URI_V4"


def key_for(database: str, at: datetime, job: str) -> str:
    """Keys sort by time within a database: the newest record is the last key listed."""
    return f"{PREFIX}{database}/{at:%Y/%m/%d}/{at:%Y%m%dT%H%M%S%fZ}-{job}.json"


def task_identity() -> dict[str, str]:
    """Which job and task ran this: the job's name, and on ECS the task ARN and cluster."""
    ident = {"job": os.environ.get(JOB_ENV) or "manual", "host": socket.gethostname()}
    uri = os.environ.get(ECS_METADATA_ENV)
    if uri:
        try:
            with urllib.request.urlopen(f"{uri}/task", timeout=2) as answer:  # noqa: S310 - the task's own endpoint
                task = json.load(answer)
            ident.update(taskArn=task.get("TaskARN", ""), cluster=task.get("Cluster", ""))
        except (OSError, ValueError):
            ident["taskArn"] = "unknown (task metadata endpoint unreachable)"
    return ident


def record(contract: Contract, report: dict[str, Any], started: datetime, finished: datetime) -> dict[str, Any]:
    """The evidence document of one verification report."""
    side = report["side"]
    backups = []
    for r in report["backups"]:
        entry = {"id": r["id"], "tier": r["tier"], "checks": r["checks"], "problems": r["problems"]}
        trial = r.get("testRestore")
        if trial:
            entry["testRestore"] = {k: trial[k] for k in ("server", "database", "tables", "rows", "rowCounts",
                                                          "dumpBytes", "seconds", "dropped")}
        backups.append(entry)
    return {
        "kind": KIND, "version": 1, "project": contract.project, "stack": contract.stack,
        "database": report["database"], "side": side, "region": contract.regions[side], "bucket": report["bucket"],
        "ok": report["ok"], "startedAt": iso(started), "finishedAt": iso(finished),
        "durationSeconds": round((finished - started).total_seconds(), 3),
        "identity": task_identity(), "tool": describe(),
        "backups": backups, "tiers": report["tiers"], "failures": report["failures"],
    }


def write(contract: Contract, doc: dict[str, Any]) -> str:
    """Put ``doc`` into its side's vault, write-once and locked; returns the key.

    A put into a bucket with Object Lock retention must carry Content-MD5 or an SDK checksum
    (scripts/preview/awsrules/s3.py: ``s3-object-lock-put-needs-checksum``): SHA-256 here.
    """
    side = doc["side"]
    finished = parse_timestamp(doc["finishedAt"], "finishedAt")
    key = key_for(doc["database"], finished, doc["identity"]["job"])
    aws.client(contract, "s3", side).put_object(
        Bucket=contract.buckets[side].bucket, Key=key, Body=json.dumps(doc, indent=1, sort_keys=True).encode(),
        ContentType="application/json", IfNoneMatch="*", ChecksumAlgorithm="SHA256",
        ServerSideEncryption="aws:kms", SSEKMSKeyId=contract.keys[side].arn,
    )
    return key


def newest(contract: Contract, side: str, database: str) -> tuple[str, dict[str, Any]] | None:
    """The newest evidence record of ``database`` in ``side``'s vault (key, document), or None."""
    s3 = aws.client(contract, "s3", side)
    bucket = contract.buckets[side].bucket
    last = None
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}{database}/"):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".json") and (last is None or obj["Key"] > last):
                last = obj["Key"]
    if last is None:
        return None
    body = s3.get_object(Bucket=bucket, Key=last)["Body"].read()
    return last, json.loads(body)


def age_seconds(doc: dict[str, Any], now: datetime | None = None) -> float:
    return max(0.0, ((now or utcnow()) - parse_timestamp(doc["finishedAt"], "finishedAt")).total_seconds())
