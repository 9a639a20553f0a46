"""`pilotlight failback --to primary`: move the service back once the primary region is usable again.

Flags (the cutover's, without ``--force``), the plan-only convention and the output; the steps
themselves are :func:`scripts.failover.failback.perform_failback`.
"""
from __future__ import annotations

import argparse
from typing import Any

from scripts.commands.cutover import build_parser
from scripts.commands.parser import echo_for, emit, load_contract, plan_exit, plan_only, run
from scripts.common import Exit
from scripts.failover.failback import perform_failback
from scripts.steps import Steps
from scripts.units import seconds as dur


def human(result: dict[str, Any], steps: Steps) -> list[str]:
    if result["already"]:
        return ["already on primary: primary serves, dr is its replica, DNS answers primary; nothing changed"]
    if result["dryRun"]:
        return [f"dry run: failback of {result['database']} would:"] + [
            f"  {i}. {p}" for i, p in enumerate(result["plan"], 1)]
    total = sum(s.seconds for s in steps.steps)
    return [f"failback to primary complete in {dur(total)}; new primary {result['newPrimary']['identifier']}, "
            f"new standby {result['newStandby']['identifier']}", "so the stack agrees, run:",
            *(f"  {line}" for line in result["pulumiCommands"])]



def _body(args: argparse.Namespace) -> int:
    contract = load_contract(args)
    db = contract.database(args.database)
    steps = Steps(echo=echo_for(args))
    result = perform_failback(contract, db, steps, dry_run=plan_only(args), outputs=args.outputs,
                              dns_timeout=args.dns_timeout, discard_diverged=args.discard_diverged)
    result["steps"] = steps.as_list()
    emit(args, result, lambda: human(result, steps))
    return plan_exit(args, "pilotlight failback") if result["dryRun"] else Exit.OK



def main(argv: list[str] | None = None) -> int:
    parser = build_parser("failback", ("primary",), force=False)
    parser.description = __doc__.splitlines()[0].split(": ", 1)[1]
    parser.add_argument("--discard-diverged", action="store_true",
                        help="the old primary took writes DR never got: back it up into the vault, then discard it")
    return run(_body, parser, argv)
