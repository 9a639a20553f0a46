"""`pilotlight restore`: restore a backup into a NEW database, prove it, then swap names atomically.

Flags, the ``--yes`` confirmation (without it: the plan only) and the output; the order of
operations and why is :mod:`scripts.vault.restore`.
"""
from __future__ import annotations

from scripts.commands.parser import emit, load_contract, parser_for, run
from scripts.common import Exit, parse_timestamp
from stacks.vocabulary import SIDES
from scripts.vault.restore import perform_restore, validate_request


def main(argv: list[str] | None = None) -> int:
    parser = parser_for("restore", "Restore a backup into a new database, verify it, then swap it in.")
    parser.add_argument("--target", required=True, metavar="DSN", help="the database to restore (its name is kept)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--latest", action="store_true", help="the newest valid backup")
    which.add_argument("--backup", metavar="ID", help="this backup id")
    which.add_argument("--before", metavar="TIMESTAMP", help="newest backup strictly before this ISO 8601 time (with offset)")
    parser.add_argument("--from-region", choices=SIDES, default="primary", help="read only this side's bucket and key")
    parser.add_argument("--database", metavar="NAME", help="which protected database's backups (default: the first)")
    parser.add_argument("--tables", metavar="T,...", help="partial restore: only these tables (with --into-schema)")
    parser.add_argument("--into-schema", metavar="S", help="partial restore: a NEW schema of the live database")
    parser.add_argument("--jobs", type=int, default=1, help="pg_restore -j N (N > 1 spools to a private file)")
    parser.add_argument("--terminate-sessions", action="store_true", help="end other sessions on the target")
    parser.add_argument("--dry-run", action="store_true", help="print the plan only")
    parser.add_argument("--yes", action="store_true", help="really restore (without it: the plan only)")

    def body(args) -> int:
        before = parse_timestamp(args.before, "--before") if args.before else None
        tables = [t.strip() for t in args.tables.split(",") if t.strip()] if args.tables else None
        validate_request(args.target, args.from_region, tables, args.into_schema, args.jobs, args.backup)
        contract = load_contract(args)
        dry = args.dry_run or not args.yes
        result = perform_restore(contract, args.target, backup_id=args.backup, before=before, latest=args.latest,
                                 from_side=args.from_region, tables=tables, into_schema=args.into_schema,
                                 terminate_sessions=args.terminate_sessions, jobs=args.jobs, dry_run=dry,
                                 db=args.database, args=args)

        def human():
            yield ("plan (nothing done; pass --yes to restore):" if dry else "restored:")
            yield from (f"  - {step}" for step in result.plan)
            if result.executed:
                yield f"  {len(result.row_counts)} tables match the manifest; took {result.seconds:.1f}s"
                if result.kept_previous_as:
                    yield f"  previous database kept as {result.kept_previous_as} (drop it when satisfied)"

        emit(args, result.to_dict(), human)
        return Exit.OK

    return run(body, parser, argv)
