"""Pure parts of cutover and drills: the change batch, the reports, the real-stack confirmation (no services)."""
import json
from pathlib import Path

import pytest

from scripts.failover import records as dnsrecords
from scripts.drills import report
from scripts.common import PilotlightError
from scripts.contract import parse
from scripts.steps import Steps

FIXTURE = Path(__file__).parent.parent / "fixtures" / "outputs.json"
DB = parse(json.loads(FIXTURE.read_text())).database()


def failover_pair(primary_role="PRIMARY"):
    dr_role = "SECONDARY" if primary_role == "PRIMARY" else "PRIMARY"
    return [
        {"Name": "db.orders.example.com.", "Type": "CNAME", "SetIdentifier": "primary", "Failover": primary_role,
         "TTL": 30, "HealthCheckId": "hc-p", "ResourceRecords": [{"Value": DB.dns.primary_target}]},
        {"Name": "db.orders.example.com.", "Type": "CNAME", "SetIdentifier": "dr", "Failover": dr_role,
         "TTL": 30, "HealthCheckId": "hc-d", "ResourceRecords": [{"Value": DB.dns.dr_target}]},
    ]


def test_cutover_swaps_failover_roles_in_one_batch_keeping_targets_and_health_checks():
    changes = dnsrecords.plan_switch(DB, failover_pair(), "dr")
    assert [c["Action"] for c in changes] == ["UPSERT", "UPSERT"]
    by_id = {c["ResourceRecordSet"]["SetIdentifier"]: c["ResourceRecordSet"] for c in changes}
    assert by_id["dr"]["Failover"] == "PRIMARY" and by_id["primary"]["Failover"] == "SECONDARY"
    assert by_id["dr"]["ResourceRecords"] == [{"Value": DB.dns.dr_target}]
    assert by_id["primary"]["HealthCheckId"] == "hc-p" and by_id["dr"]["HealthCheckId"] == "hc-d"


def test_records_already_on_the_target_side_need_no_change():
    assert dnsrecords.plan_switch(DB, failover_pair("SECONDARY"), "dr") == []
    assert dnsrecords.records_side(DB, failover_pair("SECONDARY")) == "dr"
    assert len(dnsrecords.plan_switch(DB, failover_pair("SECONDARY"), "primary")) == 2


def test_a_plain_record_is_repointed():
    plain = [{"Name": "db.orders.example.com.", "Type": "CNAME", "TTL": 30,
              "ResourceRecords": [{"Value": DB.dns.primary_target}]}]
    (change,) = dnsrecords.plan_switch(DB, plain, "dr")
    assert change["ResourceRecordSet"]["ResourceRecords"] == [{"Value": DB.dns.dr_target}]


def test_records_not_naming_the_target_are_an_error_not_a_guess():
    other = failover_pair()
    other[1]["ResourceRecords"] = [{"Value": "somewhere.else.example.com"}]
    with pytest.raises(PilotlightError, match="names the dr target"):
        dnsrecords.plan_switch(DB, other, "dr")


def test_report_names_the_failed_step_and_why(tmp_path):
    steps = Steps()
    with steps.step("inject failure"):
        pass
    with pytest.raises(RuntimeError):
        with steps.step("promote dr"):
            raise RuntimeError("pg_ctl: server did not promote in time")
    result = {"scenario": "regional-outage", "stack": "dr", "database": "orders", "verdict": "FAIL",
              "startedAt": "2026-11-24T03:00:00.000000Z", "finishedAt": "2026-11-24T03:00:09.000000Z",
              "objective": {"rtoSeconds": 900, "rpoSeconds": 60}, "measured": {"rtoSeconds": None},
              "checks": [], "backup": None, "steps": steps.as_list(), "notes": [],
              "failedStep": {"name": steps.failed.name, "detail": steps.failed.detail}}
    paths = report.write(result, tmp_path)
    for fmt in ("json", "md", "html"):
        text = Path(paths[fmt]).read_text()
        assert "promote dr" in text and "did not promote in time" in text, fmt
    assert "step 'promote dr' failed: pg_ctl: server did not promote in time" in Path(paths["md"]).read_text()
    assert "<script" not in Path(paths["html"]).read_text()


def test_a_drill_on_a_real_stack_needs_the_stack_named_before_any_io(capsys):
    from scripts.commands import drill

    assert drill.main(["--scenario", "regional-outage", "--outputs", str(FIXTURE)]) == 4
    assert drill.main(["--scenario", "regional-outage", "--outputs", str(FIXTURE), "--yes-on-stack", "prod"]) == 4
    err = capsys.readouterr().err
    assert "--yes-on-stack dr" in err and "Traceback" not in err
    assert drill.main(["--scenario", "nope", "--outputs", str(FIXTURE)]) == 2
