"""End-to-end drills, cutover and failback on one sandbox for this module (real PostgreSQL, moto, DNS).

Each test calls the commands' main([...]) and asserts outcomes on the live services: what DNS
answers, which cluster is primary, what the heartbeat measured, what the report says. Every
test leaves the sandbox in its normal topology (primary serving, DR streaming) and asserts so,
which is itself the promise that drills clean up; sharing one sandbox keeps the module fast
on two cores. The test that breaks the standby runs last and mends it.
"""
import dataclasses
import json
import uuid
from pathlib import Path

import psycopg
import pytest

from scripts.commands import cutover
from scripts.postgres import replication as dbstate
from scripts.failover import dns as dnscheck
from scripts.failover import records as dnsrecords
from scripts.commands import drill
from scripts.commands import failback
from scripts.common import Exit
from scripts.sandbox import control, lifecycle
from scripts.failover.service import resolve, service_dsn
from scripts.failover.rds import RdsPlatform

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


DRILL = ["--yes-on-stack", "dr"]  # a drill names the stack it breaks, the sandbox's too


def run_json(capsys, module, argv):
    rc = module.main([*argv, "--json"])
    out = capsys.readouterr()
    return rc, (json.loads(out.out) if out.out.strip() else None), out.err


def assert_normal_topology(sb):
    """The sandbox is where it began: primary serves through DNS, DR streams from it."""
    c, db = sb.reload(), sb.contract.database()
    assert dbstate.state(c, db, "primary").role == "primary"
    assert dbstate.state(c, db, "dr").role == "replica"
    assert resolve(c, db).side == "primary"
    assert dnsrecords.switch_side(c, db) == "primary"
    assert c.active == "primary"
    rds = RdsPlatform(c)  # what AWS would show: the primary standalone, the standby its replica
    primary, standby = rds.describe("primary", db.primary.identifier), rds.describe("dr", db.standby.identifier)
    assert "ReadReplicaSourceDBInstanceIdentifier" not in primary and primary["DBInstanceStatus"] == "available"
    assert standby["ReadReplicaSourceDBInstanceIdentifier"] == db.primary.arn
    assert primary["ReadReplicaDBInstanceIdentifiers"] == [db.standby.arn]
    assert lifecycle.status(sb.state_dir)["healthy"]  # retired instances (a killed old primary) do not count
    with psycopg.connect(service_dsn(c, db), autocommit=True) as conn:  # the application can write again
        conn.execute("insert into customers (name, email) values ('after drill', %s)", (f"{uuid.uuid4()}@example.com",))
        assert conn.execute("select to_regnamespace('pilotlight_drill')").fetchone()[0] is None  # cleaned up


