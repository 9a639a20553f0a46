"""`pilotlight runbook` renders this stack's real names, objectives, checklists and template."""
from __future__ import annotations

import json
from pathlib import Path

from scripts.commands import runbook

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "outputs.json"


def real_names() -> list[str]:
    doc = json.loads(FIXTURE.read_text())
    db = doc["databases"][0]
    return [
        doc["vault"]["primary"]["bucket"], doc["vault"]["dr"]["bucket"],
        doc["dns"]["zoneId"], doc["dns"]["zoneName"], db["dns"]["recordName"], db["dns"]["healthCheckId"],
        db["standby"]["identifier"], db["standby"]["host"], db["primary"]["identifier"],
        doc["regions"]["primary"], doc["regions"]["dr"], doc["keys"]["dr"]["arn"],
    ]


def test_markdown_names_this_stacks_resources_and_objectives(capsys):
    assert runbook.main(["--outputs", str(FIXTURE)]) == 0
    out = capsys.readouterr().out
    for name in real_names():
        assert name in out, f"runbook does not mention {name}"
    assert "## Regional outage — RTO 15 min, RPO 5 min" in out
    assert "## Ransomware — RTO 4 h, RPO 1 d" in out
    assert "--region us-west-2 rds describe-db-instances --db-instance-identifier pilotlight-dr-orders-standby" in out
    assert f"pilotlight cutover --to dr --database orders --yes --outputs {FIXTURE}" in out
    assert "pulumi config set pilotlight:active dr --stack dr" in out
    for heading in ("Database recovery checklist", "Regional outage checklist", "Post-incident checklist",
                    "Incident post-mortem template"):
        assert f"## {heading}" in out
    assert "- [ ] Latest backup identified" in out


def test_html_to_a_file(tmp_path, capsys):
    target = tmp_path / "runbook.html"
    assert runbook.main(["--outputs", str(FIXTURE), "--format", "html", "--out", str(target)]) == 0
    html = target.read_text()
    assert html.startswith("<!doctype html>") and "<table>" in html and "<pre><code" in html
    for name in real_names():
        assert name in html
    assert capsys.readouterr().out == ""


def test_missing_outputs_is_one_line_and_usage_exit(tmp_path, capsys):
    assert runbook.main(["--outputs", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "outputs file not found" in err[0]


def test_data_corruption_and_deletion_procedures_restore_to_a_time_from_the_dr_region(capsys):
    from scripts.commands import runbook

    assert runbook.main(["--outputs", str(FIXTURE)]) == 0
    text = capsys.readouterr().out
    corruption = text[text.index("## Data corruption"):text.index("## Ransomware")]
    assert "--to-time 2026-01-01T10:41:59Z --from-region dr --copy-back public.orders --overwrite --yes" in corruption
    deletion = text[text.index("## Accidental deletion"):text.index("## Failback")]
    assert "--copy-back public.orders --yes" in deletion
    assert "| Data corruption | 1 h | 1 h | point-in-time restore" in text
