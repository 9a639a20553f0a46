"""`pilotlight cutover --to dr`: promote the DR database and make the service name answer it.

Flags, the ``--yes`` confirmation and the output; the steps themselves are
:func:`scripts.failover.cutover.perform_cutover`.
"""
from __future__ import annotations

import argparse
from typing import Any

from scripts.commands.parser import echo_for, emit, load_contract, parser_for, run
from scripts.common import Exit, Refused
from scripts.failover.cutover import DNS_TIMEOUT, perform_cutover
from scripts.steps import Steps


def human(result: dict[str, Any], steps: Steps) -> list[str]:
    to = result["to"]
    if result["already"]:
        lines = [f"already on {to}: the {to} database is a primary and every nameserver answers it; nothing changed"]
        return lines + [f"warning: {w}" for w in result["warnings"]]
    if result["dryRun"]:
        lines = [f"dry run: cutover of {result['database']} to {to} would:"]
        lines += [f"  {i}. {p}" for i, p in enumerate(result["plan"], 1)]
        return lines
    total = sum(s.seconds for s in steps.steps)
    lines = [f"cutover to {to} complete in {total:.2f} s"]
    lines += [f"warning: {w}" for w in result["warnings"]]
    lines.append(f"so the next `pulumi up` agrees: {result['pulumiConfig']}")
    return lines


def build_parser(prog: str = "cutover", sides: tuple[str, ...] = ("dr",), force: bool = True):
    parser = parser_for(prog, __doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("--to", required=True, choices=sides, help="the side to move the service to")
    parser.add_argument("--database", metavar="NAME", help="protected database (default: the first)")
    parser.add_argument("--dry-run", action="store_true", help="print the checks and the plan; act on nothing")
    parser.add_argument("--yes", action="store_true", help="confirm: promote and move traffic")
    if force:
        parser.add_argument("--force", action="store_true", help="proceed even if the target database is not healthy")
    parser.add_argument("--dns-timeout", type=float, default=DNS_TIMEOUT, metavar="SECONDS",
                        help=f"how long to wait for every nameserver to answer (default {DNS_TIMEOUT:.0f})")
    return parser


def _body(args: argparse.Namespace) -> int:
    contract = load_contract(args)
    db = contract.database(args.database)
    if not (args.dry_run or args.yes):
        raise Refused(f"cutover promotes the {args.to} database and moves {db.dns.record_name}; "
                      "re-run with --yes (or --dry-run to see the plan)")
    steps = Steps(echo=echo_for(args))
    result = perform_cutover(contract, db, args.to, steps, dry_run=args.dry_run, force=args.force,
                             outputs=args.outputs, dns_timeout=args.dns_timeout)
    result["steps"] = steps.as_list()
    emit(args, result, lambda: human(result, steps))
    return Exit.OK


def main(argv: list[str] | None = None) -> int:
    return run(_body, build_parser(), argv)
