"""`pilotlight drill --scenario NAME`: inject a real failure, recover, measure RTO/RPO against the objectives.

Scenarios (scripts.drills.scenarios): regional-outage, data-corruption, ransomware, accidental-deletion,
or ``all`` (in that order). Each drill prints its steps as they finish, then one verdict line:
PASS when every step succeeded, every check passed and the measured RTO and RPO are within the
stack's objectives (``objectives`` in the outputs contract); FAIL otherwise, and the exit code
is non-zero. With ``--report DIR`` each drill writes JSON, Markdown and an HTML timeline there.

On the sandbox a drill needs no confirmation. On a real stack it needs ``--yes-on-stack NAME``
naming that stack, because it breaks things for real (see docs/drills.md for what each touches).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from scripts.drills import report
from scripts.drills import scenarios
from scripts.common import Exit, Refused, emit, iso, load_contract, parser_for, run, utcnow
from scripts.contract import Contract, Database
from scripts.failover.cutover import echo_for
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


def confirm(contract: Contract, args: argparse.Namespace) -> None:
    """A real stack needs its name typed out; the sandbox needs nothing."""
    if contract.sandbox is not None:
        return
    if args.yes_on_stack != contract.stack:
        raise Refused(f"{contract.stack!r} is a real stack: a drill breaks things there for real "
                      f"(docs/drills.md); re-run with --yes-on-stack {contract.stack}")


def build_parser() -> argparse.ArgumentParser:
    parser = parser_for("drill", __doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("--scenario", required=True, choices=[*ALL, "all"], help="what to break")
    parser.add_argument("--report", metavar="DIR", type=Path, help="write JSON, Markdown and HTML reports here")
    parser.add_argument("--database", metavar="NAME", help="protected database (default: the first)")
    parser.add_argument("--yes-on-stack", metavar="NAME", help="confirm a drill on the real stack NAME")
    parser.add_argument("--control-plane", choices=CONTROL_PLANE_FAULTS, default="refuse",
                        help="regional-outage on the sandbox: how Route53's control plane fails (refuse connections "
                             "[default], stall, answer 503) or stays up")
    parser.add_argument("--recover-with", choices=("backup", "pitr"), default="backup",
                        help="data-corruption: recover from the newest backup [default] or by point-in-time restore "
                             "(RDS automated backups, --from-region) to just before the damage")
    parser.add_argument("--from-region", choices=("primary", "dr"), default="dr",
                        help="with --recover-with pitr: which region's automated backups (default dr, the replicated copy)")
    return parser


def _body(args: argparse.Namespace) -> int:
    contract = load_contract(args)
    db = contract.database(args.database)
    confirm(contract, args)
    names = ALL if args.scenario == "all" else (args.scenario,)
    echo = echo_for(args)
    results = []
    for name in names:
        if echo:
            echo(f"drill {name} on {contract.stack} ({'sandbox' if contract.sandbox else 'REAL STACK'})")
        result = run_drill(contract, db, name, echo=echo, outputs=args.outputs, report_dir=args.report,
                           options={"control_plane": args.control_plane, "recover_with": args.recover_with,
                                    "from_region": args.from_region})
        results.append(result)
        if echo:
            echo(verdict_line(result))
    emit(args, results if len(results) > 1 else results[0])
    return Exit.OK if all(r["verdict"] == "PASS" for r in results) else Exit.FAILED


def main(argv: list[str] | None = None) -> int:
    return run(_body, build_parser(), argv)