def test_regional_outage_with_control_plane_down_recovers_measures_and_fails_back(module_sandbox, tmp_path, capsys):
    rc, result, _ = run_json(capsys, drill, ["--scenario", "regional-outage", "--outputs", str(module_sandbox.outputs_path),
                                             "--report", str(tmp_path), *DRILL])
    assert rc == Exit.OK, result["failedStep"] or result["error"]
    m = result["measured"]
    assert result["verdict"] == "PASS"
    assert 0 < m["detectionSeconds"] < module_sandbox.contract.ttl  # dnspython saw the standby within the TTL
    assert m["detectionSeconds"] < m["rtoSeconds"] < 60
    assert m["rpoSeconds"] >= 0 and m["lostAcknowledgedRows"] >= 0
    assert m["heartbeatGapSeconds"] > 0 and m["failedWriteAttempts"] > 0  # the outage was really felt
    assert m["heartbeat"]["bySide"]["primary"] >= 10 and m["heartbeat"]["bySide"]["dr"] >= 1
    steps = {s["name"]: s for s in result["steps"]}
    # Route53's control plane was down: setting the switch failed, recovery did not depend on it.
    assert steps["cutover: set the switch"]["status"] == "warning"
    assert "control plane unavailable" in steps["cutover: set the switch"]["detail"]
    assert "PromoteReadReplica" in steps["cutover: promote dr"]["detail"]
    # the failback went through the RDS API: new primary and standby, the retired ones stopped
    assert m["staleWriterAcknowledged"] > 0 and m["staleWriterLost"] == 0  # the fence stopped a PGOPTIONS writer
    assert any(n.startswith("failback: create ") and n.endswith("-primary-g1") for n in steps)
    assert steps["cutover: verify dns"]["status"] == "ok" and "-> dr" in steps["cutover: verify dns"]["detail"]
    assert all(c["passed"] for c in result["checks"])
    for fmt in ("json", "md", "html"):
        assert Path(result["reports"][fmt]).stat().st_size > 0
    page = Path(result["reports"]["html"]).read_text()  # the picture drawn from this drill's own heartbeat
    assert "<svg" in page and 'data-side="primary"' in page and 'data-side="dr"' in page
    for mark in ("failure", "detection", "promotion", "recovered"):
        assert f'data-mark="{mark}"' in page, mark
    assert result["projectedRto"]["seconds"] > result["measured"]["rtoSeconds"]  # AWS is slower than the sandbox
    assert Path(result["reports"]["index"]).name == "index.html" and (tmp_path / "runbook.html").is_file()
    # the example's application (a command hook) was stopped before the cutover and started after, timed
    assert [steps[f"cutover: {n}"]["status"] for n in ("stop application", "start application")] == ["ok", "ok"]
    order = [s["name"] for s in result["steps"]]
    assert order.index("cutover: stop application") < order.index("cutover: fence primary") < \
        order.index("cutover: start application")
    assert m["applicationStopSeconds"] > 0 and m["applicationStartSeconds"] > 0
    smoke = {c["name"]: c for c in result["smokeChecks"]}
    assert set(smoke) == {"orders readable", "orders fresh"} and all(c["passed"] for c in smoke.values())
    assert {"smoke: orders readable", "smoke: orders fresh"} <= {c["name"] for c in result["checks"]}
    report = Path(result["reports"]["md"]).read_text()
    assert "| smoke check | kind | result | started | duration | detail |" in report
    assert "| stopping the application |" in report and "Smoke checks" in page
    assert_normal_topology(module_sandbox)


def test_a_stalled_control_plane_does_not_delay_promotion(module_sandbox, capsys):
    """Route53's API accepts connections and never answers: the calls time out after promotion, not before."""
    rc, result, _ = run_json(capsys, drill, ["--scenario", "regional-outage", "--outputs", str(module_sandbox.outputs_path),
                                             "--control-plane", "stall", *DRILL])
    assert rc == Exit.OK, result["failedStep"] or result["error"]
    steps = [s["name"] for s in result["steps"]]
    assert "cutover: read switch" not in steps  # an emergency promotes first
    change = next(s for s in result["steps"] if s["name"] == "cutover: set the switch")
    assert change["status"] == "warning" and "Timeout" in change["detail"]
    assert result["measured"]["rtoSeconds"] < change["seconds"]  # the service was back long before the API gave up
    assert_normal_topology(module_sandbox)


