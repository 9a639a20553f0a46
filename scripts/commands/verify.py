"""`pilotlight verify [--backup ID | --all] [--test-restore] [--json]`: prove backups are usable.

Flags and the report; what is checked per backup and per tier is :mod:`scripts.vault.verify`.
It says what a test restore restored and checked, and never "all good" while a tier has no
backup (`pilotlight status` would call that FAIL). Any failure: exit 1, naming the backup and why.
"""
from __future__ import annotations

from scripts.commands.parser import emit, load_contract, parser_for, run
from scripts.common import Exit
from scripts.postgres.dsn import parse_dsn
from scripts.units import seconds as dur
from scripts.units import size
from scripts.vault.layout import validate_backup_id
from scripts.vault.verify import verify_backups


def main(argv: list[str] | None = None) -> int:
    parser = parser_for("verify", "Prove backups are present in both regions, intact, decryptable and restorable.")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--backup", metavar="ID", help="verify this backup")
    which.add_argument("--all", action="store_true", help="verify every backup (default: the newest of each tier)")
    parser.add_argument("--test-restore", action="store_true", help="also restore into a scratch database and count rows")
    parser.add_argument("--server", metavar="DSN", help="server for --test-restore (default: the stack's primary)")
    parser.add_argument("--database", metavar="NAME",
                        help="whose backups: a protected database or a --source backup's name (default: the first)")

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
                trial = r.get("testRestore")
                if trial:
                    yield (f"         restored into {trial['database']} on {trial['server']} in {dur(trial['seconds'])}: "
                           f"{trial['rows']} rows in {trial['tables']} tables match the manifest "
                           f"({size(trial['dumpBytes'])} dump); scratch database dropped")
            for t, v in report["tiers"].items():
                if v["stale"]:
                    yield f"STALE  tier {t}: newest backup {dur(v['ageSeconds'])} old (limit {dur(v['limitSeconds'])})"
                if v["missing"]:
                    yield f"NONE   tier {t}: no complete backup (status: FAIL); run `pilotlight backup --tier {t}`"
            if not report["ok"]:
                yield f"verify: {len(report['failures'])} failure(s)"
            elif args.backup:
                yield f"verify: backup {args.backup} is good (tiers not checked; `pilotlight verify` checks every tier)"
            else:
                yield "verify: all good — every tier has a fresh backup and the ones checked are intact"

        emit(args, report, human)
        return Exit.OK if report["ok"] else Exit.FAILED

    return run(body, parser, argv)
