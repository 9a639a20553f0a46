"""Cases 1, 2, 5, 13, 14, 15: S3 and KMS faults injected for real by an HTTP proxy in front of moto.

Each case asserts the outcome: exit code, one line on stderr, the vault's catalog (no manifest
for a failed run), no incomplete multipart upload, the restore target untouched, no scratch
database, and that the next run without the fault succeeds.
"""
from __future__ import annotations

import json
import re

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from scripts.commands import backup
from scripts.vault import backup as vault_backup
from scripts.commands import restore
from scripts.commands import verify
from scripts.common import Exit
from scripts.vault.layout import object_key
from tests.vault.conftest import one_line_error, table_checksums
from tests.support.faultproxy import Fault, complete_multipart, get_object, s3_writes, upload_part

pytestmark = pytest.mark.integration

SMALL_PARTS = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20, max_concurrency=2)
SMALL_PARTS.max_in_memory_upload_chunks = 2


@pytest.fixture(scope="module")
def shop(rel):
    rel.create_db("rel_shop", "CREATE TABLE items (id int PRIMARY KEY, v text)",
                  "INSERT INTO items SELECT i, md5(i::text) FROM generate_series(1, 300) i")
    return "rel_shop"


@pytest.fixture(scope="module")
def bulky(rel):
    """~11 MB that does not compress: the stored object spans three 5 MiB parts."""
    rel.create_db("rel_bulky", "CREATE EXTENSION IF NOT EXISTS pgcrypto", "CREATE TABLE noise (b bytea)",
                  "INSERT INTO noise SELECT (SELECT string_agg(gen_random_bytes(1000), ''::bytea) "
                  "FROM generate_series(1, 1000 + i * 0)) FROM generate_series(1, 11) i")
    return "rel_bulky"


def run_backup(rel, db: str, *extra: str) -> int:
    return backup.main(rel.args_via("--tier", "hourly", "--source", rel.dsn(db), *extra))


def assert_nothing_published(rel, before: set[str]) -> None:
    assert rel.complete_ids() == before, "a failed backup left a manifest behind"
    assert rel.open_uploads() == [], "a failed backup left an incomplete multipart upload"


def test_case1_connection_reset_mid_multipart_upload(rel, bulky, proxied, few_retries, monkeypatch, capsys):
    monkeypatch.setattr(vault_backup, "TRANSFER", SMALL_PARTS)
    before = rel.complete_ids()
    fault = proxied.add(Fault("reset", match=upload_part(2)))  # every attempt at part 2 is reset
    assert run_backup(rel, bulky) == Exit.NETWORK
    line = one_line_error(capsys)
    assert "multipart upload aborted" in line and "Connection" in line
    assert fault.hits >= few_retries  # botocore retried the part before giving up
    assert_nothing_published(rel, before)
    proxied.clear()
    assert run_backup(rel, bulky, "--json") == Exit.OK
    assert json.loads(capsys.readouterr().out)["id"] in rel.complete_ids()
    assert rel.open_uploads() == []


def test_case1_single_reset_is_retried_within_the_run(rel, bulky, proxied, monkeypatch, capsys):
    monkeypatch.setattr(vault_backup, "TRANSFER", SMALL_PARTS)
    fault = proxied.add(Fault("reset", match=upload_part(2), times=1))
    assert run_backup(rel, bulky, "--json") == Exit.OK
    made = json.loads(capsys.readouterr().out)["id"]
    assert fault.hits == 1 and made in rel.complete_ids() and rel.open_uploads() == []


def test_case2_complete_multipart_answered_200_with_error_is_a_failure(rel, bulky, proxied, few_retries, monkeypatch,
                                                                       capsys):
    monkeypatch.setattr(vault_backup, "TRANSFER", SMALL_PARTS)
    before = rel.complete_ids()
    fault = proxied.add(Fault("error200", match=complete_multipart))
    assert run_backup(rel, bulky) != Exit.OK
    line = one_line_error(capsys)
    assert "InternalError" in line and "multipart upload aborted" in line
    assert fault.hits >= few_retries  # botocore saw the error inside the 200 and retried, then gave up
    assert_nothing_published(rel, before)
    proxied.clear()
    proxied.add(Fault("error200", match=complete_multipart, times=1))  # once only: the retry completes it
    assert run_backup(rel, bulky, "--json") == Exit.OK
    assert json.loads(capsys.readouterr().out)["id"] in rel.complete_ids()


