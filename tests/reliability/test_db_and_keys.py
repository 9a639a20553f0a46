"""Cases 6, 9, 10, 11, 12, 16: keys that refuse, archives PostgreSQL cannot load, processes killed
for real (the restore between its swap steps, the server's backend under pg_dump), concurrent
writers, and replication that failed or stalled.

Every case asserts exit code and one line, the target's data untouched (or exactly the backup's),
no scratch database, no temp file (the package's ``private_tmp`` fixture), nothing published.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import psycopg
import pytest

from scripts import aws
from scripts.commands import backup
from scripts.vault import backup as vault_backup
from scripts.postgres import client as pg
from scripts.commands import restore
from scripts.vault import restore as vault_restore
from scripts.commands import verify
from scripts.vault import verify as vault_verify
from scripts.common import Exit, utcnow
from scripts.vault.layout import MANIFEST, object_key
from tests.vault.conftest import one_line_error, table_checksums
from tests.support.faultproxy import Fault, kms

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def ledger(rel):
    rel.create_db("rel_ledger", "CREATE TABLE entries (id int PRIMARY KEY, amount int)",
                  "INSERT INTO entries SELECT i, i FROM generate_series(1, 500) i")
    return "rel_ledger"


def take(rel, db: str):
    return vault_backup.perform_backup(rel.contract, "hourly", source_dsn=rel.dsn(db))


def target_with_marker(rel, name: str) -> dict:
    rel.create_db(name, "CREATE TABLE keep (n int)", "INSERT INTO keep VALUES (7)")
    return table_checksums(rel.dsn(name))


def restore_args(rel, target: str, *extra: str) -> list[str]:
    return rel.args("--target", rel.dsn(target), "--yes", *extra)


# --- case 6: keys -------------------------------------------------------------------------------

def test_case6_disabled_key_fails_closed_and_the_dr_key_still_restores(rel, ledger, proxied, capsys):
    """moto does not enforce key state, so the proxy answers the primary region's KMS as AWS does."""
    made = take(rel, ledger)
    wait_replicated(rel, made.id)
    disabled = (400, "DisabledException", f"{rel.contract.keys['primary'].arn} is disabled.")
    proxied.add(Fault("error", match=kms(), error=disabled))
    before_ids = rel.complete_ids()
    assert backup.main(rel.args_via("--tier", "hourly", "--source", rel.dsn(ledger))) == Exit.FAILED
    assert "KMS could not issue a data key: DisabledException" in one_line_error(capsys)
    assert rel.complete_ids() == before_ids and rel.open_uploads() == []
    before = target_with_marker(rel, "rel_ledger_t6")
    assert restore.main(rel.args_via("--target", rel.dsn("rel_ledger_t6"), "--backup", made.id, "--yes")) == Exit.FAILED
    assert "DisabledException" in one_line_error(capsys)
    assert table_checksums(rel.dsn("rel_ledger_t6")) == before and rel.scratch_databases() == []
    rc = restore.main(rel.args_via("--target", rel.dsn("rel_ledger_t6"), "--backup", made.id, "--yes", "--from-region", "dr"))
    assert rc == Exit.OK, capsys.readouterr().err  # the DR key alone still opens the backup
    assert table_checksums(rel.dsn("rel_ledger_t6")) == table_checksums(rel.dsn(ledger))


def put_manifest(rel, m, doc: dict) -> None:
    rel.s3().put_object(Bucket=rel.bucket(), Key=object_key(rel.contract, m.tier, m.database, m.id, MANIFEST),
                        Body=json.dumps(doc).encode())


