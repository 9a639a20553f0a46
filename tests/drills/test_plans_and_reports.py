"""Pure parts of cutover and drills: the switch, the reports, the stack confirmation (no services)."""
import dataclasses
import json
from pathlib import Path

import pytest

from scripts.failover import records as dnsrecords
from scripts.drills import report
from scripts.common import PilotlightError
from scripts.contract import parse
from scripts.sandbox.emulator import switch_thresholds
from scripts.steps import Steps

FIXTURE = Path(__file__).parent.parent / "fixtures" / "outputs.json"
DB = parse(json.loads(FIXTURE.read_text())).database()


def test_a_cutover_without_a_switch_in_the_contract_is_an_error_naming_the_fix():
    with pytest.raises(PilotlightError, match="no switch health check.*pulumi up"):
        dnsrecords._switch(dataclasses.replace(DB, dns=dataclasses.replace(DB.dns, switch=None)))


def test_the_switch_threshold_forces_dr_with_one_more_than_its_children():
    assert switch_thresholds(1) == {"primary": 1, "dr": 2}


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
