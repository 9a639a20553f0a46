"""`pilotlight check`: the real program under mocks, on the example stack and on broken copies of it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from scripts.commands import check
from scripts.preview.runtime import config_values, run_program
from stacks.config import ConfigError, load_stack_file

ROOT = Path(__file__).resolve().parents[2]


def variant(tmp_path: Path, name: str, edit) -> Path:
    """A project copy whose stack file ``Pulumi.<name>.yaml`` is the example with ``edit`` applied."""
    for f in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / f, tmp_path / f)
    doc = yaml.safe_load((ROOT / "Pulumi.dr.yaml").read_text())
    edit(doc["config"])
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    rc = check.main([*argv, "--json"])
    return rc, json.loads(capsys.readouterr().out)


def test_the_example_stack_passes_and_reads_like_a_preview(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert check.main(["--stack", "dr"]) == 0
    out = capsys.readouterr().out
    assert "Stack pilotlight/dr (from Pulumi.dr.yaml) would contain" in out
    assert "us-west-2" in out and "aws:rds/instance:Instance" in out
    assert "Outputs contract: valid" in out and "Policies: 0 mandatory, 0 advisory" in out
    assert out.rstrip().endswith("check: OK")

    rc, report = run_json(capsys, "--config", "Pulumi.dr.yaml")
    assert rc == 0 and report["ok"] and report["violations"] == [] and report["contract"] is None
    rows = {(r["region"], r["type"]): r["count"] for r in report["summary"]["byRegion"]}
    assert rows[("us-west-2", "aws:rds/instance:Instance")] == 1
    assert rows[("us-east-1", "aws:s3/bucketReplicationConfig:BucketReplicationConfig")] == 1
    # A vault bucket per region, plus the audit trail's log bucket in the primary region.
    assert (rows[("us-east-1", "aws:s3/bucket:Bucket")], rows[("us-west-2", "aws:s3/bucket:Bucket")]) == (2, 1)
    assert report["objectives"]["regional-outage"] == {"rtoSeconds": 900, "rpoSeconds": 300}
    # The failover rehearsal: after a cutover, `pulumi up --refresh` with active: dr meets no AWS rule
    # and touches no database or record beyond the promoted standby's Multi-AZ update; the scheduled
    # jobs move to the DR region (their schedules, task definitions and log groups are replaced there),
    # and the DR vault, which now takes the backups, replicates back to primary (its rule and role policy).
    assert report["failover"] == {"to": "dr", "problems": [],
                                  "changes": {"create": 3, "delete": 3, "replace": 12, "update": 4}}
    assert "Failover rehearsal (cutover to dr, then `pulumi up --refresh`): OK" in out


def test_a_broken_config_gives_the_programs_one_line(tmp_path, capsys):
    path = variant(tmp_path, "broken", lambda c: c.update({"pilotlight:drRegion": "us-east-1"}))
    with pytest.raises(ConfigError) as program_error:
        load_stack_file(path)
    assert check.main(["--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"pilotlight check: error: {program_error.value}"]
    assert "pilotlight:drRegion" in err[0]


def test_a_config_error_only_the_running_program_sees_is_reported_as_is(tmp_path, capsys):
    """An unknown key reaches the program through Pulumi config; check shows the program's own message."""
    import pulumi

    path = variant(tmp_path, "typo", lambda c: c.update({"pilotlight:activ": "dr"}))
    with pytest.raises((pulumi.RunError, ConfigError)) as program_error:
        values, _ = config_values(yaml.safe_load(path.read_text())["config"])
        run_program(tmp_path / "__main__.py", "pilotlight", "typo", values)
    assert check.main(["--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"pilotlight check: error: {program_error.value}"]


def test_an_objective_the_stack_cannot_meet_fails_with_the_key_to_change(tmp_path, capsys):
    def tighten(c):
        c["pilotlight:objectives"]["dataCorruption"]["rpo"] = "1m"

    rc, report = run_json(capsys, "--config", str(variant(tmp_path, "tight", tighten)))
    assert rc == 1 and not report["ok"]
    (violation,) = report["violations"]
    assert violation["policy"] == "objectives-feasible" and violation["level"] == "mandatory"
    assert "pilotlight:objectives.dataCorruption.rpo" in violation["message"]


def test_a_policy_violation_the_config_allows_still_fails_check(tmp_path, capsys):
    def slow_dns(c):
        c["pilotlight:dns"]["ttl"] = 120  # the program accepts up to 300; the DR policy wants <= 60

    rc, report = run_json(capsys, "--config", str(variant(tmp_path, "slowdns", slow_dns)))
    assert rc == 1
    assert {v["policy"] for v in report["violations"]} == {"failover-ttl"}
    assert all("pilotlight:dns.ttl" in v["message"] for v in report["violations"])


def test_a_missing_stack_file_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert check.main(["--stack", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Pulumi.nope.yaml" in err[0]
