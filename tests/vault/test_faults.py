"""Fail-safe behaviour: corrupt, truncated and swapped objects, failed and killed uploads, bad input.

Every case asserts the outcome: exit code, one-line message, the target's data untouched and
no scratch database or multipart upload left behind.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from scripts import aws
from scripts.commands import backup
from scripts.vault import backup as vault_backup
from scripts.vault import envelope
from scripts.commands import restore
from scripts.commands import verify
from scripts.common import Exit, iso
from scripts.vault.stream import download
from scripts.vault.layout import MANIFEST, list_backups, object_key
from tests.vault.conftest import one_line_error, table_checksums

SHOP = ["CREATE TABLE items (id int PRIMARY KEY, v text)",
        "INSERT INTO items SELECT i, md5(i::text) FROM generate_series(1, 100) i"]


@pytest.fixture(scope="module")
def shop(env):
    env.create_db("shop", *SHOP)
    return "shop"


def take(env, db: str, tier: str = "hourly"):
    return vault_backup.perform_backup(env.contract, tier, source_dsn=env.dsn(db))


def stored(env, m, side: str = "primary") -> bytes:
    return b"".join(download(env.contract, side, m))


def put_object(env, m, body: bytes, side: str = "primary") -> None:
    """A new version of the backup's object, as an attacker or a bad disk would leave it."""
    env.s3(side).put_object(Bucket=env.bucket(side), Key=object_key(env.contract, m.tier, m.database, m.id), Body=body)


def scratch_left(env) -> list[str]:
    return [d for d in env.databases() if "_restore_" in d and "_pre_restore_" not in d]


def restore_args(env, target: str, *extra: str) -> list[str]:
    return env.args("--target", env.dsn(target), *extra)