def test_planned_cutover_twice_is_a_noop_then_failback_returns_the_service(module_sandbox, capsys):
    outputs = str(module_sandbox.outputs_path)
    c, db = module_sandbox.contract, module_sandbox.contract.database()
    with psycopg.connect(service_dsn(c, db), autocommit=True) as conn:
        conn.execute("insert into customers (name, email) values ('before cutover', 'before@example.com')")
    assert cutover.main(["--to", "dr", "--outputs", outputs]) == Exit.REFUSED  # no --yes: the plan, nothing done
    out = capsys.readouterr()
    assert "dry run: cutover of orders to side dr would:" in out.out and "re-run with --yes" in out.err
    rc, plan, _ = run_json(capsys, cutover, ["--to", "dr", "--dry-run", "--outputs", outputs])
    assert rc == Exit.OK and plan["dryRun"] and any("UpdateHealthCheck" in p for p in plan["plan"])
    assert plan["plan"][0].startswith("stop the application (command): run `sh -c")  # the hooks a cutover runs
    assert plan["plan"][-2].startswith("start the application again") and "smoke checks of orders" in plan["plan"][-1]
    assert resolve(c, db).side == "primary" and dbstate.state(c, db, "dr").role == "replica"
    assert dnsrecords.switch_side(c, db) == "primary"
    records = dnsrecords.fetch(c, db)

    rc, first, _ = run_json(capsys, cutover, ["--to", "dr", "--yes", "--outputs", outputs])
    assert rc == Exit.OK and first["changed"] and not first["already"]
    assert [(a["name"], a["status"]) for a in first["application"]] == [("stop application", "ok"),
                                                                        ("start application", "ok")]
    assert [c["passed"] for c in first["smokeChecks"]] == [True, True]  # on dr, as the application's login
    assert first["pulumiConfig"] == "pulumi config set pilotlight:active dr --stack dr && pulumi up --refresh --stack dr"
    assert RdsPlatform(c).describe("dr", db.standby.identifier)["BackupRetentionPeriod"] == db.promotion.backup_retention_days
    assert dnsrecords.fetch(c, db) == records  # static records: only the switch moved
    assert dnsrecords.switch_side(c, db) == "dr"
    promoted = RdsPlatform(c).describe("dr", db.standby.identifier)
    assert "ReadReplicaSourceDBInstanceIdentifier" not in promoted  # RDS: no longer a replica
    assert all(dnscheck.side_of(db, t) == "dr" for t in first["dnsAfter"].values())
    assert dbstate.state(c, db, "dr").role == "primary"
    assert module_sandbox.reload().active == "dr"
    with psycopg.connect(service_dsn(c, db), autocommit=True) as conn:  # planned: nothing lost, writable on dr
        assert conn.execute("select count(*) from customers where email = 'before@example.com'").fetchone()[0] == 1
        conn.execute("insert into customers (name, email) values ('on dr', 'on-dr@example.com')")
    records = dnsrecords.fetch(c, db)

    rc, second, _ = run_json(capsys, cutover, ["--to", "dr", "--yes", "--outputs", outputs])
    assert rc == Exit.OK and second["already"] and not second["changed"]
    assert dnsrecords.fetch(c, db) == records
    assert cutover.main(["--to", "dr", "--yes", "--outputs", outputs]) == Exit.OK
    assert "already on side dr" in capsys.readouterr().out

    rc, back, _ = run_json(capsys, failback, ["--to", "primary", "--yes", "--outputs", outputs])
    assert rc == Exit.OK and not back["already"]
    assert {"switch back: stop application", "switch back: start application"} <= {s["name"] for s in back["steps"]}
    fb = db.failback
    assert [s["name"] for s in back["steps"] if s["name"].startswith("create ")] == [
        f"create {fb.primary_identifier}", f"create {fb.standby_identifier}"]
    assert all(s["seconds"] >= 0 for s in back["steps"])
    assert back["pulumiCommands"][-1] == "pulumi up --refresh --stack dr"
    assert f"databases[0].primaryArn' {back['newPrimary']['arn']}" in back["pulumiCommands"][0]
    assert_normal_topology(module_sandbox)
    c = module_sandbox.contract
    assert c.database().primary.identifier == fb.primary_identifier
    rds = RdsPlatform(c)
    retired = dataclasses.replace(c.database(), standby=db.standby)  # S_0: kept, fenced
    assert rds.describe("dr", db.standby.identifier)["DBInstanceStatus"] == "available"
    assert dbstate.state(c, retired, "dr").fenced
    with psycopg.connect(service_dsn(c, c.database()), autocommit=True) as conn:
        assert conn.execute("select count(*) from customers where email = 'on-dr@example.com'").fetchone()[0] == 1


