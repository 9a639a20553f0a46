"""The CLI's shared behaviour, through ``main([...])``: version, strict flags, did-you-mean,
help that lists only what a command accepts, JSON errors, and finding the sandbox."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import cli, version
from scripts.commands import backup, check, drill, restore, runbook
from scripts.commands import sandbox as sandbox_cli
from scripts.common import Exit
from scripts.contract import SANDBOX_DIR_ENV, default_outputs_file, default_sandbox_dir

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "outputs.json"


def test_version_names_the_release_and_the_commit(capsys):
    assert cli.main(["--version"]) == 0
    top = capsys.readouterr().out.strip()
    assert restore.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == top == f"pilotlight {version.package_version()} (commit {version.commit()})"
    assert version.commit() != "unknown"  # the tests run from a git checkout


def test_every_json_output_carries_version_and_commit(capsys):
    assert runbook.main(["--outputs", str(FIXTURE), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["pilotlight"] == {"version": version.package_version(), "commit": version.commit()}


def test_abbreviations_are_refused_not_guessed(capsys):
    assert backup.main(["--outputs", str(FIXTURE), "--tier", "hourly", "--y"]) == Exit.USAGE
    assert "unrecognized argument --y " in capsys.readouterr().err
    assert drill.main(["--outputs", str(FIXTURE), "--scenario", "ransomware", "--yes"]) == Exit.USAGE
    err = capsys.readouterr().err
    assert "unrecognized argument --yes; did you mean --yes-on-stack?" in err and len(err.splitlines()) == 1


def test_an_unknown_flag_is_named_before_a_missing_required_one(capsys):
    assert backup.main(["--outputs", str(FIXTURE), "--teir", "hourly"]) == Exit.USAGE
    err = capsys.readouterr().err
    assert "unrecognized argument --teir; did you mean --tier?" in err and "required" not in err


def test_an_invalid_choice_gets_a_did_you_mean(capsys):
    assert backup.main(["--outputs", str(FIXTURE), "--tier", "hourli"]) == Exit.USAGE
    assert "invalid choice 'hourli'" in (err := capsys.readouterr().err) and "did you mean hourly?" in err


def test_unknown_commands_and_misplaced_verbs_suggest_the_right_one(capsys):
    assert cli.main(["backpu"]) == Exit.USAGE
    assert "unknown command 'backpu'; did you mean backup?" in capsys.readouterr().err
    assert cli.main(["backup", "list"]) == Exit.USAGE
    assert "did you mean `pilotlight backups list`?" in capsys.readouterr().err


@pytest.mark.parametrize("module, absent", [(sandbox_cli, ("--outputs", "--stack")), (check, ("--outputs",))])
def test_help_lists_only_flags_the_command_accepts(module, absent, capsys):
    assert module.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert not [flag for flag in absent if flag in text], text
    for flag in absent:
        assert module.main([flag, "x"]) == Exit.USAGE
        assert f"unrecognized argument {flag}" in capsys.readouterr().err


def test_under_json_an_error_is_a_json_object_on_stdout_with_the_same_exit_code(tmp_path, capsys):
    rc = backup.main(["--outputs", str(tmp_path / "missing.json"), "--tier", "hourly", "--json"])
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert rc == Exit.USAGE == doc["error"]["exitCode"] and doc["ok"] is False
    assert "outputs file not found" in doc["error"]["message"] and "outputs file not found" in out.err
    assert doc["pilotlight"]["commit"] == version.commit()
    assert backup.main(["--teir", "x", "--json"]) == Exit.USAGE  # a flag error too
    assert json.loads(capsys.readouterr().out)["error"]["message"].startswith("unrecognized argument --teir")


def test_the_sandbox_is_found_from_any_directory_of_the_project(monkeypatch):
    monkeypatch.delenv(SANDBOX_DIR_ENV, raising=False)
    monkeypatch.chdir(ROOT / "docs")
    assert default_sandbox_dir() == ROOT / ".pilotlight" / "sandbox"
    assert default_outputs_file() == ROOT / ".pilotlight" / "sandbox" / "outputs.json"


def test_the_environment_variable_names_the_sandbox_everywhere(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(SANDBOX_DIR_ENV, str(tmp_path / "sb"))
    assert default_outputs_file() == tmp_path / "sb" / "outputs.json"
    assert backup.main(["--tier", "hourly"]) == Exit.USAGE
    assert str(tmp_path / "sb" / "outputs.json") in capsys.readouterr().err


def test_sandbox_down_never_claims_success_for_a_sandbox_it_did_not_find(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv(SANDBOX_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # outside any project: nothing there
    assert sandbox_cli.main(["down"]) == Exit.FAILED
    out = capsys.readouterr()
    assert "no sandbox found in" in out.err and "stopped" not in out.out
    assert sandbox_cli.main(["down", "--state-dir", str(tmp_path / "none"), "--json"]) == Exit.FAILED
    assert json.loads(capsys.readouterr().out)["error"]["exitCode"] == Exit.FAILED


def test_drill_dry_run_plans_every_scenario_and_touches_nothing(capsys):
    # the fixture is a real stack whose endpoints do not exist: any I/O would fail
    assert drill.main(["--outputs", str(FIXTURE), "--scenario", "all", "--dry-run", "--json"]) == Exit.OK
    doc = json.loads(capsys.readouterr().out)
    assert doc["dryRun"] is True and doc["target"] == "stack dr" and doc["confirmation"] == "--yes-on-stack dr"
    by_name = {d["scenario"]: d for d in doc["drills"]}
    assert list(by_name) == list(drill.ALL)
    # detection 180 s (the DATABASE signal alarm: 3 one-minute periods) + TTL 30 s + promotion budget 300 s
    assert by_name["regional-outage"]["projectedRto"]["seconds"] == 180 + 30 + 300
    assert drill.main(["--outputs", str(FIXTURE), "--scenario", "regional-outage", "--dry-run"]) == Exit.OK
    out = capsys.readouterr().out
    assert out.startswith("dry run: nothing touched. On the stack dr") and "RTO on AWS ~8 min 30 s (health-check detection 3 min + DNS TTL 30 s" in out


def _keys(doc):
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield k
            yield from _keys(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _keys(v)


def test_json_outputs_use_one_key_style(capsys, monkeypatch):
    from scripts.steps import Steps

    steps = Steps()
    with steps.step("promote dr"):
        pass
    assert set(steps.as_list()[0]) == {"name", "startedAt", "offsetSeconds", "seconds", "status", "detail"}
    monkeypatch.chdir(ROOT)
    for argv in (["drill", "--outputs", str(FIXTURE), "--scenario", "all", "--dry-run", "--json"],
                 ["check", "--stack", "dr", "--json"], ["runbook", "--outputs", str(FIXTURE), "--json"]):
        assert cli.main(argv) == 0
        doc = json.loads(capsys.readouterr().out)
        assert [k for k in _keys(doc) if "_" in k] == [], argv


def test_no_parser_anywhere_accepts_abbreviations():
    calls = [(path, line) for path in [*ROOT.joinpath("scripts").rglob("*.py"), *ROOT.joinpath("bench").rglob("*.py")]
             for line in path.read_text().splitlines() if "ArgumentParser(" in line and "class " not in line]
    assert calls and not [c for c in calls if "allow_abbrev=False" not in c[1]], calls


def test_a_command_forgets_its_own_logins_but_not_its_in_process_callers(tmp_path):
    """Drills and tests call commands in-process with DSNs naming the caller's passfile: it must survive."""
    from scripts.commands import parser as cli_parser
    from scripts.postgres import credentials

    def logs_in(_args):
        return credentials.PASSFILE.add("db.example", 5432, "app", "s3cret") and 0

    credentials.forget()
    assert cli_parser.run(logs_in, cli_parser.parser_for("t", "t", ()), []) == 0
    assert not credentials.PASSFILE.held  # the command's own login ended with it
    callers = Path(credentials.PASSFILE.add("db.example", 5432, "caller", "other"))
    try:
        assert cli_parser.run(logs_in, cli_parser.parser_for("t", "t", ()), []) == 0
        assert callers.exists() and "caller" in callers.read_text()
    finally:
        credentials.forget()


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_a_reader_that_goes_away_stops_the_command_quietly(extra):
    """`pilotlight ... | head`: once the reader has closed the pipe the command stops without an 'unexpected
    BrokenPipeError' line or an 'Exception ignored' message at exit, as cat does."""
    import subprocess
    import sys

    proc = subprocess.Popen([str(Path(sys.executable).with_name("pilotlight")), "runbook", "--outputs", str(FIXTURE), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    proc.stdout.close()  # before the command writes its first byte
    stderr = proc.stderr.read().decode()
    assert proc.wait() == Exit.FAILED
    assert stderr == ""
