"""The drill engine: inject a real failure, recover, measure RTO/RPO against the objectives (`pilotlight drill`).

Scenarios (scripts.drills.scenarios): regional-outage, data-corruption, ransomware, accidental-deletion,
or ``all`` (in that order). Each drill prints its steps as they finish, then one verdict line:
PASS when every step succeeded, every check passed and the measured RTO and RPO are within the
stack's objectives (``objectives`` in the outputs contract); FAIL otherwise, and the exit code
is non-zero. With ``--report DIR`` each drill writes JSON, Markdown and an HTML timeline there.

On the sandbox a drill needs no confirmation. On a real stack it needs ``--yes-on-stack NAME``
naming that stack, because it breaks things for real (see docs/drills.md for what each touches).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from scripts.drills import report
from scripts.drills import scenarios
from scripts.common import iso, utcnow
from scripts.contract import Contract, Database
from scripts.steps import Steps, one_line

ALL = tuple(scenarios.MODULES)
CONTROL_PLANE_FAULTS = ("refuse", "stall", "503", "up")


def run_drill(contract: Contract, db: Database, name: str, *, echo=None, outputs: Path | None = None,
              report_dir: Path | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one scenario end to end; always returns a result (a failure is a FAIL verdict, not an exception)."""
    steps = Steps(echo=echo)
    ctx = scenarios.DrillContext(contract, db, steps, outputs=outputs, options=dict(options or {}))
    started, t0 = utcnow(), time.monotonic()
    error = None
    try:
        scenarios.load(name).run(ctx)
    except Exception as exc:  # noqa: BLE001 - any failure is the drill's finding, reported, not raised
        error = one_line(exc)
    objective = contract.objectives[name]
    measured = dict(ctx.measured)
    failed = steps.failed
    verdict_ok = (
        error is None
        and failed is None
        and all(c["passed"] for c in ctx.checks)
        and measured.get("rtoSeconds") is not None
        and measured["rtoSeconds"] <= objective.rto_seconds
        and measured.get("rpoSeconds") is not None
        and measured["rpoSeconds"] <= objective.rpo_seconds
    )
    result = {
        "scenario": name,
        "stack": contract.stack,
        "database": db.name,
        "sandbox": contract.sandbox is not None,
        "startedAt": iso(started),
        "finishedAt": iso(utcnow()),
        "wallSeconds": round(time.monotonic() - t0, 3),
        "verdict": "PASS" if verdict_ok else "FAIL",
        "objective": {"rtoSeconds": objective.rto_seconds, "rpoSeconds": objective.rpo_seconds},
        "measured": measured,
        "checks": ctx.checks,
        "backup": ctx.backup,
        "failedStep": {"name": failed.name, "detail": failed.detail} if failed else None,
        "error": error,
        "steps": steps.as_list(),
        "notes": ctx.notes,
    }
    if report_dir is not None:
        result["reports"] = report.write(result, report_dir)
    return result


def verdict_line(result: dict[str, Any]) -> str:
    m, o = result["measured"], result["objective"]

    def fmt(key: str) -> str:
        return "—" if m.get(key) is None else f"{m[key]:.3f} s"

    line = (f"{result['scenario']}: {result['verdict']}  RTO {fmt('rtoSeconds')} (objective {o['rtoSeconds']:.0f} s)"
            f"  RPO {fmt('rpoSeconds')} (objective {o['rpoSeconds']:.0f} s)")
    if result["failedStep"]:
        line += f"\n  failed step '{result['failedStep']['name']}': {result['failedStep']['detail']}"
    elif result["error"]:
        line += f"\n  error: {result['error']}"
    failed_checks = [c for c in result["checks"] if not c["passed"]]
    line += "".join(f"\n  check failed: {c['name']} ({c['detail']})" for c in failed_checks)
    if result.get("reports"):
        line += f"\n  report: {result['reports']['html']}"
    return line
