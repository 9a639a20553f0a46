"""The drill engine: inject a real failure, recover, measure RTO/RPO against the objectives (`pilotlight drill`).

Scenarios (scripts.drills.scenarios): regional-outage, data-corruption, ransomware, accidental-deletion,
or ``all`` (in that order). Each drill prints its steps as they finish, then one verdict line:
PASS when every step succeeded, every check passed and the measured RTO and RPO are within the
stack's objectives (``objectives`` in the outputs contract); FAIL otherwise, and the exit code
is non-zero. With a report directory each drill writes JSON, Markdown and an HTML timeline there.
"""
from __future__ import annotations

import getpass
import os
import socket
import time
from pathlib import Path
from typing import Any

from scripts import version
from scripts.application import hooks as app_hooks
from scripts.application import smoke
from scripts.drills import report
from scripts.drills import scenarios
from scripts.common import iso, utcnow
from scripts.drills.projection import projected_rto
from scripts.units import seconds as human_seconds
from scripts.contract import SANDBOX_ENVIRONMENT, Contract, ContractError, Database, load_file
from scripts.failover import dns as dnscheck
from scripts.postgres.dsn import side_dsn
from scripts.steps import FAILED, Steps, one_line

ALL = tuple(scenarios.MODULES)
CONTROL_PLANE_FAULTS = ("refuse", "stall", "503", "up")


def run_drill(contract: Contract, db: Database, name: str, *, echo=None, outputs: Path | None = None,
              report_dir: Path | None = None, options: dict[str, Any] | None = None,
              runbook_html: str | None = None) -> dict[str, Any]:
    """Run one scenario end to end; always returns a result (a failure is a FAIL verdict, not an exception)."""
    steps = Steps(echo=echo)
    ctx = scenarios.DrillContext(contract, db, steps, outputs=outputs, options=dict(options or {}))
    started, t0 = utcnow(), time.monotonic()
    error = None
    try:
        scenarios.load(name).run(ctx)
    except Exception as exc:  # noqa: BLE001 - any failure is the drill's finding, reported, not raised
        error = one_line(exc)
    smoke_results = run_smoke_checks(ctx, outputs)
    measured = dict(ctx.measured) | application_timings(steps)
    objective = contract.objectives[name]
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
        "sandbox": contract.environment == SANDBOX_ENVIRONMENT,
        "target": contract.environment,
        "operator": operator(),
        "pilotlight": version.info(),
        "startedAt": iso(started),
        "finishedAt": iso(utcnow()),
        "wallSeconds": round(time.monotonic() - t0, 3),
        "verdict": "PASS" if verdict_ok else "FAIL",
        "objective": {"rtoSeconds": objective.rto_seconds, "rpoSeconds": objective.rpo_seconds},
        "measured": measured,
        "projectedRto": projected_rto(contract, name, measured, ctx.backup),
        "checks": ctx.checks,
        "smokeChecks": smoke_results,
        "backup": ctx.backup,
        "failedStep": {"name": failed.name, "detail": failed.detail} if failed else None,
        "error": error,
        "steps": steps.as_list(),
        "notes": ctx.notes,
    }
    if report_dir is not None:
        result["reports"] = report.write(result, report_dir, runbook_html=runbook_html)
    return result


def run_smoke_checks(ctx: scenarios.DrillContext, outputs: Path | None) -> list[dict[str, Any]]:
    """The database's smoke checks on the side that serves once the drill is over, each also a check.

    The contract is read again from its file first: a drill may have moved the database (failback).
    """
    db = ctx.db
    if not db.smoke_checks:
        return []
    source = outputs or ctx.contract.source
    contract = ctx.contract
    with ctx.steps.step("smoke checks") as s:
        try:
            contract = load_file(source) if source else contract
            db = contract.database(db.name)
        except ContractError as exc:
            s.note(f"outputs unreadable, using the drill's: {exc}")
        side = dnscheck.answering_side(contract, db) or contract.active
        results = smoke.run_checks(db, side_dsn(contract, side, db))
        bad = smoke.failed(results)
        s.note(f"on {side}: {len(results) - len(bad)} of {len(results)} passed", FAILED if bad else None)
    for r in results:
        ctx.check(f"smoke: {r['name']}", r["passed"], f"{r['detail']} ({r['seconds']:.3f} s)")
    return results


def application_timings(steps: Steps) -> dict[str, float]:
    """How long stopping and starting the application took (summed over the drill's restores and cutovers)."""
    out: dict[str, float] = {}
    for step in steps.steps:
        for suffix, key in ((app_hooks.STOP, "applicationStopSeconds"), (app_hooks.START, "applicationStartSeconds")):
            if step.name.endswith(suffix):
                out[key] = round(out.get(key, 0.0) + step.seconds, 3)
    return out


def operator() -> str:
    """Who ran it: ``$PILOTLIGHT_OPERATOR`` (e.g. the CI job), else user@host."""
    if os.environ.get("PILOTLIGHT_OPERATOR"):
        return os.environ["PILOTLIGHT_OPERATOR"]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def verdict_line(result: dict[str, Any]) -> str:
    m, o = result["measured"], result["objective"]
    projected = (result.get("projectedRto") or {}).get("seconds")
    on_aws = f", on AWS ~{human_seconds(projected)}" if projected is not None else ""
    line = (f"{result['scenario']}: {result['verdict']}  RTO {human_seconds(m.get('rtoSeconds'))} on the "
            f"{result.get('target', 'sandbox')}{on_aws} (objective {human_seconds(o['rtoSeconds'])})"
            f"  RPO {human_seconds(m.get('rpoSeconds'))} (objective {human_seconds(o['rpoSeconds'])})")
    if result["failedStep"]:
        line += f"\n  failed step '{result['failedStep']['name']}': {result['failedStep']['detail']}"
    elif result["error"]:
        line += f"\n  error: {result['error']}"
    failed_checks = [c for c in result["checks"] if not c["passed"]]
    line += "".join(f"\n  check failed: {c['name']} ({c['detail']})" for c in failed_checks)
    if result.get("reports"):
        line += f"\n  report: {result['reports']['html']}"
    return line


def plan(contract: Contract, db: Database, names: tuple[str, ...]) -> dict[str, Any]:
    """What ``drill --dry-run`` prints: per scenario what it breaks, the objectives, the projection."""
    drills = []
    for name in names:
        objective = contract.objectives[name]
        drills.append({"scenario": name, "breaks": (scenarios.load(name).__doc__ or "").split("\n")[0].split(": ", 1)[-1],
                       "objective": {"rtoSeconds": objective.rto_seconds, "rpoSeconds": objective.rpo_seconds},
                       "projectedRto": projected_rto(contract, name, {}, None)})
    hooks = app_hooks.for_database(contract, db, "drill")
    return {"dryRun": True, "target": contract.environment, "database": db.name,
            "confirmation": f"--yes-on-stack {contract.stack}", "drills": drills,
            "application": hooks.plan() if hooks is not None else [],
            "smokeChecks": smoke.plan(db)}
