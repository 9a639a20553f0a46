"""`pilotlight backup --tier T [--source DSN]`: stream an encrypted pg_dump into the vault.

Flags and the output; the pipeline is :func:`scripts.vault.backup.perform_backup`.
"""
from __future__ import annotations

from scripts.commands.parser import emit, load_contract, parser_for, run
from scripts.common import Exit
from scripts.contract import TIERS
from scripts.postgres.dsn import parse_dsn
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
        m = perform_backup(contract, args.tier, args.source, args.database, args=args)
        emit(args, m.doc, lambda: [
            f"backup {m.id} complete: {m.doc['dump']['bytes']} dump bytes -> {m.stored_bytes} stored "
            f"({m.tier}, s3://{m.doc['object']['bucket']}/{m.doc['object']['key']})"
        ])
        return Exit.OK

    return run(body, parser, argv)
