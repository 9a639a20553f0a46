"""Safety of cutover and failback on a live sandbox: the fence, divergence, convergence, paused replay.

Each test breaks something the way it happens in the field and asserts what the commands did
about it, then leaves the sandbox in its normal topology (failback builds new instances).
"""
import json
import time

import psycopg
import pytest

from scripts.commands import cutover, failback, status
from scripts.common import Exit, PilotlightError
from scripts.drills.heartbeat import StaleWriter, create_table, drop_table
from scripts.failover import dns as dnscheck
from scripts.failover import records
from scripts.failover.service import service_dsn
from scripts.postgres import replication
from scripts.postgres.dsn import side_dsn

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def run_json(capsys, module, argv):
    rc = module.main([*argv, "--json"])
    out = capsys.readouterr()
    return rc, (json.loads(out.out) if out.out.strip() else None), out.err


def fail_back(sb, capsys, *extra):
    rc, result, err = run_json(capsys, failback, ["--to", "primary", "--yes", "--outputs", str(sb.outputs_path), *extra])
    assert rc == Exit.OK, err
    c = sb.reload()
    assert replication.state(c, c.database(), "dr").role == "replica"
    return result


@pytest.mark.parametrize("superuser", [False, True], ids=["app-user", "superuser"])
def test_a_writer_overriding_the_read_only_default_loses_no_acknowledged_write(module_sandbox, capsys, superuser):
    c = module_sandbox.reload()
    db = c.database()
    create_table(c, db, "primary")
    replication.wait_caught_up(c, db, "dr", "primary", 30)
    writer = StaleWriter(c, db, side="primary", superuser=superuser).start()
    try:
        assert writer.wait_for(lambda a: True, 10) is not None, writer.last_error  # it writes through the override
        rc, result, err = run_json(capsys, cutover, ["--to", "dr", "--yes", "--outputs", str(module_sandbox.outputs_path)])
        time.sleep(0.5)  # the writer keeps trying against the fenced side
    finally:
        writer.stop()
    assert rc == Exit.OK, err
    assert result["fenceHeld"] is True
    lost = writer.lost_after(c, db, "dr")
    assert writer.acks and not lost, f"{len(lost)} acknowledged write(s) on the old primary missing on dr"
    assert writer.failures > 0  # it was stopped, not ignored
    fail_back(module_sandbox, capsys)
    c = module_sandbox.contract
    drop_table(c, c.database(), "primary")


def test_failback_refuses_to_discard_writes_only_the_old_primary_has_then_backs_them_up(module_sandbox, capsys):
    c = module_sandbox.reload()
    db = c.database()
    outputs = str(module_sandbox.outputs_path)
    assert run_json(capsys, cutover, ["--to", "dr", "--yes", "--outputs", outputs])[0] == Exit.OK
    # Someone lifts the fence on the old primary and writes there: both sides took writes.
    replication.unfence(c, db, "primary")
    with psycopg.connect(side_dsn(c, "primary", db), autocommit=True) as conn:
        conn.execute("insert into customers (name, email) values ('only on the old primary', 'split@example.com')")
    with psycopg.connect(service_dsn(c, db), autocommit=True) as conn:
        conn.execute("insert into customers (name, email) values ('on dr', 'dr-side@example.com')")

    rc, _, err = run_json(capsys, failback, ["--to", "primary", "--yes", "--outputs", outputs])
    assert rc == Exit.REFUSED
    assert "diverged" in err and "public.customers: 1" in err and "--discard-diverged" in err
    assert replication.state(c, db, "dr").role == "primary" and dnscheck.answering_side(c, db) == "dr"  # untouched

    result = fail_back(module_sandbox, capsys, "--discard-diverged")
    assert result["divergence"]["rows"] == {"public.customers": 1} and result["discardedBackup"]
    c = module_sandbox.contract
    with psycopg.connect(service_dsn(c, c.database()), autocommit=True) as conn:
        assert conn.execute("select count(*) from customers where email = 'dr-side@example.com'").fetchone()[0] == 1


def test_an_interrupted_cutover_converges_on_rerun_and_status_shows_the_fence(module_sandbox, capsys, monkeypatch):
    c = module_sandbox.reload()
    db = c.database()
    outputs = str(module_sandbox.outputs_path)

    # Killed right after the fence (SIGKILL between steps): status names the fence left behind.
    replication.fence(c, db, "primary")
    rc, lines, _ = run_json(capsys, status, ["--outputs", outputs])
    fence = [line for line in lines["lines"] if line["check"] == "fence"]
    assert fence[0]["state"] == "FAIL" and "cutover --to dr --yes" in fence[0]["detail"]

    # Rerun, and this time DNS does not answer during verification: the command says what is done.
    def dns_down(*args, **kwargs):
        raise PilotlightError("cannot list the nameservers of example.com: timeout", Exit.NETWORK)

    monkeypatch.setattr(dnscheck, "wait_for", dns_down)
    rc, _, err = run_json(capsys, cutover, ["--to", "dr", "--yes", "--outputs", outputs])
    assert rc == Exit.NETWORK
    assert "dr promoted" in err and "active side recorded: dr" in err and "re-run" in err
    monkeypatch.undo()
    c = module_sandbox.reload()
    assert c.active == "dr"  # backups already come from the side that serves
    assert side_dsn(c, c.active, db) == side_dsn(c, "dr", db)

    rc, again, err = run_json(capsys, cutover, ["--to", "dr", "--yes", "--outputs", outputs])
    assert rc == Exit.OK, err
    assert replication.state(c, db, "dr").role == "primary" and records.switch_side(c, db) == "dr"
    assert dnscheck.answering_side(c, db) == "dr" and module_sandbox.reload().active == "dr"
    rc, done, _ = run_json(capsys, cutover, ["--to", "dr", "--yes", "--outputs", outputs])
    assert rc == Exit.OK and done["already"]
    fail_back(module_sandbox, capsys)


def test_a_paused_wal_replay_on_the_standby_is_named(module_sandbox, capsys):
    c = module_sandbox.reload()
    db = c.database()
    outputs = str(module_sandbox.outputs_path)
    with psycopg.connect(side_dsn(c, "dr", db, dbname="postgres", superuser=True), autocommit=True) as conn:
        conn.execute("select pg_wal_replay_pause()")
        try:
            assert replication.state(c, db, "dr").replay_paused
            rc, _, err = run_json(capsys, cutover, ["--to", "dr", "--yes", "--outputs", outputs])
            assert rc == Exit.FAILED and "WAL replay on the dr database is paused" in err
            rc, lines, _ = run_json(capsys, status, ["--outputs", outputs])
            lag = next(line for line in lines["lines"] if line["check"] == "standby lag")
            assert lag["state"] == "FAIL" and lag["value"] == "replay paused"
        finally:
            conn.execute("select pg_wal_replay_resume()")
    assert replication.state(c, db, "primary").role == "primary" and not replication.state(c, db, "primary").fenced
