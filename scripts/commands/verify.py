"""`pilotlight verify [--backup ID | --all] [--from-region primary|dr] [--test-restore] [--evidence] [--json]`.

Proves backups are usable. Flags and the report; what is checked per backup and per tier is
:mod:`scripts.vault.verify`. ``--evidence`` also writes the run's record into the verified vault
under ``evidence/``, locked (:mod:`scripts.vault.evidence`): the scheduled DR-region job does; a
record that cannot be written fails the run, as a failed check does.
It says what a test restore restored and checked, and never "all good" while a tier has no
backup (`pilotlight status` would call that FAIL). Any failure: exit 1, naming the backup and why.
"""
from __future__ import annotations

from scripts.commands.parser import emit, load_contract, parser_for, run
from botocore.exceptions import BotoCoreError, ClientError

from scripts.common import Exit, utcnow
from scripts.postgres.dsn import parse_dsn
from scripts.units import seconds as dur
from scripts.units import size
from scripts.vault.layout import validate_backup_id
from scripts.vault import evidence
from scripts.vault.verify import verify_backups
from stacks.vocabulary import SIDES


def main(argv: list[str] | None = None) -> int:
    parser = parser_for("verify", "Prove backups are present in both regions, intact, decryptable and restorable.")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--backup", metavar="ID", help="verify this backup")
    which.add_argument("--all", action="store_true", help="verify every backup (default: the newest of each tier)")
    parser.add_argument("--test-restore", action="store_true", help="also restore into a scratch database and count rows")
    parser.add_argument("--server", metavar="DSN", help="server for --test-restore (default: the stack's primary)")
    parser.add_argument("--from-region", choices=SIDES, default="primary",
                        help="which vault's copies: dr verifies the DR copy with the DR key alone (default primary)")
    parser.add_argument("--evidence", action="store_true",
                        help="write this run's record into the vault under evidence/ (Object Lock keeps it)")
    parser.add_argument("--database", metavar="NAME",
                        help="whose backups: a protected database or a --source backup's name (default: the first)")

    def body(args) -> int:
        if args.backup:
            validate_backup_id(args.backup)
        if args.server:
            parse_dsn(args.server, "--server")
        contract = load_contract(args)
        started = utcnow()
        report = verify_backups(contract, backup_id=args.backup, all_backups=args.all, test_restore=args.test_restore,
                                db=args.database, server_dsn=args.server, args=args,
                                side=args.from_region)

        if args.evidence:
            report["evidence"] = _write_evidence(contract, report, started)

        def human():
            for r in report["backups"]:
                yield f"{'ok    ' if not r['problems'] else 'FAILED'} {r['id']} ({r['tier']}, {r['side']} copy)"
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
            found = report.get("evidence")
            if found:
                yield (f"evidence: s3://{found['bucket']}/{found['key']}" if "key" in found
                       else f"evidence NOT written: {found['error']}")
            if not report["ok"]:
                yield f"verify: {len(report['failures'])} failure(s)"
            elif args.backup:
                yield f"verify: backup {args.backup} is good (tiers not checked; `pilotlight verify` checks every tier)"
            else:
                yield "verify: all good — every tier has a fresh backup and the ones checked are intact"

        emit(args, report, human)
        written = "key" in report.get("evidence", {"key": None})
        return Exit.OK if report["ok"] and written else Exit.FAILED

    return run(body, parser, argv)


def _write_evidence(contract, report: dict, started) -> dict:
    bucket = contract.buckets[report["side"]].bucket
    try:
        return {"bucket": bucket, "key": evidence.write(contract, evidence.record(contract, report, started, utcnow()))}
    except (BotoCoreError, ClientError) as exc:
        return {"bucket": bucket, "error": str(exc).splitlines()[0]}
