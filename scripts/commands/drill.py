"""`pilotlight drill --scenario NAME`: inject a real failure, recover, measure RTO/RPO against the objectives.

Flags, the real-stack confirmation and the output; each drill is
:func:`scripts.drills.engine.run_drill`. A drill needs ``--yes-on-stack NAME`` naming the stack
it runs on, the sandbox's included, because it breaks things for real (see docs/drills.md for
what each touches; `make drill` runs the engine on its own sandbox and needs no flag).
``--dry-run`` prints what each drill would break, its objectives and the RTO projected on AWS,
touching nothing (exit 0); with ``--report`` the stack's runbook is written beside the reports.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from scripts.commands import runbook
from scripts.commands.parser import echo_for, emit, load_contract, parser_for, run
from scripts.common import Exit, Refused, UsageError, iso, utcnow
from scripts.contract import SANDBOX_ENVIRONMENT, Contract, Database
from scripts.drills.engine import ALL, CONTROL_PLANE_FAULTS, plan, run_drill, verdict_line
from scripts.units import seconds as human_seconds


def confirm(contract: Contract, args: argparse.Namespace) -> None:
    """The stack's name typed out: a drill breaks things for real, on the sandbox too."""
    if args.yes_on_stack != contract.stack:
        raise Refused(f"a drill breaks things on stack {contract.stack!r} for real "
                      f"(docs/drills.md); re-run with --yes-on-stack {contract.stack}")



def build_parser() -> argparse.ArgumentParser:
    parser = parser_for("drill", __doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("--scenario", required=True, choices=[*ALL, "all"], help="what to break")
    parser.add_argument("--report", metavar="DIR", type=Path, help="write JSON, Markdown and HTML reports here")
    parser.add_argument("--database", metavar="NAME", help="protected database (default: the first)")
    parser.add_argument("--yes-on-stack", metavar="NAME", help="confirm: run the drill on stack NAME")
    parser.add_argument("--dry-run", action="store_true",
                        help="print what each drill would break, its objectives and projected RTO; touch nothing")
    parser.add_argument("--control-plane", choices=CONTROL_PLANE_FAULTS, default="refuse",
                        help="regional-outage on the sandbox: how Route53's control plane fails (refuse connections "
                             "[default], stall, answer 503) or stays up")
    parser.add_argument("--recover-with", choices=("backup", "pitr", "standby", "new-instance"), default=None,
                        help="data-corruption: from the newest backup [default] or by point-in-time restore (pitr: RDS "
                             "automated backups, --from-region) to just before the damage; database-loss: promote the "
                             "standby [default] or restore the newest backup into a new instance (new-instance)")
    parser.add_argument("--from-region", choices=("primary", "dr"), default="dr",
                        help="with --recover-with pitr or new-instance: which region's automated backups or vault "
                             "(default dr)")
    return parser



RECOVERIES = {"data-corruption": ("backup", "pitr"), "database-loss": ("standby", "new-instance")}


def _body(args: argparse.Namespace) -> int:
    if args.recover_with and args.scenario != "all" and args.recover_with not in RECOVERIES.get(args.scenario, ()):
        raise UsageError(f"--recover-with {args.recover_with} is not a recovery of {args.scenario}; "
                         + "; ".join(f"{k}: {' or '.join(v)}" for k, v in RECOVERIES.items()))
    contract = load_contract(args)
    db = contract.database(args.database)
    names = ALL if args.scenario == "all" else (args.scenario,)
    if args.dry_run:
        return _plan(args, contract, db, names)
    confirm(contract, args)
    echo = echo_for(args)
    results = []
    for name in names:
        if echo:
            echo(f"drill {name} on the {contract.environment}"
                 + ("" if contract.environment == SANDBOX_ENVIRONMENT else " (REAL STACK)"))
        result = run_drill(contract, db, name, echo=echo, outputs=args.outputs, report_dir=args.report,
                           options={"control_plane": args.control_plane, "recover_with": args.recover_with,
                                    "from_region": args.from_region},
                           runbook_html=runbook_html(contract, args.outputs) if args.report else None)
        results.append(result)
        if echo:
            echo(verdict_line(result))
    emit(args, results if len(results) > 1 else results[0])
    return Exit.OK if all(r["verdict"] == "PASS" for r in results) else Exit.FAILED



def runbook_html(contract: Contract, outputs: Path | None) -> str:
    """The stack's runbook as HTML, written beside the reports so they can link to it."""
    source = f"--outputs {outputs or contract.source}" if (outputs or contract.source) else f"--stack {contract.stack}"
    title = f"DR runbook — {contract.project}/{contract.stack}"
    return runbook.render_html(runbook.render_markdown(contract, source, iso(utcnow())), title)


def _plan(args: argparse.Namespace, contract: Contract, db: Database, names: tuple[str, ...]) -> int:
    doc = plan(contract, db, names)

    def human():
        yield f"dry run: nothing touched. On the {doc['target']}, database {db.name}, the drill would:"
        for d in doc["drills"]:
            o, p = d["objective"], d["projectedRto"]
            on_aws = f"~{human_seconds(p['seconds'])}" if p["seconds"] is not None else "not projected"
            yield f"  {d['scenario']}: {d['breaks']}"
            yield (f"      objective RTO {human_seconds(o['rtoSeconds'])}, RPO {human_seconds(o['rpoSeconds'])}; "
                   f"RTO on AWS {on_aws} ({p['basis']})")
        yield from (f"  around each restore and cutover: {line}" for line in doc["application"])
        yield from (f"  after each drill: {line}" for line in doc["smokeChecks"])
        yield ("to run it: drill --scenario " + args.scenario
               + f" {doc['confirmation']} [--report DIR]")

    emit(args, doc, human)
    return Exit.OK



def main(argv: list[str] | None = None) -> int:
    return run(_body, build_parser(), argv)
