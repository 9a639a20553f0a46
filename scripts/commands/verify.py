"""`pilotlight verify [--backup ID | --all] [--test-restore] [--json]`: prove backups are usable.

Flags and the report; what is checked per backup and per tier is :mod:`scripts.vault.verify`.
Any failure: exit 1, and the report names the backup and why.
"""
from __future__ import annotations

from scripts.commands.parser import emit, load_contract, parser_for, run
from scripts.common import Exit
from scripts.postgres.dsn import parse_dsn
from scripts.vault.layout import validate_backup_id
from scripts.vault.verify import verify_backups


def main(argv: list[str] | None = None) -> int:
    parser = parser_for("verify", "Prove backups are present in both regions, intact, decryptable and restorable.")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--backup", metavar="ID", help="verify this backup")
    which.add_argument("--all", action="store_true", help="verify every backup (default: the newest of each tier)")
    parser.add_argument("--test-restore", action="store_true", help="also restore into a scratch database and count rows")
    parser.add_argument("--server", metavar="DSN", help="server for --test-restore (default: the stack's primary)")
    parser.add_argument("--database", metavar="NAME", help="which protected database (default: the first)")

    def body(args) -> int:
        if args.backup:
            validate_backup_id(args.backup)
        if args.server:
            parse_dsn(args.server, "--server")
        contract = load_contract(args)
        report = verify_backups(contract, backup_id=args.backup, all_backups=args.all, test_restore=args.test_restore,
                                db=args.database, server_dsn=args.server, args=args)

        def human():
            for r in report["backups"]:
                yield f"{'ok    ' if not r['problems'] else 'FAILED'} {r['id']} ({r['tier']})"
                yield from (f"         - {p}" for p in r["problems"])
            for t, v in report["tiers"].items():
                if v["stale"]:
                    yield f"STALE  tier {t}: newest backup {v['ageSeconds']:.0f}s old (limit {v['limitSeconds']:.0f}s)"
            yield "verify: all good" if report["ok"] else f"verify: {len(report['failures'])} failure(s)"

        emit(args, report, human)
        return Exit.OK if report["ok"] else Exit.FAILED

    return run(body, parser, argv)
