"""The GitHub workflows: valid against GitHub's workflow schema, and doing what the docs say they do."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
SECRET_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PULUMI_ACCESS_TOKEN", "GITHUB_TOKEN")


def schema_check(*paths: Path) -> subprocess.CompletedProcess:
    """check-jsonschema with its bundled copy of GitHub's workflow schema (no network)."""
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
        capture_output=True, text=True, check=False,
    )


def load(name: str) -> dict:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def steps(doc: dict) -> list[dict]:
    return [step for job in doc["jobs"].values() for step in job["steps"]]


def pulumi_steps(doc: dict) -> list[dict]:
    return [s for s in steps(doc) if str(s.get("uses", "")).startswith("pulumi/actions@")]


def test_every_workflow_is_valid_against_githubs_schema():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"pr.yml", "drift.yml"}
    result = schema_check(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    text = (WORKFLOWS / "pr.yml").read_text().replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest", 1)
    broken.write_text(text)
    result = schema_check(broken)
    assert result.returncode != 0 and "runs-on" in result.stdout


@pytest.mark.parametrize("name", ["pr.yml", "drift.yml"])
def test_no_secret_is_echoed(name):
    for step in steps(load(name)):
        script = step.get("run", "")
        assert "secrets." not in script, f"{name}: step {step.get('name')!r} puts a secret on a command line"
        assert not re.search(r"set -x|printenv|^\s*env\s*$", script, re.M), f"{name}: {step.get('name')!r} dumps env"
        for var in SECRET_ENV:
            assert var not in script, f"{name}: step {step.get('name')!r} mentions {var}"


def test_pull_requests_run_check_without_credentials_then_preview_with_comment():
    doc = load("pr.yml")
    assert "pull_request" in doc["on"]
    check = doc["jobs"]["check"]
    assert any(s.get("run") == "make check" for s in check["steps"])
    assert "secrets." not in yaml.safe_dump(check), "make check must not need credentials"
    preview = doc["jobs"]["preview"]
    assert preview["needs"] == "check" and preview["permissions"]["pull-requests"] == "write"
    (action,) = pulumi_steps(doc)
    with_ = action["with"]
    assert (with_["command"], with_["stack-name"], with_["diff"], with_["comment-on-pr"]) == ("preview", "dr", True, True)
    assert with_["policyPacks"] == "stacks/policy"
    assert action["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"


def test_drift_runs_on_schedule_expects_no_changes_and_reports_an_issue():
    doc = load("drift.yml")
    assert doc["on"]["schedule"] and "workflow_dispatch" in doc["on"]
    drift = doc["jobs"]["drift"]
    (preview,) = pulumi_steps(doc)
    with_ = preview["with"]
    assert with_["refresh"] is True and with_["expect-no-changes"] is True and with_["stack-name"] == "dr"
    assert with_["policyPacks"] == "stacks/policy"
    issue = next(s for s in drift["steps"] if str(s.get("uses", "")).startswith("actions/github-script@"))
    assert issue["if"] == "steps.preview.outcome == 'failure'"
    assert "issues.create" in issue["with"]["script"] and "createComment" in issue["with"]["script"]
    assert drift["permissions"]["issues"] == "write"
    fail = drift["steps"][-1]
    assert fail["if"] == "steps.preview.outcome == 'failure'" and "exit 1" in fail["run"]
    verify = doc["jobs"]["verify"]
    assert any("pilotlight verify --all --stack dr" in s.get("run", "") for s in verify["steps"])


def test_the_policy_pack_the_workflows_name_exists():
    pack = ROOT / "stacks" / "policy"
    assert (pack / "PulumiPolicy.yaml").is_file() and (pack / "__main__.py").is_file()
    runtime = yaml.safe_load((pack / "PulumiPolicy.yaml").read_text())["runtime"]
    assert runtime["name"] == "python"
    assert (pack / runtime["options"]["virtualenv"]).resolve() == (ROOT / ".venv").resolve()
