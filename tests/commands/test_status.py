"""`pilotlight status` on a real sandbox, before and after its backups go stale; and with nothing reachable."""
from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest

from scripts.vault import backup
from scripts.commands import status
from scripts.common import utcnow
from scripts.contract import TIERS

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "outputs.json"


def run_status(capsys, *args: str) -> tuple[int, dict]:
    capsys.readouterr()  # drop what earlier steps (sandbox up, backups) printed
    rc = status.main([*args, "--json"])
    return rc, json.loads(capsys.readouterr().out)


def by_key(result: dict) -> dict[tuple[str, str], dict]:
    return {(line["check"], line["subject"]): line for line in result["lines"]}


def drill_report(directory: Path, verdict: str) -> None:
    directory.mkdir(exist_ok=True)
    doc = {"scenario": "regional-outage", "verdict": verdict, "startedAt": "2026-11-24T03:00:00.000000Z",
           "measured": {"rtoSeconds": 6.2, "rpoSeconds": 0.3}}
    (directory / f"20261124T030000Z-regional-outage-{verdict}.json").write_text(json.dumps(doc))


@pytest.mark.integration
def test_status_on_the_sandbox_before_and_after_backups_go_stale(sandbox_factory, tmp_path, capsys, monkeypatch):
    sb = sandbox_factory(seed_rows=20)
    for tier in TIERS:
        backup.perform_backup(sb.contract, tier)
    reports = tmp_path / "reports"
    drill_report(reports, "PASS")
    args = ("--outputs", str(sb.outputs_path), "--reports", str(reports))

    deadline = time.monotonic() + 60
    while True:  # the sandbox's replicator copies to the DR vault within seconds
        rc, result = run_status(capsys, *args)
        if by_key(result)[("replication", "orders")]["state"] == "OK" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    lines = by_key(result)
    assert rc == 0, result
    for tier in TIERS:
        assert lines[("backup age", f"orders {tier}")]["state"] == "OK"
    assert lines[("RPO", "orders data-corruption")]["state"] == "OK"
    assert lines[("replication", "orders")]["state"] == "OK"
    assert lines[("standby lag", "orders dr")]["state"] == "OK"
    assert lines[("dns", "db.orders.example.com")]["state"] == "OK"
    assert lines[("dns", "db.orders.example.com")]["value"] == "primary"
    assert lines[("drill", "regional-outage")]["state"] == "OK"

    later = utcnow() + timedelta(hours=4)  # nobody backed up for four hours
    monkeypatch.setattr(status, "utcnow", lambda: later)
    rc, result = run_status(capsys, *args)
    lines = by_key(result)
    assert rc == 1
    hourly = lines[("backup age", "orders hourly")]
    assert hourly["state"] == "FAIL" and hourly["value"].startswith("4 h "), hourly
    assert lines[("backup age", "orders daily")]["state"] == "OK"
    assert lines[("RPO", "orders data-corruption")]["state"] == "FAIL"
    assert lines[("RPO", "orders ransomware")]["state"] == "OK"  # 24 h RPO still met
    assert lines[("standby lag", "orders dr")]["state"] == "OK"

    drill_report(reports, "FAIL")  # newer than nothing: same start time, so make it clearly the newest
    newest = json.loads((reports / "20261124T030000Z-regional-outage-FAIL.json").read_text())
    newest["startedAt"] = "2026-11-24T03:30:00.000000Z"
    (reports / "20261124T030000Z-regional-outage-FAIL.json").write_text(json.dumps(newest))
    monkeypatch.undo()
    rc, result = run_status(capsys, *args)
    assert by_key(result)[("drill", "regional-outage")]["state"] == "FAIL" and rc == 1


def test_unreachable_sources_are_fail_lines_not_a_crash(tmp_path, capsys):
    doc = json.loads(FIXTURE.read_text())
    closed = "http://127.0.0.1:9"  # discard port: nothing listens
    doc["sandbox"] = {
        "stateDir": str(tmp_path), "awsEndpoints": {"us-east-1": closed, "us-west-2": closed},
        "dns": {"host": "127.0.0.1", "port": 9}, "superuser": "postgres", "appUser": "app",
        "passfile": str(tmp_path / "pgpass"),
        "clusters": {side: {"host": "127.0.0.1", "port": 9, "dataDir": str(tmp_path)} for side in ("primary", "dr")},
    }
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(doc))
    rc, result = run_status(capsys, "--outputs", str(outputs), "--reports", str(tmp_path / "none"))
    assert rc == 1
    states = {(line["check"], line["state"]) for line in result["lines"]}
    assert {("vault", "FAIL"), ("standby lag", "FAIL"), ("dns", "FAIL"), ("drill", "WARN")} <= states
    assert all(line["detail"] or line["value"] for line in result["lines"])


def test_a_missing_outputs_file_is_one_line(tmp_path, capsys):
    assert status.main(["--outputs", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_replication_is_judged_against_the_rtc_window(monkeypatch):
    from scripts.vault import layout as vault
    from scripts.contract import load_file

    contract = load_file(FIXTURE)
    now = utcnow()
    stamp = (now - timedelta(minutes=1)).strftime("%Y%m%dT%H%M%S%fZ")
    old = (now - timedelta(hours=1)).strftime("%Y%m%dT%H%M%S%fZ")
    fresh = vault.Entry(f"orders-{stamp}-aaaaaa", "hourly", "orders", "primary")
    stale = vault.Entry(f"orders-{old}-bbbbbb", "hourly", "orders", "primary")
    monkeypatch.setattr(status, "_replication_status", lambda contract, entry: None)
    db = contract.database()
    assert status._replication_line(contract, db, [fresh], [], now).state == "WARN"
    assert status._replication_line(contract, db, [stale], [], now).state == "FAIL"
    assert status._replication_line(contract, db, [stale], [stale], now).state == "OK"
    monkeypatch.setattr(status, "_replication_status", lambda contract, entry: "FAILED")
    line = status._replication_line(contract, db, [fresh], [], now)
    assert line.state == "FAIL" and "FAILED" in line.detail