def test_flipped_byte_refused_before_any_database(env, shop, capsys):
    m = take(env, shop)
    blob = bytearray(stored(env, m))
    blob[len(blob) // 2] ^= 0x01
    put_object(env, m, bytes(blob))
    before, dbs = table_checksums(env.dsn(shop)), env.databases()
    assert restore.main(restore_args(env, shop, "--backup", m.id, "--yes")) == Exit.FAILED
    assert "overwritten" in one_line_error(capsys)
    assert table_checksums(env.dsn(shop)) == before and env.databases() == dbs
    assert verify.main(env.args("--backup", m.id, "--json")) == Exit.FAILED
    report = json.loads(capsys.readouterr().out)
    assert any(m.id in f for f in report["failures"])


def test_corrupt_dr_copy_fails_closed_mid_stream(env, shop, capsys):
    """In the DR bucket versions are not comparable, so authentication catches it while streaming."""
    m = take(env, shop)
    wait_replicated(env, m.id)
    blob = bytearray(stored(env, m, "dr"))
    blob[-100] ^= 0x80
    put_object(env, m, bytes(blob), side="dr")
    before = table_checksums(env.dsn(shop))
    assert restore.main(restore_args(env, shop, "--backup", m.id, "--from-region", "dr", "--yes")) == Exit.FAILED
    assert "fails authentication" in one_line_error(capsys)
    assert table_checksums(env.dsn(shop)) == before and not scratch_left(env)


def test_truncated_object_is_skipped_by_latest_and_named_by_verify(env, shop, capsys):
    good = take(env, shop)
    bad = take(env, shop)
    put_object(env, bad, stored(env, bad)[:-500])
    assert restore.main(restore_args(env, "shop_latest", "--latest", "--json", "--yes")) == 0
    assert json.loads(capsys.readouterr().out)["backup_id"] == good.id
    assert restore.main(restore_args(env, shop, "--backup", bad.id, "--yes")) == Exit.REFUSED
    assert "bytes, manifest says" in one_line_error(capsys)
    assert verify.main(env.args("--all", "--json")) == Exit.FAILED
    assert any(f.startswith(bad.id) for f in json.loads(capsys.readouterr().out)["failures"])


def test_ciphertext_swapped_between_backups_is_rejected(env, shop):
    a, b = take(env, shop), take(env, shop)
    key_b = envelope.unwrap(env.contract, "dr", b.wrapped_keys, b.id, b.database)
    blob_a, blob_b = stored(env, a), stored(env, b)
    dec = envelope.Decryptor(b.id, lambda header: key_b)
    with pytest.raises(envelope.IntegrityError, match="another backup"):
        list(dec.feed(blob_a))
    head_len = len(envelope.MAGIC) + 4 + int.from_bytes(blob_b[7:11], "big")
    spliced = blob_b[:head_len] + blob_a[head_len:]  # b's header (and key) over a's frames
    dec = envelope.Decryptor(b.id, lambda header: key_b)
    with pytest.raises(envelope.IntegrityError, match="fails authentication"):
        list(dec.feed(spliced)) + list(dec.close())
    with pytest.raises(envelope.IntegrityError):  # a's wrapped key does not unwrap under b's context
        envelope.unwrap(env.contract, "dr", a.wrapped_keys, b.id, b.database)


def test_before_picks_the_newest_strictly_earlier_backup(env, shop, capsys):
    made = []
    for marker in (1, 2, 3):
        env.execute(shop, "CREATE TABLE IF NOT EXISTS marker (n int)", "DELETE FROM marker",
                    f"INSERT INTO marker VALUES ({marker})")
        made.append(take(env, shop, "daily"))
    cut = made[2].snapshot_at - timedelta(microseconds=1)
    assert restore.main(restore_args(env, "shop_before", "--before", iso(cut), "--yes", "--json")) == 0
    assert json.loads(capsys.readouterr().out)["backup_id"] == made[1].id
    assert env.query("shop_before", "SELECT n FROM marker") == [(2,)]
    oldest = min(e.time for e in list_backups(env.contract, "primary"))
    assert restore.main(restore_args(env, "shop_before", "--before", iso(oldest), "--yes")) == Exit.FAILED
    assert "no valid backup" in one_line_error(capsys)
    assert restore.main(restore_args(env, "shop_before", "--before", "2026-11-24T10:00:00", "--yes")) == Exit.USAGE
    assert "no time zone" in one_line_error(capsys)


@pytest.fixture(scope="module")
def noisy(env, shop):
    """~12 MB that does not compress, so the stored object spans several 5 MiB parts."""
    env.execute(shop, "CREATE EXTENSION IF NOT EXISTS pgcrypto", "CREATE TABLE noise (b bytea)",
                "INSERT INTO noise SELECT (SELECT string_agg(gen_random_bytes(1000), ''::bytea) "
                "FROM generate_series(1, 1000 + i * 0)) FROM generate_series(1, 12) i")
    yield shop
    env.execute(shop, "DROP TABLE noise")


def test_failed_part_aborts_upload_and_next_run_succeeds(env, noisy, capsys, monkeypatch):
    shop = noisy
    monkeypatch.setattr(vault_backup, "TRANSFER", small_parts())
    s3 = aws.client(env.contract, "s3", "primary")
    before = {e.id for e in list_backups(env.contract, "primary")}

    def fail_second_part(params, **kwargs):
        if "partNumber=2" in params.get("url", ""):
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected part failure"}}, "UploadPart")

    s3.meta.events.register("before-call.s3.UploadPart", fail_second_part)
    try:
        rc = backup.main(env.args("--tier", "hourly", "--source", env.dsn(shop)))
    finally:
        s3.meta.events.unregister("before-call.s3.UploadPart", fail_second_part)
    assert rc == Exit.FAILED
    assert "injected part failure" in one_line_error(capsys)
    assert not s3.list_multipart_uploads(Bucket=env.bucket()).get("Uploads")
    assert {e.id for e in list_backups(env.contract, "primary")} == before
    assert backup.main(env.args("--tier", "hourly", "--source", env.dsn(shop))) == 0


def test_killed_backup_leaves_nothing_valid_and_rerun_cleans_up(env, noisy, capsys):
    shop = noisy
    s3 = aws.client(env.contract, "s3", "primary")
    before = {e.id for e in list_backups(env.contract, "primary") if e.complete}
    proc = subprocess.Popen([sys.executable, "-m", "scripts", "backup", *env.args("--tier", "hourly", "--source", env.dsn(shop))],
                            env={**os.environ, "PILOTLIGHT_PART_MIB": "5"}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            uploads = s3.list_multipart_uploads(Bucket=env.bucket()).get("Uploads", [])
            if uploads and s3.list_parts(Bucket=env.bucket(), Key=uploads[0]["Key"],
                                         UploadId=uploads[0]["UploadId"]).get("Parts"):
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the backup finished before it could be killed"
    assert {e.id for e in list_backups(env.contract, "primary") if e.complete} == before
    assert backup.main(env.args("--tier", "hourly", "--source", env.dsn(shop))) == 0
    capsys.readouterr()
    assert not s3.list_multipart_uploads(Bucket=env.bucket()).get("Uploads")


def test_partial_restore_into_new_schema(env, shop, capsys):
    m = take(env, shop)
    env.execute(shop, "DELETE FROM items WHERE id > 90")
    args = restore_args(env, shop, "--backup", m.id, "--tables", "items", "--into-schema", "recovered", "--yes", "--json")
    assert restore.main(args) == 0
    assert json.loads(capsys.readouterr().out)["row_counts"] == {"recovered.items": 100}
    assert env.query(shop, "SELECT count(*) FROM items") == [(90,)]
    assert env.query(shop, "SELECT count(*) FROM recovered.items WHERE id > 90") == [(10,)]
    assert restore.main(args) == Exit.REFUSED  # never touches an existing schema
    assert "already exists" in one_line_error(capsys)
    assert not scratch_left(env)


def test_connected_sessions_refuse_unless_terminated(env, shop, capsys):
    import psycopg
    take(env, shop)
    holder = psycopg.connect(env.dsn(shop))
    try:
        assert restore.main(restore_args(env, shop, "--latest", "--yes")) == Exit.REFUSED
        assert "session(s) connected" in one_line_error(capsys)
        assert restore.main(restore_args(env, shop, "--latest", "--yes", "--terminate-sessions")) == 0
    finally:
        holder.close()


@pytest.mark.parametrize("argv, code, text", [
    (["--target", "host=127.0.0.1 port=1 dbname=x user=u password=hunter2", "--latest", "--yes"], Exit.NETWORK, "cannot connect"),
    (["--target", "dbname=shop", "--backup", "orders-20200101T000000000000Z-abcdef", "--yes"], Exit.USAGE, "unknown backup id"),
    (["--target", "dbname=shop", "--backup", "../../etc/passwd", "--yes"], Exit.USAGE, "is not a backup id"),
    (["--target", "not a dsn ===", "--latest"], Exit.USAGE, "not a valid PostgreSQL connection string"),
    (["--target", "dbname=shop", "--latest", "--tables", "items"], Exit.USAGE, "go together"),
])
def test_bad_input_one_clear_line(env, shop, capsys, argv, code, text):
    if "port=1" in argv[1]:
        take(env, shop)
    assert restore.main(env.args(*argv)) == code
    line = one_line_error(capsys)
    assert text in line and "hunter2" not in line


def test_missing_outputs_file(tmp_path, capsys):
    for main, argv in ((backup.main, ["--tier", "daily"]), (restore.main, ["--target", "dbname=x", "--latest"]),
                       (verify.main, [])):
        assert main(["--outputs", str(tmp_path / "nope.json"), *argv]) == Exit.USAGE
        assert "outputs file not found" in one_line_error(capsys)


def test_wrong_source_dsn_publishes_nothing(env, capsys):
    before = {e.id for e in list_backups(env.contract, "primary")}
    assert backup.main(env.args("--tier", "daily", "--source", env.dsn("no_such_db"))) == Exit.NETWORK
    assert "no_such_db" in one_line_error(capsys)
    assert {e.id for e in list_backups(env.contract, "primary")} == before


def small_parts():
    from boto3.s3.transfer import TransferConfig
    cfg = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20, max_concurrency=2)
    cfg.max_in_memory_upload_chunks = 2
    return cfg


def wait_replicated(env, backup_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.id == backup_id and e.complete for e in list_backups(env.contract, "dr")):
            return
        time.sleep(0.2)
    raise AssertionError(f"{backup_id} not replicated within {timeout}s")


def test_manifest_written_last(env, shop):
    m = take(env, shop)
    s3 = env.s3()
    versions = s3.list_object_versions(Bucket=env.bucket(), Prefix=f"{env.contract.tiers['hourly'].prefix}orders/{m.id}/")
    by_key = {v["Key"].rsplit("/", 1)[1]: v["LastModified"] for v in versions["Versions"]}
    assert by_key[MANIFEST] >= by_key["dump"]


def test_pg_dump_dying_midway_publishes_nothing(env, shop, capsys):
    import threading

    import psycopg
    before = {e.id for e in list_backups(env.contract, "primary")}
    holder = psycopg.connect(env.dsn(shop))
    holder.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")  # pg_dump will wait here, snapshot taken
    result: dict = {}
    worker = threading.Thread(target=lambda: result.setdefault(
        "rc", backup.main(env.args("--tier", "hourly", "--source", env.dsn(shop)))))
    worker.start()
    try:
        deadline = time.monotonic() + 30
        killed = []
        while not killed and time.monotonic() < deadline:
            killed = env.query("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                           "WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'")
            time.sleep(0.05)
        assert killed, "pg_dump never waited on the lock"
    finally:
        holder.rollback()
        holder.close()
        worker.join(60)
    assert result["rc"] == Exit.FAILED
    assert "pg_dump failed" in one_line_error(capsys)
    assert {e.id for e in list_backups(env.contract, "primary")} == before
    assert not env.s3().list_multipart_uploads(Bucket=env.bucket()).get("Uploads")


def test_scratch_left_by_a_killed_restore_is_dropped_by_the_next(env, shop, capsys):
    take(env, shop)
    env.create_db("shop_restore_20200101T000000Z")  # what a SIGKILLed restore leaves behind
    assert restore.main(restore_args(env, shop, "--latest", "--yes", "--terminate-sessions")) == 0
    capsys.readouterr()
    assert "shop_restore_20200101T000000Z" not in env.databases() and not scratch_left(env)


LEDGER = ["CREATE TABLE entries (id int PRIMARY KEY, amount int)",
          "INSERT INTO entries SELECT i, i * 10 FROM generate_series(1, 50) i"]


def rewrite_manifest(env, m, doc: dict) -> None:
    """What someone with the writer's rights can do: put a new version of the manifest (raw client, no If-None-Match)."""
    env.s3().put_object(Bucket=env.bucket(), Key=object_key(env.contract, m.tier, m.database, m.id, MANIFEST),
                        Body=json.dumps(doc).encode(), ServerSideEncryption="aws:kms",
                        SSEKMSKeyId=env.contract.keys["primary"].arn)


def test_rewritten_manifest_with_an_earlier_snapshot_is_refused_by_verify_and_restore_before(env, capsys):
    env.create_db("ledger", *LEDGER)
    m = take(env, "ledger")
    forged = json.loads(json.dumps(m.doc))
    earlier = m.snapshot_at - timedelta(hours=2)
    forged["times"]["snapshot"] = iso(earlier)
    rewrite_manifest(env, m, forged)

    assert verify.main(env.args("--backup", m.id, "--json")) == Exit.FAILED
    report = json.loads(capsys.readouterr().out)
    (checked,) = report["backups"]
    assert checked["checks"]["primary-manifest-seal"] == "FAILED"
    assert any("seal does not verify" in p for p in checked["problems"]), checked["problems"]

    before = iso(earlier + timedelta(minutes=30))
    assert restore.main(restore_args(env, "ledger", "--before", before, "--yes")) == Exit.FAILED
    assert "no valid backup of" in capsys.readouterr().err
    assert env.query("ledger", "SELECT count(*) FROM entries") == [(50,)]  # untouched


def test_manifest_resealed_under_a_fresh_data_key_is_refused(env, capsys):
    """The writer may generate data keys for any backup id: a re-sealed manifest still names other keys."""
    env.create_db("ledger2", *LEDGER)
    m = take(env, "ledger2")
    fresh = envelope.generate_data_key(env.contract, m.id, m.database)
    forged = {k: v for k, v in json.loads(json.dumps(m.doc)).items() if k != "seal"}
    forged["encryption"]["wrappedKeys"] = fresh.wrapped
    forged["times"]["snapshot"] = iso(m.snapshot_at - timedelta(hours=2))
    forged["seal"] = envelope.seal(forged, envelope.seal_key(fresh.plaintext, m.id))
    rewrite_manifest(env, m, forged)
    assert restore.main(restore_args(env, "ledger2", "--backup", m.id, "--yes")) == Exit.FAILED
    assert "other data keys than the stored object" in one_line_error(capsys)


def test_backup_objects_are_written_once(env, shop):
    from scripts.vault.layout import write_once

    m = take(env, shop)
    key = object_key(env.contract, m.tier, m.database, m.id, MANIFEST)
    with write_once(env.s3(), key.rsplit("/", 1)[0] + "/") as s3, pytest.raises(ClientError) as err:
        s3.put_object(Bucket=env.bucket(), Key=key, Body=b"{}")
    assert err.value.response["Error"]["Code"] == "PreconditionFailed"
