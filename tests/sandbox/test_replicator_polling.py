"""The replicator polls cheaply: moto deep-copies every stored body on each ListObjectVersions.

Drives a :class:`Replicator` pass by pass (no thread) over a bucket pair of its own in the shared
sandbox's moto, so the daemon's replicator and the vault buckets are left alone.
"""
from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import pytest

from scripts.aws import client
from scripts.sandbox.replicator import Replicator
from scripts.sandbox.state import REPLICATION

pytestmark = pytest.mark.integration


@pytest.fixture
def pair(sandbox, tmp_path):
    """Two versioned buckets (primary and DR region), a replication rule between them, a replicator."""
    c = sandbox.contract
    src, dst = client(c, "s3", "primary"), client(c, "s3", "dr")
    names = {side: f"repl-test-{side}-{uuid.uuid4().hex[:12]}" for side in ("primary", "dr")}
    src.create_bucket(Bucket=names["primary"])
    dst.create_bucket(Bucket=names["dr"], CreateBucketConfiguration={"LocationConstraint": c.regions["dr"]})
    for s3, side in ((src, "primary"), (dst, "dr")):
        s3.put_bucket_versioning(Bucket=names[side], VersioningConfiguration={"Status": "Enabled"})
    rule = {"ID": "all", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
            "DeleteMarkerReplication": {"Status": "Enabled"},
            "Destination": {"Bucket": f"arn:aws:s3:::{names['dr']}",
                            "EncryptionConfiguration": {"ReplicaKmsKeyID": c.keys["dr"].arn}}}
    config = {"Role": "arn:aws:iam::123456789012:role/replication", "Rules": [rule]}
    src.put_bucket_replication(Bucket=names["primary"], ReplicationConfiguration=config)
    (tmp_path / REPLICATION).write_text(json.dumps(config))
    contract = SimpleNamespace(buckets={"primary": SimpleNamespace(bucket=names["primary"])}, regions=c.regions,
                               active="primary")
    watcher = SimpleNamespace(path=tmp_path / "outputs.json", get=lambda: contract)
    calls: list[str] = []
    src.meta.events.register("before-call.s3.ListObjectVersions", lambda **_: calls.append("list"))
    replicator = Replicator(c.aws_endpoint("primary"), watcher, lambda: False)
    yield SimpleNamespace(src=src, dst=dst, names=names, calls=calls, replica_key=c.keys["dr"].arn,
                          replicator=replicator, run=lambda: replicator._pass(contract, src, dst))
    for s3, side in ((src, "primary"), (dst, "dr")):
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=names[side]):
            for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                s3.delete_object(Bucket=names[side], Key=v["Key"], VersionId=v["VersionId"])
        s3.delete_bucket(Bucket=names[side])


def _dr_versions(pair, key):
    found = pair.dst.list_object_versions(Bucket=pair.names["dr"], Prefix=key)
    return ([v for v in found.get("Versions", []) if v["Key"] == key],
            [m for m in found.get("DeleteMarkers", []) if m["Key"] == key])


def test_idle_polls_never_list_versions_and_changes_still_replicate(pair):
    pair.run()  # the first pass after a start reads the full version listing once
    pair.calls.clear()
    for _ in range(3):
        pair.run()
    assert pair.calls == []

    key = "hourly/new-object"
    pair.src.put_object(Bucket=pair.names["primary"], Key=key, Body=b"v1", Metadata={"backup-id": "b1"},
                        ChecksumAlgorithm="SHA256")
    pair.run()
    head = pair.dst.head_object(Bucket=pair.names["dr"], Key=key)
    assert head["Metadata"] == {"backup-id": "b1"}
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == pair.replica_key
    pair.src.delete_object(Bucket=pair.names["primary"], Key=key)
    pair.run()
    versions, markers = _dr_versions(pair, key)
    assert len(versions) == 1 and len(markers) == 1
    for _ in range(3):
        pair.run()
    assert pair.calls == []  # a new key and a delete marker are found with HeadObject


