"""Figures in the docs stay true: they are compared with what the code produces."""
from __future__ import annotations

import json
import re
from pathlib import Path

from scripts import cli
from scripts.common import Exit

ROOT = Path(__file__).resolve().parents[2]


def test_docs_ci_resource_count_and_rows_are_what_check_counts(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.main(["check", "--stack", "dr", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    doc = (ROOT / "docs" / "ci.md").read_text()
    (count,) = re.findall(r"would contain (\d+) resources", doc)
    assert int(count) == summary["resources"], "docs/ci.md: update the sample `make check` output"
    real = {(r["region"], r["type"]): r["count"] for r in summary["byRegion"]}
    shown = re.findall(r"^  (us-[a-z]+-\d)\s+(aws:\S+)\s+(\d+)$", doc, re.M)
    assert shown and all(real.get((region, kind)) == int(n) for region, kind, n in shown), shown


def test_readme_session_runs_the_venv_binary_and_hard_codes_no_sandbox_port():
    readme = (ROOT / "README.md").read_text()
    session = readme.split("## A backup–verify–restore session on the sandbox", 1)[1].split("```console", 1)[1].split("```", 1)[0]
    commands = [line[2:] for line in session.splitlines() if line.startswith("$ ")]
    assert commands and not [c for c in commands if c.startswith("pilotlight ")], "use .venv/bin/pilotlight"
    assert not [c for c in commands if re.search(r"port=\d", c)], "read the port from the outputs file"
    assert "source .venv/bin/activate" in readme


def test_readme_exit_code_table_is_the_exit_enum_and_states_the_plan_only_convention():
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| (\d+) \| ([A-Z]+) \|", readme, re.M))
    assert {int(k): v for k, v in rows.items()} == {e.value: e.name for e in Exit if e != Exit.INTERRUPTED}
    assert "no `--yes` prints the same\nplan and exits 4" in readme and "`drill --dry-run`" in readme
