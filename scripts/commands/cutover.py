"""`pilotlight cutover --to dr`: promote the DR database and make the service name answer it.

Flags, the plan-only convention (``--dry-run``: the plan, exit 0; no ``--yes``: the plan, nothing
done, exit 4) and the output; the steps themselves are
:func:`scripts.failover.cutover.perform_cutover`.
"""
from __future__ import annotations

import argparse
from typing import Any

from scripts.application import smoke
from scripts.commands.parser import (add_confirmation, echo_for, emit, emit_failed, load_contract, parser_for,
                                     plan_exit, plan_only, run)
from scripts.common import Exit
from scripts.failover.cutover import DNS_TIMEOUT, perform_cutover
from scripts.steps import Steps
from scripts.units import seconds as dur


def human(result: dict[str, Any], steps: Steps) -> list[str]:
    to = result["to"]
    if result["already"]:
        lines = [f"already on side {to}: its database is a primary and every nameserver answers it; nothing changed"]
        return lines + [f"warning: {w}" for w in result["warnings"]]
    if result["dryRun"]:
        lines = [f"dry run: cutover of {result['database']} to side {to} would:"]
        lines += [f"  {i}. {p}" for i, p in enumerate(result["plan"], 1)]
        return lines
    total = sum(s.seconds for s in steps.steps)
    lines = [f"cutover to side {to} complete in {dur(total)}"]
    lines += [f"warning: {w}" for w in result["warnings"]]
    lines += smoke.lines(result.get("smokeChecks") or [])
    lines.append(f"so the next `pulumi up --refresh` agrees: {result['pulumiConfig']}, then `pulumi up --refresh`")
    return lines



def build_parser(prog: str = "cutover", sides: tuple[str, ...] = ("dr",), force: bool = True):
    parser = parser_for(prog, __doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("--to", required=True, choices=sides, help="the side to move the service to")
    parser.add_argument("--database", metavar="NAME", help="protected database (default: the first)")
    add_confirmation(parser, "promote and move traffic")
    if force:
        parser.add_argument("--force", action="store_true", help="proceed even if the target database is not healthy")
    parser.add_argument("--dns-timeout", type=float, default=DNS_TIMEOUT, metavar="SECONDS",
                        help=f"how long to wait for every nameserver to answer (default {DNS_TIMEOUT:.0f})")
    return parser



def _body(args: argparse.Namespace) -> int:
    contract = load_contract(args)
    db = contract.database(args.database)
    steps = Steps(echo=echo_for(args))
    result = perform_cutover(contract, db, args.to, steps, dry_run=plan_only(args), force=args.force,
                             outputs=args.outputs, dns_timeout=args.dns_timeout)
    result["steps"] = steps.as_list()
    if smoke.failed(result.get("smokeChecks") or []):
        return emit_failed(args, "pilotlight cutover", result, smoke.failure_message(
            result["smokeChecks"], f"cutover to {args.to} complete",
            "`pilotlight failback --to primary --yes` moves the service back once the primary is usable"
            if args.to == "dr" else None), lambda: human(result, steps))
    emit(args, result, lambda: human(result, steps))
    return plan_exit(args, "pilotlight cutover") if result["dryRun"] else Exit.OK



def main(argv: list[str] | None = None) -> int:
    return run(_body, build_parser(), argv)