def test_an_overwrite_between_polls_replicates_every_version(pair):
    pair.run()
    key = "manifests/rewritten"
    pair.src.put_object(Bucket=pair.names["primary"], Key=key, Body=b"one")
    pair.run()
    for body in (b"two", b"three"):
        pair.src.put_object(Bucket=pair.names["primary"], Key=key, Body=body)
    pair.run()
    versions, _ = _dr_versions(pair, key)
    assert len(versions) == 3
    assert pair.dst.get_object(Bucket=pair.names["dr"], Key=key)["Body"].read() == b"three"


def test_a_failed_copy_is_retried_from_its_item_without_listing_every_version(pair, monkeypatch):
    """Under load copies time out; retrying must not cost a ListObjectVersions (every body, deep-copied) per pass."""
    from botocore.exceptions import ClientError

    from scripts.sandbox import replicator as module

    pair.run()
    pair.calls.clear()
    real, failures = pair.replicator._copy, [1]

    def flaky(*args, **kwargs):
        if failures:
            failures.pop()
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "reduce your request rate"}}, "PutObject")
        return real(*args, **kwargs)

    monkeypatch.setattr(pair.replicator, "_copy", flaky)
    monkeypatch.setattr(module, "RETRY_SECONDS", 0)
    key = "hourly/flaky-copy"
    pair.src.put_object(Bucket=pair.names["primary"], Key=key, Body=b"once")
    pair.run()  # the copy fails
    assert pair.replicator.snapshot()["pending"] == 1 and not _dr_versions(pair, key)[0]
    pair.run()  # and is retried
    versions, _ = _dr_versions(pair, key)
    assert len(versions) == 1 and pair.replicator.snapshot()["pending"] == 0
    assert pair.calls == []


def test_a_key_deleted_between_the_listing_and_its_head_still_replicates_the_rest(pair, monkeypatch):
    """A key listed, then deleted before its HeadObject, is a delete marker without a date: sorting it among
    dated versions raised TypeError, which killed the replicator's thread and stopped replication for good."""
    from scripts.sandbox import replicator as module

    pair.run()
    kept, gone = "hourly/kept", "hourly/deleted-in-between"
    for key in (kept, gone):
        pair.src.put_object(Bucket=pair.names["primary"], Key=key, Body=b"x")
    stale = module._listing(pair.src, pair.names["primary"])
    pair.src.delete_object(Bucket=pair.names["primary"], Key=gone)
    monkeypatch.setattr(module, "_listing", lambda s3, bucket: stale)
    pair.run()
    assert len(_dr_versions(pair, kept)[0]) == 1
    versions, markers = _dr_versions(pair, gone)
    assert len(versions) == 1 and len(markers) == 1  # as on S3: the version, then its delete marker


def test_the_thread_survives_a_pass_that_fails_unexpectedly(pair, monkeypatch):
    """Any error in a pass is reported in the snapshot and the next poll tries again; the thread never dies."""
    from scripts.sandbox import replicator as module
    from tests.sandbox.sandbox_wait import wait_until

    monkeypatch.setattr(module, "POLL_SECONDS", 0.05)
    real, failures = pair.replicator._pass, [1]

    def broken_once(*args, **kwargs):
        if failures:
            failures.pop()
            raise TypeError("not what a pass expects")
        return real(*args, **kwargs)

    monkeypatch.setattr(pair.replicator, "_pass", broken_once)
    monkeypatch.setattr(pair.replicator, "_follow_active", lambda contract, clients: None)
    key = "hourly/after-a-failed-pass"
    pair.src.put_object(Bucket=pair.names["primary"], Key=key, Body=b"x")
    pair.replicator.start()
    try:
        wait_until(lambda: _dr_versions(pair, key)[0], timeout=30)
        snapshot = pair.replicator.snapshot()
        assert snapshot["alive"] and "TypeError: not what a pass expects" in snapshot["lastError"]
    finally:
        pair.replicator.stop()
