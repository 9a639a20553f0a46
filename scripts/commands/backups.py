"""`pilotlight backups list [--region primary|dr] [--tier T] [--json]`: the vault's catalog.

Every backup under the tier prefixes, newest first; ones without a valid manifest or whose
stored object is missing or has the wrong size are listed as INCOMPLETE with the reason, so an
interrupted run is visible but never mistaken for a backup. Above them, the restorable window of
each database's RDS automated backups in that region (what `restore --to-time` can reach).
"""
from __future__ import annotations

import sys

from scripts.common import Exit, PilotlightError, iso
from scripts.commands.parser import emit, load_contract, parser_for, run
from stacks.vocabulary import SIDES, TIERS
from scripts.units import size

# boto3 (through the vault and RDS modules) and rich are imported where a listing needs them, so
# `backups --help` starts without them and `--json` never loads rich (start-up: docs/benchmarks.md).


def _window(contract, db, side: str) -> dict[str, str]:
    """Earliest/latest restorable time, or why it could not be read (the vault listing still shows)."""
    from scripts.pitr import rds

    try:
        found = rds.window(contract, db, side)
    except PilotlightError as exc:
        return {"error": str(exc)}
    return {"earliest": iso(found.earliest), "latest": iso(found.latest)}


def main(argv: list[str] | None = None) -> int:
    parser = parser_for("backups", "List the backups in the vault.")
    parser.add_argument("action", choices=["list"], help="what to do (list)")
    parser.add_argument("--region", choices=SIDES, default="primary", help="which side's bucket (default primary)")
    parser.add_argument("--tier", choices=TIERS, help="only this tier")
    parser.add_argument("--database", metavar="NAME", help="only this protected database")

    def body(args) -> int:
        from scripts.vault.layout import list_backups

        contract = load_contract(args)
        if args.database:
            contract.database(args.database)
        entries = list_backups(contract, args.region, args.database, args.tier)
        rows = [e.summary() for e in entries]
        windows = {db.name: _window(contract, db, args.region) for db in contract.databases
                   if args.database in (None, db.name)}
        if args.json:
            emit(args, {"region": args.region, "bucket": contract.buckets[args.region].bucket,
                        "restorableWindows": windows, "backups": rows})
            return Exit.OK
        for name, found in windows.items():
            print(f"restorable window of {name} in {contract.regions[args.region]} ({args.region}): "
                  + (f"{found['earliest']} .. {found['latest']}" if "latest" in found else f"unknown ({found['error']})"))
        if not rows:
            print("no backups")
            return Exit.OK
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"backups in s3://{contract.buckets[args.region].bucket} ({args.region})")
        for col in ("id", "tier", "snapshot (UTC)", "dump", "stored", "state"):
            table.add_column(col, no_wrap=col in ("id", "snapshot (UTC)"))
        for r in rows:
            state = "ok" if r["complete"] else "INCOMPLETE: " + "; ".join(r["problems"])
            table.add_row(r["id"], r["tier"], r["snapshotAt"] or "-", size(r["dumpBytes"]), size(r["storedBytes"]),
                          state, style=None if r["complete"] else "red")
        wide = None if sys.stdout.isatty() else 200  # piped: do not squeeze columns to 80
        Console(width=wide).print(table)
        return Exit.OK

    return run(body, parser, argv)
