"""A failed smoke check after a cutover: the run is FAILED (exit 1, not bad input's 2), said in one line and in JSON."""
from __future__ import annotations

import json
from pathlib import Path

from scripts.commands import cutover
from scripts.common import Exit

FIXTURE = Path(__file__).parents[1] / "fixtures" / "outputs.json"


def test_a_failed_smoke_check_after_cutover_exits_1_with_ok_false(monkeypatch, capsys):
    def done(contract, db, to, steps, **kwargs):
        assert kwargs.get("checks", True)  # the command wants the checks run
        with steps.step("stop application"):
            pass
        return {"to": to, "database": db.name, "dryRun": False, "already": False, "changed": True, "warnings": [],
                "done": [], "pulumiConfig": "pulumi config set pilotlight:active dr",
                "smokeChecks": [{"name": "orders readable", "kind": "sql", "passed": False,
                                 "detail": "returned false, expected true", "startedAt": "2026-12-02T00:00:00Z",
                                 "seconds": 0.01}]}

    monkeypatch.setattr(cutover, "perform_cutover", done)
    rc = cutover.main(["--to", "dr", "--yes", "--outputs", str(FIXTURE), "--json"])
    assert rc == Exit.FAILED
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert doc["ok"] is False and doc["error"]["exitCode"] == 1 and doc["steps"][0]["name"] == "stop application"
    line = out.err.strip().splitlines()[-1]  # after the steps, echoed to stderr with --json
    assert line.startswith("pilotlight cutover: error: cutover to dr complete, but 1 of 1 smoke check(s) FAILED "
                           "(orders readable: returned false, expected true)")
    assert "pilotlight failback --to primary --yes" in line
