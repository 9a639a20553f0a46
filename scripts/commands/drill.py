"""`pilotlight drill --scenario NAME`: inject a real failure, recover, measure RTO/RPO against the objectives.

Flags, the real-stack confirmation and the output; each drill is
:func:`scripts.drills.engine.run_drill`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from scripts.commands.parser import echo_for, emit, load_contract, parser_for, run
from scripts.common import Exit, Refused
from scripts.contract import Contract
from scripts.drills.engine import ALL, CONTROL_PLANE_FAULTS, run_drill, verdict_line


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
            echo(f"drill {name} on {contract.stack} ({'sandbox' if contract.sandbox else 'REAL STACK'})")  # names it only
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