def application_data(sb) -> tuple:
    """What a data drill must never change: the database itself (its oid: no swap) and the application's table."""
    c = sb.reload()
    with psycopg.connect(service_dsn(c), autocommit=True) as conn:
        oid = conn.execute("select oid from pg_database where datname = current_database()").fetchone()[0]
        orders = conn.execute("select count(*), md5(string_agg(t::text, ',' order by t.id)) from public.orders t").fetchone()
    return oid, orders


def test_ransomware_delete_is_refused_and_the_clean_backup_restored(module_sandbox, capsys):
    untouched = application_data(module_sandbox)
    rc, result, _ = run_json(capsys, drill, ["--scenario", "ransomware", "--outputs", str(module_sandbox.outputs_path),
                                             *DRILL])
    assert application_data(module_sandbox) == untouched and result["measured"]["table"] == "pilotlight_drill.orders"
    assert rc == Exit.OK, result["failedStep"] or result["error"]
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["Object Lock refused every delete of the clean backup"]["passed"]
    assert checks["the poisoned backup was not used"]["passed"]
    assert result["backup"]["id"] != result["measured"]["poisonedBackup"]
    assert 0 <= result["measured"]["rpoSeconds"] < 600 and result["measured"]["acknowledgedRowsLost"] >= 0
    assert_normal_topology(module_sandbox)


@pytest.mark.parametrize("scenario", ["data-corruption", "accidental-deletion"])
def test_data_drills_bring_the_data_back_and_clean_up(module_sandbox, scenario, capsys):
    untouched = application_data(module_sandbox)
    rc, result, _ = run_json(capsys, drill, ["--scenario", scenario, "--outputs", str(module_sandbox.outputs_path),
                                             *DRILL])
    assert rc == Exit.OK, result["failedStep"] or result["error"]
    # the drill's own table, recovered beside the live one: no application row touched, no database swapped
    assert application_data(module_sandbox) == untouched and result["measured"]["table"] == "pilotlight_drill.orders"
    assert all(c["passed"] for c in result["checks"]) and result["backup"]["id"]
    assert [c["name"] for c in result["smokeChecks"]] == ["orders readable", "orders fresh"]
    # no database is swapped, so the application keeps running (its hooks run around swaps and cutovers only)
    assert not [s["name"] for s in result["steps"] if s["name"].endswith("application")]
    assert 0 <= result["measured"]["rpoSeconds"] < 600 and result["measured"]["rtoSeconds"] > 0
    assert result["measured"]["heartbeat"]["acknowledged"] > 0
    # the recovery point is the vault's newest backup, not one taken for the drill: writes acknowledged
    # after it and before the damage are counted as lost (the heartbeat table is in the same database)
    assert result["measured"]["acknowledgedRowsLost"] >= 0
    c = module_sandbox.reload()
    with psycopg.connect(service_dsn(c), autocommit=True) as conn:
        leftovers = conn.execute("select count(*) from pg_namespace where nspname like 'pilotlight%'").fetchone()[0]
        databases = conn.execute("select count(*) from pg_database where datname like %s", (c.database().db_name + "_%",))
        assert leftovers == 0 and databases.fetchone()[0] == 0
    assert_normal_topology(module_sandbox)