@pytest.mark.parametrize("how", ["flipped", "other-backups-key", "missing"])
def test_case6_tampered_or_wrong_wrapped_key_fails_closed(rel, ledger, how, capsys):
    m = take(rel, ledger)
    doc = json.loads(json.dumps(dict(m.doc)))
    wrapped = doc["encryption"]["wrappedKeys"]
    if how == "flipped":
        blob = bytearray(base64.b64decode(wrapped["primary"]))
        blob[len(blob) // 2] ^= 0x01
        wrapped["primary"] = base64.b64encode(bytes(blob)).decode()
    elif how == "other-backups-key":
        wrapped["primary"] = take(rel, ledger).wrapped_keys["primary"]
    else:  # (the DR blob in the primary slot would be legitimate: a multi-region replica shares key material)
        del wrapped["primary"]
    put_manifest(rel, m, doc)
    before = target_with_marker(rel, "rel_ledger_t6b")
    rc = restore.main(restore_args(rel, "rel_ledger_t6b", "--backup", m.id, "--jobs", "2"))
    line = one_line_error(capsys)
    assert rc == Exit.FAILED and ("refuses its wrapped data key" in line or "no data key wrapped" in line), line
    assert table_checksums(rel.dsn("rel_ledger_t6b")) == before and rel.scratch_databases() == []


def test_case6_wrong_key_in_the_contract_fails_closed(rel, ledger, tmp_path, capsys):
    m = take(rel, ledger)
    other = aws.client(rel.contract, "kms", "primary").create_key(Description="not the vault key")["KeyMetadata"]["Arn"]
    doc = json.loads(rel.handle.outputs_path.read_text())
    doc["keys"]["primary"]["arn"] = other
    wrong = tmp_path / "outputs-wrong-key.json"
    wrong.write_text(json.dumps(doc))
    before = target_with_marker(rel, "rel_ledger_t6c")
    rc = restore.main(["--outputs", str(wrong), "--target", rel.dsn("rel_ledger_t6c"), "--backup", m.id, "--yes"])
    line = one_line_error(capsys)
    assert rc == Exit.FAILED and ("refuses its wrapped data key" in line or "AccessDenied" in line), line
    assert table_checksums(rel.dsn("rel_ledger_t6c")) == before and rel.scratch_databases() == []


# --- case 9: pg_restore stops at the first error ---------------------------------------------------

def test_case9_missing_role_stops_pg_restore_scratch_dropped_no_swap(rel, capsys):
    rel.execute("postgres", "DROP ROLE IF EXISTS rel_gone", "CREATE ROLE rel_gone")
    rel.create_db("rel_roles", "CREATE TABLE owned (n int)", "INSERT INTO owned VALUES (1), (2)",
                  "ALTER TABLE owned OWNER TO rel_gone")
    m = take(rel, "rel_roles")
    rel.execute("rel_roles", "REASSIGN OWNED BY rel_gone TO CURRENT_USER", "DROP OWNED BY rel_gone",
                "INSERT INTO owned VALUES (3)")
    rel.execute("postgres", "DROP ROLE rel_gone")
    before, dbs = table_checksums(rel.dsn("rel_roles")), rel.databases()
    assert restore.main(restore_args(rel, "rel_roles", "--backup", m.id)) == Exit.FAILED
    line = one_line_error(capsys)
    assert "pg_restore failed" in line and 'role "rel_gone" does not exist' in line
    assert table_checksums(rel.dsn("rel_roles")) == before and rel.databases() == dbs


def test_case9_corrupt_archive_stops_pg_restore_scratch_dropped_no_swap(rel, ledger, monkeypatch, capsys):
    """An archive whose envelope and checksums are fine but which pg_restore cannot read to the end."""
    real = vault_backup._dump_output

    def cut_short(proc, tail):
        whole = b"".join(real(proc, tail))
        yield whole[: len(whole) * 2 // 3]

    monkeypatch.setattr(vault_backup, "_dump_output", cut_short)
    m = take(rel, ledger)
    monkeypatch.undo()
    before = target_with_marker(rel, "rel_ledger_t9")
    dbs = rel.databases()
    assert restore.main(restore_args(rel, "rel_ledger_t9", "--backup", m.id)) == Exit.FAILED
    assert "pg_restore failed" in one_line_error(capsys)
    assert table_checksums(rel.dsn("rel_ledger_t9")) == before and rel.databases() == dbs


# --- case 10: restore SIGKILLed between the swap's two renames -----------------------------------

KILL_AFTER_FIRST_RENAME = """
import os, signal, sys
from scripts.commands import restore
from scripts.vault import restore as vault_restore
real = vault_restore._swap

class KillAfterRename:
    def __init__(self, conn):
        self.conn = conn
    def transaction(self):
        return self.conn.transaction()
    def execute(self, query, *args):
        out = self.conn.execute(query, *args)
        text = query.as_string(self.conn) if hasattr(query, "as_string") else str(query)
        if "RENAME" in text:
            os.kill(os.getpid(), signal.SIGKILL)  # dies inside the swap transaction
        return out

vault_restore._swap = lambda conn, *a, **kw: real(KillAfterRename(conn), *a, **kw)
sys.exit(restore.main(sys.argv[1:]))
"""


def kill_restore_mid_swap(rel, target: str, backup_id: str) -> tuple[int, str]:
    """The restore's exit status and its stderr (which says why, if it ended before the swap)."""
    proc = subprocess.run([sys.executable, "-c", KILL_AFTER_FIRST_RENAME, *restore_args(rel, target, "--backup", backup_id)],
                          cwd=REPO, capture_output=True, timeout=120)
    return proc.returncode, proc.stderr.decode(errors="replace")


def orphans(rel, target: str) -> list[str]:
    return [d for d in rel.databases() if d.startswith(f"{target}_restore_")]


def orphan_time(name: str):
    from datetime import datetime, timezone
    return datetime.strptime(name.rsplit("_", 1)[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


@pytest.fixture
def killed_mid_swap(rel, ledger):
    """A restore of a fresh backup into ``target`` SIGKILLed inside its swap; drops what it left at the end."""
    target = "rel_ledger_t10"
    before = target_with_marker(rel, target)
    m = take(rel, ledger)
    rc, err = kill_restore_mid_swap(rel, target, m.id)
    assert rc == -signal.SIGKILL, err
    (orphan,) = orphans(rel, target)
    yield target, m, before, orphan
    for name in orphans(rel, target):
        rel.execute("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_case10_killed_between_swap_steps_the_name_always_names_a_complete_database(rel, ledger, killed_mid_swap,
                                                                                    monkeypatch, capsys):
    target, m, before, orphan = killed_mid_swap
    assert table_checksums(rel.dsn(target)) == before  # the transaction died with the process: old db, old name
    assert not [d for d in rel.databases() if d.startswith(f"{target}_pre_restore_")]
    monkeypatch.setattr(vault_restore, "utcnow", lambda: orphan_time(orphan) + timedelta(seconds=2))
    assert restore.main(restore_args(rel, target, "--backup", m.id, "--json")) == Exit.OK  # a later rerun finishes
    assert json.loads(capsys.readouterr().out)["kept_previous_as"].startswith(f"{target}_pre_restore_")
    assert table_checksums(rel.dsn(target)) == table_checksums(rel.dsn(ledger))


def test_case10_an_immediate_rerun_finishes_and_removes_the_orphaned_scratch(rel, killed_mid_swap, monkeypatch, capsys):
    target, m, _, orphan = killed_mid_swap
    monkeypatch.setattr(vault_restore, "utcnow", lambda: orphan_time(orphan))  # the rerun lands in the same second
    rc = restore.main(restore_args(rel, target, "--backup", m.id))
    err = capsys.readouterr().err
    assert rc == Exit.OK, err
    assert orphans(rel, target) == []


# --- case 11: one consistent snapshot under pgbench -c 8 -----------------------------------------

TPCB_BALANCED = ("SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(tbalance) FROM pgbench_tellers), "
                 "(SELECT sum(bbalance) FROM pgbench_branches), (SELECT coalesce(sum(delta), 0) FROM pgbench_history), "
                 "(SELECT count(*) FROM pgbench_history)")


def pgbench(rel, db: str, *args: str, **popen) -> subprocess.Popen:
    conninfo, env = pg.client_args(rel.dsn(db))
    return subprocess.Popen([pg.binary("pgbench"), *args, conninfo], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, **popen)


def test_case11_backup_under_pgbench_is_one_consistent_snapshot(rel, capsys):
    rel.create_db("rel_bench")
    init = pgbench(rel, "rel_bench", "-i", "-s", "1", "-I", "dtgvpf", "-q")
    assert init.wait(120) == 0, init.stderr.read()
    load = pgbench(rel, "rel_bench", "-c", "8", "-j", "2", "-T", "15", "-n")
    try:
        time.sleep(2)
        assert backup.main(rel.args("--tier", "hourly", "--source", rel.dsn("rel_bench"), "--json")) == Exit.OK
        made = json.loads(capsys.readouterr().out)
        assert load.poll() is None, "pgbench finished before the backup did: the case proved nothing"
    finally:
        load.terminate()
        load.wait(30)
    assert made["rowCounts"]["public.pgbench_history"] > 0
    rc = restore.main(restore_args(rel, "rel_bench_copy", "--backup", made["id"], "--json"))
    assert rc == Exit.OK, capsys.readouterr().err  # the FKs were re-validated by pg_restore, counts by restore
    capsys.readouterr()
    (a, t, b, h, n), = rel.query("rel_bench_copy", TPCB_BALANCED)
    assert a == t == b == h and n == made["rowCounts"]["public.pgbench_history"]
    assert rel.query("rel_bench_copy", "SELECT count(*) FROM pgbench_history h LEFT JOIN pgbench_accounts a "
                     "USING (aid) WHERE a.aid IS NULL") == [(0,)]


# --- case 12: PostgreSQL killed mid-dump -----------------------------------------------------------

def test_case12_server_backend_killed_mid_dump_publishes_nothing(rel, ledger, capsys):
    before = rel.complete_ids()
    holder = psycopg.connect(rel.dsn(ledger))
    holder.execute("LOCK TABLE entries IN ACCESS EXCLUSIVE MODE")  # pg_dump blocks here, mid-run
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(
        rc=backup.main(rel.args("--tier", "hourly", "--source", rel.dsn(ledger)))))
    worker.start()
    try:
        pid = wait_for_dump_backend(rel)
        os.kill(pid, signal.SIGKILL)  # the backend serving pg_dump; the postmaster restarts them all
    finally:
        worker.join(120)
        holder.close()
    assert result["rc"] in (Exit.FAILED, Exit.NETWORK)
    line = one_line_error(capsys)
    assert "pg_dump failed" in line or "server closed the connection" in line or "terminat" in line, line
    wait_accepting(rel)
    assert rel.complete_ids() == before and rel.open_uploads() == []
    assert backup.main(rel.args("--tier", "hourly", "--source", rel.dsn(ledger))) == Exit.OK  # and the next run works
    capsys.readouterr()


def wait_for_dump_backend(rel, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = rel.query("postgres", "SELECT pid FROM pg_stat_activity WHERE application_name = 'pg_dump' "
                         "AND wait_event_type = 'Lock'")
        if rows:
            return rows[0][0]
        time.sleep(0.05)
    raise AssertionError("pg_dump never got to wait on the lock")


def wait_accepting(rel, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rel.query("postgres", "SELECT 1")
            return
        except psycopg.OperationalError:
            time.sleep(0.2)
    raise AssertionError("the primary did not come back after crash recovery")


# --- case 16: replication FAILED or PENDING too long -----------------------------------------------

@pytest.fixture
def replication_says(rel):
    """Make S3's HeadObject report a replication status (moto has no replication of its own)."""
    s3 = aws.client(rel.contract, "s3", "primary")
    status: dict = {}

    def rewrite(parsed, **kwargs):
        if "value" in status:
            parsed["ReplicationStatus"] = status["value"]

    s3.meta.events.register("after-call.s3.HeadObject", rewrite)
    try:
        yield status
    finally:
        s3.meta.events.unregister("after-call.s3.HeadObject", rewrite)


@pytest.mark.parametrize("status, minutes_later, breach", [
    ("FAILED", 0, "replication to the DR bucket FAILED"),
    ("PENDING", 20, "replication PENDING for more than 15 minutes"),
    ("PENDING", 5, None),
    ("COMPLETED", 20, None),
])
def test_case16_replication_failed_or_pending_too_long_is_an_rpo_breach(rel, ledger, replication_says, monkeypatch,
                                                                        status, minutes_later, breach, capsys):
    m = take(rel, ledger)
    wait_replicated(rel, m.id)
    replication_says["value"] = status
    later = utcnow() + timedelta(minutes=minutes_later)
    monkeypatch.setattr(vault_verify, "utcnow", lambda: later)
    rc = verify.main(rel.args("--backup", m.id, "--json"))
    report = json.loads(capsys.readouterr().out)
    if breach:
        assert rc == Exit.FAILED and f"{m.id}: {breach}" in report["failures"]
        assert report["backups"][0]["checks"]["primary-replication"] == "FAILED"
    else:
        assert rc == Exit.OK, report["failures"]


def wait_replicated(rel, backup_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if backup_id in rel.complete_ids("dr"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{backup_id} not replicated within {timeout}s")


@pytest.mark.parametrize("status_said, minutes_later, state", [("FAILED", 0, "FAIL"), ("PENDING", 20, "FAIL"),
                                                              ("PENDING", 5, "WARN")])
def test_case16_status_reports_the_missing_dr_copy_as_an_rpo_breach(rel, ledger, replication_says, monkeypatch,
                                                                    status_said, minutes_later, state, tmp_path, capsys):
    from scripts.commands import status
    m = take(rel, ledger)
    wait_replicated(rel, m.id)
    for name in ("dump", MANIFEST):  # the DR copy vanishes (delete markers), as if replication never happened
        rel.s3("dr").delete_object(Bucket=rel.bucket("dr"), Key=object_key(rel.contract, m.tier, m.database, m.id, name))
    replication_says["value"] = status_said
    later = utcnow() + timedelta(minutes=minutes_later)
    monkeypatch.setattr(status, "utcnow", lambda: later)
    rc = status.main(rel.args("--reports", str(tmp_path), "--json"))
    report = json.loads(capsys.readouterr().out)
    (line,) = [x for x in report["lines"] if x["check"] == "replication"]
    assert line["state"] == state and m.id in line["detail"] and status_said in line["detail"], line
    if state == "FAIL":
        assert rc == Exit.FAILED and not report["ok"]


def test_two_restores_in_the_same_second_keep_both_previous_databases(rel, ledger, monkeypatch, capsys):
    """The kept ``_pre_restore_<ts>`` name of an earlier restore in the same second is not reused."""
    target = "rel_ledger_same_second"
    target_with_marker(rel, target)
    m = take(rel, ledger)
    monkeypatch.setattr(vault_restore, "utcnow", lambda: orphan_time(f"{target}_20261124T044250Z"))
    kept = []
    for _ in range(2):
        assert restore.main(restore_args(rel, target, "--backup", m.id, "--json")) == Exit.OK
        kept.append(json.loads(capsys.readouterr().out)["kept_previous_as"])
    assert kept[0] != kept[1] and kept[1] == f"{kept[0]}_2"
    assert set(kept) <= set(rel.databases())
    assert table_checksums(rel.dsn(target)) == table_checksums(rel.dsn(ledger))
    for name in (*kept, target):
        rel.execute("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
