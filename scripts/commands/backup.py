"""`pilotlight backup --tier T [--source DSN]`: stream an encrypted pg_dump into the vault.

Flags and the output (how long it took, sizes in units; raw numbers in JSON); the pipeline is
:func:`scripts.vault.backup.perform_backup`.
"""
from __future__ import annotations

import time

from scripts.commands.parser import emit, load_contract, parser_for, run
from scripts.common import Exit
from stacks.vocabulary import TIERS
from scripts.postgres.dsn import parse_dsn
from scripts.units import seconds as dur
from scripts.units import size
from scripts.vault.backup import perform_backup


def main(argv: list[str] | None = None) -> int:
    parser = parser_for("backup", "Stream an encrypted pg_dump of a protected database into the vault.")
    parser.add_argument("--tier", required=True, choices=TIERS, help="retention tier (the vault's lifecycle owns expiry)")
    parser.add_argument("--source", metavar="DSN", help="database to dump (default: the stack's active side)")
    parser.add_argument("--database", metavar="NAME", help="which protected database (default: the first)")

    def body(args) -> int:
        contract = load_contract(args)
        if args.source:
            parse_dsn(args.source, "--source")
        started = time.monotonic()
        m = perform_backup(contract, args.tier, args.source, args.database, args=args)
        took = time.monotonic() - started
        rows = sum(m.doc["rowCounts"].values())
        emit(args, m.doc | {"seconds": round(took, 3)}, lambda: [
            f"backup {m.id} complete in {dur(took)}: {size(m.doc['dump']['bytes'])} dump ({rows} rows in "
            f"{len(m.doc['rowCounts'])} tables) -> {size(m.stored_bytes)} stored, encrypted",
            f"  {m.tier} tier: s3://{m.doc['object']['bucket']}/{m.doc['object']['key']}",
        ])
        return Exit.OK

    return run(body, parser, argv)
