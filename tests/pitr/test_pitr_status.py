"""`status` and `backups list` show the restorable window per database and region; DR lagging the RPO warns."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from scripts.commands import status
from scripts.common import utcnow
from scripts.contract import load_file
from scripts.pitr import rds

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "outputs.json"


def _windows(now, dr_lag: float, primary_lag: float = 10):
    return {"primary": rds.Window(now - timedelta(days=7), now - timedelta(seconds=primary_lag), "us-east-1"),
            "dr": rds.Window(now - timedelta(days=7), now - timedelta(seconds=dr_lag), "us-west-2")}


def test_a_dr_window_lagging_more_than_the_rpo_warns_and_a_fresh_one_is_ok():
    contract, now = load_file(FIXTURE), utcnow()
    rpo = contract.objectives["data-corruption"].rpo_seconds
    lines = {l.subject: l for l in status.window_lines(contract, contract.database(), _windows(now, 60), now)}
    assert lines["orders dr (us-west-2)"].state == "OK" and lines["orders primary (us-east-1)"].state == "OK"
    lagging = status.window_lines(contract, contract.database(), _windows(now, rpo + 60), now)
    dr = next(l for l in lagging if l.subject == "orders dr (us-west-2)")
    assert dr.state == "WARN" and dr.value == "latest 61 min ago" and " .. " in dr.detail


def test_an_unreadable_window_is_a_warn_line_with_the_reason():
    contract, now = load_file(FIXTURE), utcnow()
    lines = status.window_lines(contract, contract.database(), {"primary": "RDS endpoint unreachable", "dr": None}, now)
    assert [l.state for l in lines] == ["WARN", "WARN"] and lines[0].detail == "RDS endpoint unreachable"


def test_stale_backups_but_a_fresh_dr_window_meet_the_data_corruption_rpo_by_pitr_not_ransomware(monkeypatch):
    contract, now = load_file(FIXTURE), utcnow()
    from scripts.vault import layout as vault

    stamp = (now - timedelta(hours=5)).strftime("%Y%m%dT%H%M%S%fZ")
    old = vault.Entry(f"orders-{stamp}-aaaaaa", "hourly", "orders", "primary")
    monkeypatch.setattr(vault, "list_backups", lambda contract, side, *a: [old])
    monkeypatch.setattr(status, "_replication_status", lambda contract, entry: None)
    lines = {(l.check, l.subject): l for l in status.backup_lines(contract, now, {"orders": _windows(now, 120)})}
    corruption = lines[("RPO", "orders data-corruption")]
    assert corruption.state == "OK" and "point-in-time restore" in corruption.detail
    assert lines[("RPO", "orders accidental-deletion")].state == "OK"
    ransomware = lines[("RPO", "orders ransomware")]
    assert ransomware.detail == "newest complete backup, any tier"
    lagging = {(l.check, l.subject): l for l in status.backup_lines(contract, now, {"orders": _windows(now, 7200)})}
    assert lagging[("RPO", "orders data-corruption")].state == "FAIL"