def test_database_loss_promotes_the_standby_with_the_region_up_measures_and_fails_back(module_sandbox, capsys):
    rc, result, _ = run_json(capsys, drill, ["--scenario", "database-loss", "--outputs", str(module_sandbox.outputs_path),
                                             *DRILL])
    assert rc == Exit.OK, result["failedStep"] or result["error"]
    assert result["verdict"] == "PASS" and all(c["passed"] for c in result["checks"])
    m = result["measured"]
    assert 0 < m["detectionSeconds"] < m["rtoSeconds"] < 60 and m["rpoSeconds"] >= 0
    assert m["heartbeat"]["bySide"]["dr"] >= 1 and m["failedWriteAttempts"] > 0
    steps = {s["name"]: s for s in result["steps"]}
    assert steps["inject failure"]["detail"] == "primary cluster SIGKILLed (its region stays up)"
    assert steps["cutover: set the switch"]["status"] == "ok"  # only the instance was lost: the control plane answers
    objective = module_sandbox.contract.objectives["database-loss"]
    assert result["objective"] == {"rtoSeconds": objective.rto_seconds, "rpoSeconds": objective.rpo_seconds}
    assert_normal_topology(module_sandbox)


def test_database_loss_into_a_new_instance_from_the_newest_backup(module_sandbox, capsys):
    from scripts.pitr import rds as pitr_rds

    rc, result, _ = run_json(capsys, drill, ["--scenario", "database-loss", "--recover-with", "new-instance",
                                             "--outputs", str(module_sandbox.outputs_path), *DRILL])
    assert rc == Exit.OK, result["failedStep"] or result["error"]
    assert result["verdict"] == "PASS" and all(c["passed"] for c in result["checks"]), result["checks"]
    m = result["measured"]
    assert m["newInstance"].endswith(tuple("0123456789")) and "-new-" in m["newInstance"]
    assert m["rtoSeconds"] > m["instanceCreateSeconds"] > 0 and m["rpoSeconds"] >= 0
    assert result["backup"]["id"]
    assert pitr_rds.list_restored(module_sandbox.reload(), "dr") == [] or all(
        i.status == "deleting" for i in pitr_rds.list_restored(module_sandbox.reload(), "dr"))
    assert_normal_topology(module_sandbox)


def test_recover_with_must_fit_the_scenario(module_sandbox, capsys):
    rc, _, err = run_json(capsys, drill, ["--scenario", "ransomware", "--recover-with", "new-instance",
                                          "--outputs", str(module_sandbox.outputs_path), *DRILL])
    assert rc == Exit.USAGE and "is not a recovery of ransomware" in err


def test_unhealthy_dr_cutover_refused_and_drill_fails_at_a_named_step(module_sandbox, tmp_path, capsys):
    outputs = str(module_sandbox.outputs_path)
    c, db = module_sandbox.contract, module_sandbox.contract.database()
    control.kill_cluster(module_sandbox.state, "dr")  # the standby is not ready
    try:
        rc, _, err = run_json(capsys, cutover, ["--to", "dr", "--yes", "--outputs", outputs])
        assert rc == Exit.REFUSED
        assert "dr database is not healthy" in err and "--force" in err and "Traceback" not in err
        assert resolve(c, db).side == "primary"
        assert dnsrecords.switch_side(c, db) == "primary"
        with psycopg.connect(service_dsn(c, db), autocommit=True) as conn:  # the primary was not fenced
            conn.execute("insert into customers (name, email) values ('still writable', %s)", (f"{uuid.uuid4()}@example.com",))
        assert module_sandbox.reload().active == "primary"

        rc, result, _ = run_json(capsys, drill, ["--scenario", "regional-outage", "--outputs", outputs,
                                                 "--report", str(tmp_path), *DRILL])
        assert rc == Exit.FAILED and result["verdict"] == "FAIL"
        assert result["failedStep"]["name"] == "check starting state"
        assert "dr streaming" in result["failedStep"]["detail"]
        for fmt in ("md", "html"):
            text = Path(result["reports"][fmt]).read_text()
            assert "check starting state" in text and "dr streaming" in text
        assert resolve(c, db).side == "primary"  # nothing was injected
    finally:
        control.start_cluster(module_sandbox.state, "dr")
    dbstate.wait_caught_up(c, db, "dr", "primary", 30)
    assert_normal_topology(module_sandbox)
