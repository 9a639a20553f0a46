"""Restore-test evidence: `verify --from-region dr --evidence` locks its record into the DR vault; `status` reads it."""
from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from scripts.commands import status, verify
from scripts.common import utcnow
from scripts.preview import awsrules
from scripts.preview.awsrules import AwsRuleError
from scripts.sandbox import control
from scripts.vault import backup as vault_backup
from scripts.vault import evidence
from tests.vault.test_faults import wait_replicated

DATA = ["CREATE TABLE audit_me (id bigserial PRIMARY KEY, note text)",
        "INSERT INTO audit_me (note) SELECT 'row ' || i FROM generate_series(1, 120) i"]


@pytest.fixture(scope="module")
def verified(env):
    """One backup, replicated, verified from the DR vault alone (primary region blocked) with --evidence."""
    env.create_db("audited", *DATA)
    m = vault_backup.perform_backup(env.contract, "hourly", source_dsn=env.dsn("audited"))
    wait_replicated(env, m.id)
    puts = []
    events = evidence.aws.client(env.contract, "s3", "dr").meta.events

    def capture(params, **_):
        if params.get("Key", "").startswith(evidence.PREFIX):
            puts.append(dict(params))

    events.register("provide-client-params.s3.PutObject", capture, unique_id="evidence-capture")
    primary_region = env.contract.regions["primary"]
    control.block_region(env.handle.state, primary_region)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(evidence.JOB_ENV, "pilotlight-dr-audited-verify")
            rc = verify.main(env.args("--backup", m.id, "--database", "audited", "--from-region", "dr",
                                      "--test-restore", "--server", env.dsn("postgres"), "--evidence", "--json"))
    finally:
        control.unblock_region(env.handle.state, primary_region)
        events.unregister("provide-client-params.s3.PutObject", unique_id="evidence-capture")
    return m, rc, puts


def test_verify_from_dr_writes_a_locked_evidence_record_auditors_can_read(env, verified, capsys):
    m, rc, puts = verified
    assert rc == 0
    (put,) = puts
    key = put["Key"]
    assert key.startswith("evidence/audited/") and key.endswith("-pilotlight-dr-audited-verify.json")
    s3, bucket = env.s3("dr"), env.bucket("dr")
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ObjectLockMode"] == env.contract.object_lock_mode
    assert head["ObjectLockRetainUntilDate"] > utcnow() + timedelta(days=env.contract.object_lock_days - 1)
    assert head["ServerSideEncryption"] == "aws:kms"
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    doc = json.loads(body)
    assert doc["ok"] and doc["side"] == "dr" and doc["region"] == env.contract.regions["dr"]
    assert doc["identity"]["job"] == "pilotlight-dr-audited-verify" and doc["durationSeconds"] > 0
    (checked,) = doc["backups"]
    assert checked["id"] == m.id and checked["problems"] == []
    assert checked["checks"] == {"dr-object": "ok", "dr-manifest-seal": "ok", "dr-sha256-decrypt-with-dr-key": "ok",
                                 "test-restore": "ok"}
    trial = checked["testRestore"]
    assert trial["rowCounts"]["public.audit_me"] == 120 and trial["rows"] == 120 and trial["dropped"] is True
    assert "password" not in body.lower() and "secret" not in body.lower()


def test_an_evidence_record_cannot_be_deleted_inside_its_retention(env, verified):
    _, _, (put,) = verified
    s3, bucket = env.s3("dr"), env.bucket("dr")
    version = s3.head_object(Bucket=bucket, Key=put["Key"])["VersionId"]
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=bucket, Key=put["Key"], VersionId=version)
    assert err.value.response["Error"]["Code"] == "AccessDenied"


def test_the_evidence_put_meets_s3s_object_lock_checksum_rule(verified):
    _, _, (put,) = verified
    awsrules.check_request("s3:PutObject", put, object_lock=True)
    assert put["IfNoneMatch"] == "*"  # the bucket policy denies puts that could overwrite
    bare = {k: v for k, v in put.items() if k not in ("ChecksumAlgorithm", "ContentMD5")}
    with pytest.raises(AwsRuleError) as err:
        awsrules.check_request("s3:PutObject", bare, object_lock=True)
    assert err.value.rule.id == "s3-object-lock-put-needs-checksum" and "API_PutObject" in err.value.rule.cite


def _status_line(env, capsys) -> dict:
    capsys.readouterr()
    status.main(env.args("--json"))
    lines = json.loads(capsys.readouterr().out)["lines"]
    return {(line["check"], line["subject"]): line for line in lines}


def test_status_shows_the_newest_evidence_and_warns_when_it_failed_or_is_stale(env, verified, capsys):
    contract = env.contract
    orders = contract.database().name
    base = {"side": "dr", "database": orders, "bucket": env.bucket("dr"), "backups": [], "tiers": {}}
    fresh = evidence.record(contract, {**base, "ok": True, "failures": []}, utcnow(), utcnow())
    evidence.write(contract, fresh)
    line = _status_line(env, capsys)[("restore test", orders)]
    assert line["state"] == "OK" and line["value"].startswith("PASS") and "evidence/" + orders in line["detail"]

    failed = evidence.record(contract, {**base, "ok": False, "failures": ["x: DR copy does not decrypt"]},
                             utcnow(), utcnow() + timedelta(seconds=1))
    evidence.write(contract, failed)
    line = _status_line(env, capsys)[("restore test", orders)]
    assert line["state"] == "WARN" and line["value"].startswith("FAILED") and "does not decrypt" in line["detail"]


def test_status_warns_on_stale_evidence(env, capsys):
    contract = env.contract
    old = utcnow() - timedelta(days=3)
    doc = evidence.record(contract, {"side": "dr", "database": "stale_db", "bucket": env.bucket("dr"), "ok": True,
                                     "backups": [], "tiers": {}, "failures": []}, old, old)
    evidence.write(contract, doc)
    assert evidence.newest(contract, "dr", "stale_db")[1]["finishedAt"] == doc["finishedAt"]
    (line,) = status.evidence_line(contract, dataclasses.replace(contract.database(), name="stale_db"), utcnow())
    assert line.state == "WARN" and line.value.startswith("PASS 3 d")
