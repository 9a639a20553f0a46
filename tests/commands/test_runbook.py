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


def unwrapped(text: str) -> str:
    """The runbook with its wrapped commands joined again (as a shell reads them)."""
    return text.replace(" \\\n    ", " ")


def rendered(capsys, *extra: str, outputs=FIXTURE) -> str:
    assert runbook.main(["--outputs", str(outputs), *extra]) == 0
    return capsys.readouterr().out


def test_markdown_names_this_stacks_resources_and_objectives(capsys):
    out = unwrapped(rendered(capsys))
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

    text = unwrapped(rendered(capsys))
    corruption = text[text.index("## Data corruption"):text.index("## Ransomware")]
    assert "--to-time 2026-01-01T10:41:59Z --from-region dr --copy-back public.orders --overwrite --yes" in corruption
    deletion = text[text.index("## Accidental deletion"):text.index("## Failback")]
    assert "--copy-back public.orders --yes" in deletion
    assert "| Data corruption | 1 h | 1 h | point-in-time restore" in text


def section(text: str, start: str, end: str) -> str:
    return text[text.index(start):text.index(end)]


def code_lines(text: str) -> list[str]:
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside:
            lines.append(line)
    return lines


def test_ransomware_restores_into_a_new_writable_instance_never_the_read_only_standby(capsys):
    text = unwrapped(rendered(capsys))
    ransomware = section(text, "## Ransomware", "## Accidental deletion")
    assert "restore --database orders --new-instance --from-region dr --before 2026-01-01T00:00:00Z --yes" in ransomware
    standby_host = json.loads(FIXTURE.read_text())["databases"][0]["standby"]["host"]
    assert not [line for line in code_lines(ransomware) if "restore" in line and standby_host in line]
    assert "read-only replica" in ransomware


def test_database_loss_promotes_the_standby_or_builds_a_new_instance_never_restores_into_the_lost_one(capsys):
    text = unwrapped(rendered(capsys))
    loss = section(text, "## Database loss", "## Data corruption")
    commands = code_lines(loss)
    assert "pilotlight cutover --to dr --database orders --yes --outputs " + str(FIXTURE) in commands
    assert any("restore --database orders --new-instance --from-region dr --latest --yes" in c for c in commands)
    primary = json.loads(FIXTURE.read_text())["databases"][0]["primary"]["host"]
    assert not [c for c in commands if "--target" in c or primary in c]


def test_no_test_restore_without_a_scratch_server_anywhere(capsys):
    text = unwrapped(rendered(capsys))
    for line in text.splitlines():
        if "--test-restore" in line:
            assert "--server postgresql://postgres@127.0.0.1:" in line, line


def test_routine_shows_the_schedule_from_the_contracts_jobs(tmp_path, capsys):
    doc = json.loads(FIXTURE.read_text())
    doc["jobs"] = [{"name": "pilotlight-dr-orders-hourly", "kind": "backup", "database": "orders", "tier": "hourly",
                    "side": "primary", "region": "us-east-1", "schedule": "cron(5 * * * ? *)", "timezone": "UTC",
                    "command": ["backup", "--database", "orders", "--tier", "hourly", "--json"], "environment": {}},
                   {"name": "pilotlight-dr-orders-verify", "kind": "verify", "database": "orders", "tier": None,
                    "side": "dr", "region": "us-west-2", "schedule": "cron(30 5 * * ? *)", "timezone": "UTC",
                    "command": ["verify", "--database", "orders", "--test-restore", "--server",
                                "host=127.0.0.1 port=5432 user=postgres dbname=postgres", "--json"], "environment": {}}]
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(doc))
    routine = section(rendered(capsys, outputs=outputs), "## Routine", "## Regional outage")
    assert "| `pilotlight-dr-orders-hourly` | `cron(5 * * * ? *)` | UTC | us-east-1 |" in routine
    assert "| `pilotlight-dr-orders-verify` | `cron(30 5 * * ? *)` | UTC | us-west-2 |" in routine
    assert "never into a production server" in routine


def test_contacts_and_escalation_come_from_the_config(capsys):
    text = rendered(capsys)
    contacts = section(text, "## Contacts and escalation", "## This stack")
    assert "| 1 | Database on-call | first responder | PagerDuty service pilotlight-db | 15 min |" in contacts
    assert "| 3 | Head of engineering | incident commander for P0 | +1 555 0199 (phone) | — |" in contacts


def test_contacts_missing_from_the_config_say_how_to_declare_them(tmp_path, capsys):
    doc = json.loads(FIXTURE.read_text())
    del doc["contacts"]
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(doc))
    assert "declare them as `pilotlight:contacts`" in rendered(capsys, outputs=outputs)


def test_a_table_of_contents_links_every_section(capsys, tmp_path):
    text = rendered(capsys)
    contents = section(text, "## Contents", "## Contacts and escalation")
    outside_code = [line for line in text.splitlines() if line not in code_lines(text)]
    headings = [line[3:] for line in outside_code if line.startswith("## ") and line != "## Contents"]
    for heading in headings:
        assert f"- [{heading}](#{runbook.slug(heading)})" in contents
    assert runbook.main(["--outputs", str(FIXTURE), "--format", "html", "--out", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert f'<h2 id="{runbook.slug("Database loss — RTO 15 min, RPO 5 min")}">' in html
    assert 'href="#contacts-and-escalation"' in html


def test_printed_commands_wrap_instead_of_being_cut_off(capsys, tmp_path):
    text = rendered(capsys)
    lines = code_lines(text)
    too_long = [line for line in lines if len(line) > runbook.WIDTH + 2]
    assert all(" --" not in line.strip().removesuffix(" \\") for line in too_long), too_long  # one option alone
    assert any(line.endswith(" \\") for line in lines)
    joined = unwrapped(text)
    assert ("pilotlight restore --database orders --new-instance --from-region dr --before 2026-01-01T00:00:00Z "
            f"--dry-run --outputs {FIXTURE}") in joined
    assert runbook.main(["--outputs", str(FIXTURE), "--format", "html", "--out", str(tmp_path / "r.html")]) == 0
    assert "white-space:pre-wrap" in (tmp_path / "r.html").read_text()