@pytest.mark.parametrize("mode", ["503", "429"])
def test_case13_throttling_for_the_first_requests_is_absorbed_by_retries(rel, shop, proxied, mode, capsys):
    fault = proxied.add(Fault(mode, times=3))  # S3 and KMS alike: the first three requests of the run
    assert run_backup(rel, shop, "--json") == Exit.OK
    assert fault.hits == 3
    assert json.loads(capsys.readouterr().out)["id"] in rel.complete_ids()


def test_case13_a_black_holed_request_times_out_and_is_retried(rel, shop, proxied, monkeypatch, capsys):
    """A stall (the request is read, never answered) costs one read timeout, then the retry goes through."""
    from scripts import aws
    real = aws.botocore_config
    monkeypatch.setattr(aws, "botocore_config", lambda **kw: real(**{**kw, "read_timeout": 2}))
    aws._client.cache_clear()
    fault = proxied.add(Fault("stall", match=s3_writes, times=1))
    assert run_backup(rel, shop, "--json") == Exit.OK
    assert fault.hits == 1 and json.loads(capsys.readouterr().out)["id"] in rel.complete_ids()


@pytest.mark.parametrize("mode, what, code", [
    ("503", "SlowDown", Exit.FAILED),
    ("429", "TooManyRequestsException", Exit.FAILED),
])
def test_case13_unbounded_throttling_fails_cleanly(rel, shop, proxied, few_retries, mode, what, code, capsys):
    before = rel.complete_ids()
    match = s3_writes if mode == "503" else (lambda r: "x-amz-target" in r.headers)  # S3 puts / every KMS call
    proxied.add(Fault(mode, match=match))
    assert run_backup(rel, shop) == code
    line = one_line_error(capsys)
    assert what in line
    assert_nothing_published(rel, before)


def test_case14_dropped_download_is_retried_then_restores(rel, shop, proxied, capsys):
    made = vault_backup.perform_backup(rel.contract, "hourly", source_dsn=rel.dsn(shop))
    fault = proxied.add(Fault("truncate", match=get_object, times=1))
    target = "rel_shop_copy14"
    rc = restore.main(rel.args_via("--target", rel.dsn(target), "--backup", made.id, "--allow-rename", "--yes", "--json"))
    assert rc == Exit.OK, capsys.readouterr().err
    assert fault.hits == 1
    assert table_checksums(rel.dsn(target)) == table_checksums(rel.dsn(shop))


def test_case14_download_that_keeps_dropping_leaves_the_target_untouched(rel, shop, proxied, few_retries, capsys):
    made = vault_backup.perform_backup(rel.contract, "hourly", source_dsn=rel.dsn(shop))
    target = "rel_shop_target14"
    rel.create_db(target, "CREATE TABLE keep (n int)", "INSERT INTO keep VALUES (42)")
    before, dbs = table_checksums(rel.dsn(target)), rel.databases()
    proxied.add(Fault("truncate", match=get_object))
    for jobs in ("1", "2"):  # one job, and post-data with pg_restore -j 2
        rc = restore.main(rel.args_via("--target", rel.dsn(target), "--backup", made.id, "--jobs", jobs, "--allow-rename", "--yes"))
        assert rc in (Exit.NETWORK, Exit.FAILED)
        assert "download of s3://" in one_line_error(capsys)
        assert table_checksums(rel.dsn(target)) == before
        assert rel.databases() == dbs and rel.scratch_databases() == []


def test_case5_deleted_object_with_manifest_kept_is_skipped_and_named(rel, shop, capsys):
    good = vault_backup.perform_backup(rel.contract, "hourly", source_dsn=rel.dsn(shop))
    gone = vault_backup.perform_backup(rel.contract, "hourly", source_dsn=rel.dsn(shop))
    rel.s3().delete_object(Bucket=rel.bucket(), Key=object_key(rel.contract, "hourly", gone.database, gone.id))
    assert gone.id not in rel.complete_ids() and good.id in rel.complete_ids()
    target = "rel_shop_latest5"
    assert restore.main(rel.args("--target", rel.dsn(target), "--latest", "--database", shop, "--allow-rename", "--yes", "--json")) == Exit.OK
    assert json.loads(capsys.readouterr().out)["backupId"] != gone.id
    assert restore.main(rel.args("--target", rel.dsn(target), "--backup", gone.id, "--allow-rename", "--yes")) == Exit.REFUSED
    assert "stored object missing" in one_line_error(capsys)
    assert verify.main(rel.args("--backup", gone.id, "--json")) == Exit.FAILED
    report = json.loads(capsys.readouterr().out)
    assert any(gone.id in f and "stored object missing" in f for f in report["failures"])


def test_case15_locked_version_delete_refused_and_no_bypass_is_ever_sent(rel, shop, proxied, capsys):
    made = vault_backup.perform_backup(rel.contract, "hourly", source_dsn=rel.dsn(shop))
    key = object_key(rel.contract, "hourly", made.database, made.id)
    with pytest.raises(ClientError) as refused:
        rel.s3().delete_object(Bucket=rel.bucket(), Key=key, VersionId=made.version_id)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert made.id in rel.complete_ids()
    # Every request the tools send through the proxy (backup, list, verify, restore) is recorded.
    assert run_backup(rel, shop) == Exit.OK
    rel.wait_replicated(made.id)  # verify checks the DR copy: wait for the (asynchronous) replication
    assert verify.main(rel.args_via("--backup", made.id)) == Exit.OK
    assert restore.main(rel.args_via("--target", rel.dsn("rel_shop_copy15"), "--backup", made.id, "--allow-rename", "--yes")) == Exit.OK
    capsys.readouterr()
    assert proxied.requests
    assert not [r for r in proxied.requests if "x-amz-bypass-governance-retention" in r.headers]


def test_case15_no_tool_can_send_a_governance_bypass():
    """Static: no module under scripts/ names the bypass parameter or header at all."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[2] / "scripts"
    pattern = re.compile(r"BypassGovernanceRetention|bypass-governance", re.I)
    offenders = [str(p) for p in root.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_case8_incomplete_and_failed_backups_are_ignored_by_time_selection(rel, shop, capsys):
    from datetime import timedelta
    from scripts.common import iso
    from scripts.vault.layout import MANIFEST
    good = vault_backup.perform_backup(rel.contract, "hourly", source_dsn=rel.dsn(shop))
    incomplete = vault_backup.perform_backup(rel.contract, "hourly", source_dsn=rel.dsn(shop))
    failed = vault_backup.perform_backup(rel.contract, "hourly", source_dsn=rel.dsn(shop))
    manifest = lambda m: object_key(rel.contract, "hourly", m.database, m.id, MANIFEST)  # noqa: E731
    rel.s3().delete_object(Bucket=rel.bucket(), Key=manifest(incomplete))  # a delete marker: no manifest
    rel.s3().put_object(Bucket=rel.bucket(), Key=manifest(failed), Body=b'{"status": "FAILED"}')
    cut = iso(failed.snapshot_at + timedelta(seconds=1))
    target = "rel_shop_before8"
    assert restore.main(rel.args("--target", rel.dsn(target), "--before", cut, "--database", shop, "--allow-rename", "--yes", "--json")) == Exit.OK
    assert json.loads(capsys.readouterr().out)["backupId"] == good.id
    for m in (incomplete, failed):
        assert restore.main(rel.args("--target", rel.dsn(target), "--backup", m.id, "--allow-rename", "--yes")) == Exit.REFUSED
        assert "is not usable" in one_line_error(capsys)
