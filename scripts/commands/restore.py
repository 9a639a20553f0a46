"""`pilotlight restore`: restore a backup into a NEW database, prove it, then swap names atomically;
or (``--to-time``) restore the database to a point in time into a NEW instance.

Flags, the ``--yes`` confirmation (without it: the plan only) and the output; the order of
operations and why is :mod:`scripts.vault.restore` and, for ``--to-time``, :mod:`scripts.pitr.engine`.
"""
from __future__ import annotations

from scripts.application import smoke
from scripts.commands.parser import (add_confirmation, emit, emit_failed, load_contract, parser_for, plan_exit,
                                     plan_only, run)
from scripts.common import Exit, UsageError, log, parse_timestamp, utcnow
from scripts.pitr import engine, rds
from scripts.postgres import rolemap
from scripts.postgres.dsn import parse_dsn
from scripts.units import seconds as dur
from stacks.vocabulary import SIDES
from scripts.vault import newinstance
from scripts.vault.layout import validate_backup_id
from scripts.vault.restore import (_IDENT, _TABLE, drop_kept, kept_copies, parse_age, perform_restore, rollback,
                                   validate_request)


def _kept_command(args) -> int:
    """--list-kept, --drop-kept OLDER and --rollback: the kept copies of --target."""
    dry = plan_only(args)
    if args.list_kept:
        out = kept_copies(args.target)
        emit(args, out, lambda: [f"{k['name']}  kept {k['keptAt']}  {k['bytes'] >> 20} MiB" for k in out["kept"]]
             + [f"{len(out['kept'])} kept copies of {out['target']}, {out['bytes'] >> 20} MiB"])
    elif args.drop_kept:
        out = drop_kept(args.target, parse_age(args.drop_kept), dry_run=dry)
        gone = out.get("dropped", out.get("wouldDrop"))
        emit(args, out, lambda: [("dropped " if not dry else "would drop (pass --yes): ") +
                                 (", ".join(k["name"] for k in gone) or "nothing"),
                                 f"{len(out['kept'])} newer kept copies stay"])
    else:
        out = rollback(args.target, terminate_sessions=args.terminate_sessions, dry_run=dry)
        emit(args, out, lambda: [("plan (nothing done; pass --yes to roll back):" if dry else "rolled back:"),
                                 *(f"  - {step}" for step in out["plan"]),
                                 *([f"  the replaced database is kept as {out['keptAs']}"] if out["executed"] else [])])
    return plan_exit(args, "pilotlight restore") if dry and not args.list_kept else Exit.OK


def main(argv: list[str] | None = None) -> int:
    parser = parser_for("restore", "Restore a backup into a new database, verify it, then swap it in; or restore "
                                   "the database to a point in time into a new instance (--to-time).")
    parser.add_argument("--target", metavar="DSN", help="the database to restore (its name is kept); with --to-time: "
                                                        "the live database --copy-back writes to (default: the active side's)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--latest", action="store_true", help="the newest valid backup")
    which.add_argument("--backup", metavar="ID", help="this backup id")
    which.add_argument("--before", metavar="TIMESTAMP", help="newest backup strictly before this ISO 8601 time (with offset)")
    which.add_argument("--rollback", action="store_true", help="swap the newest kept copy back in (undo a restore)")
    which.add_argument("--list-kept", action="store_true", help="list the copies earlier restores kept")
    which.add_argument("--drop-kept", metavar="OLDER", help="drop kept copies older than this (7d, 12h, 30m)")
    which.add_argument("--to-time", metavar="TIMESTAMP",
                       help="point-in-time restore (RDS automated backups) to this ISO 8601 time, with offset, into a NEW instance")
    which.add_argument("--list-restored", action="store_true",
                       help="list the instances --to-time and --new-instance made, both regions")
    which.add_argument("--cleanup", metavar="INSTANCE",
                       help="delete an instance --to-time or --new-instance made (with --yes)")
    parser.add_argument("--new-instance", action="store_true",
                        help="create a NEW instance in --from-region's region with the stack's network, parameter "
                             "group, KMS key and class, and restore the backup into it (instead of --target)")
    parser.add_argument("--from-region", choices=SIDES, default="primary",
                        help="read only this side's bucket and key; with --to-time: restore from this region's "
                             "automated backups (dr: the replicated copy, the primary region is not called)")
    parser.add_argument("--database", metavar="NAME",
                        help="whose backups: a protected database or the name a --source backup was filed under "
                             "(default: the target's own; with --to-time: the first protected database)")
    parser.add_argument("--allow-rename", action="store_true",
                        help="restore a backup into a database of another name than the one it came from")
    parser.add_argument("--tables", metavar="T,...", help="partial restore: only these tables (with --into-schema)")
    parser.add_argument("--into-schema", metavar="S", help="partial restore: a NEW schema of the live database")
    parser.add_argument("--copy-back", metavar="T,...",
                        help="with --to-time: copy these tables' rows the live database lacks back from the restored instance")
    parser.add_argument("--where", metavar="SQL", help="with --copy-back: only staged rows matching this condition "
                                                       "(on the staged row, alias s)")
    parser.add_argument("--overwrite", action="store_true",
                        help="with --copy-back: also replace live rows whose restored version differs (corruption)")
    parser.add_argument("--jobs", type=int, default=1, help="build indexes and constraints with pg_restore -j N (the data streams through one job)")
    parser.add_argument("--no-owner", action="store_true",
                        help="into another environment: objects owned by the restoring user, no grants, no roles created")
    parser.add_argument("--role-map", metavar="OLD=NEW,...",
                        help="into another environment: the backup's roles' ownership and grants go to these roles of "
                             "the target (each must exist there)")
    parser.add_argument("--terminate-sessions", action="store_true", help="end other sessions on the target")
    add_confirmation(parser, "restore and swap the database in")

    def body(args) -> int:
        if args.to_time or args.list_restored or args.cleanup:
            return _point_in_time(args)
        if args.new_instance:
            return _new_instance(args)
        if not args.target:
            raise UsageError("--target is required (the database to restore)")
        if args.copy_back or args.where or args.overwrite:
            raise UsageError("--copy-back, --where and --overwrite go with --to-time")
        if args.rollback or args.list_kept or args.drop_kept:
            return _kept_command(args)
        before = parse_timestamp(args.before, "--before") if args.before else None
        if before is not None and before > utcnow():
            log.warning("--before %s is in the future: every backup is before it, so this restores the newest one, "
                        "as --latest would", args.before)
        tables = [t.strip() for t in args.tables.split(",") if t.strip()] if args.tables else None
        role_map = rolemap.parse(args.role_map)
        if role_map and (args.no_owner or tables):
            raise UsageError("--role-map is for whole-database restores; it does not go with --no-owner or --tables")
        validate_request(args.target, args.from_region, tables, args.into_schema, args.jobs, args.backup)
        contract = load_contract(args)
        dry = plan_only(args)
        result = perform_restore(contract, args.target, backup_id=args.backup, before=before, latest=args.latest,
                                 from_side=args.from_region, tables=tables, into_schema=args.into_schema,
                                 terminate_sessions=args.terminate_sessions, jobs=args.jobs, dry_run=dry,
                                 db=args.database, no_owner=args.no_owner, allow_rename=args.allow_rename,
                                 role_map=role_map, args=args)

        def human():
            yield ("plan (nothing done):" if dry else "restored:")
            yield from (f"  - {step}" for step in result.plan)
            if result.executed:
                yield (f"  {sum(result.row_counts.values())} rows in {len(result.row_counts)} tables match the manifest; "
                       f"took {dur(result.seconds)}")
                yield "  phases: " + ", ".join(f"{p['name']} {dur(p['seconds'])}" for p in result.phases)
                if result.roles_created:
                    yield (f"  recreated roles {', '.join(result.roles_created)} without passwords: set them from "
                           "Secrets Manager (ALTER ROLE ... PASSWORD) or grant rds_iam for IAM authentication")
                if result.application:
                    yield "  application: " + ", ".join(f"{a['name']} {dur(a['seconds'])} ({a['status']})"
                                                         for a in result.application)
                yield from smoke.lines(result.smoke_checks)
                if result.kept_previous_as:
                    yield (f"  previous database kept as {result.kept_previous_as} (read-only; restore --rollback "
                           "swaps it back, --drop-kept OLDER drops old copies)")

        if smoke.failed(result.smoke_checks):
            return emit_failed(args, "pilotlight restore", result.to_dict(), smoke.failure_message(
                result.smoke_checks, f"restored {result.restored_database} from {result.backup_id}",
                result.rollback_command), human)
        emit(args, result.to_dict(), human)
        return plan_exit(args, "pilotlight restore") if dry else Exit.OK

    return run(body, parser, argv)


def _new_instance(args) -> int:
    """--new-instance: flags and output; the work is scripts.vault.newinstance."""
    if args.target or args.tables or args.into_schema or args.copy_back or args.where or args.overwrite:
        raise UsageError("--new-instance makes its own target: it does not go with --target, --tables, --into-schema "
                         "or --copy-back")
    if not (args.latest or args.backup or args.before):
        raise UsageError("--new-instance restores a backup: give --latest, --backup ID or --before TIMESTAMP")
    role_map = rolemap.parse(args.role_map)
    if role_map and args.no_owner:
        raise UsageError("--role-map does not go with --no-owner")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    before = parse_timestamp(args.before, "--before") if args.before else None
    if args.backup:
        validate_backup_id(args.backup)
    contract = load_contract(args)
    dry = plan_only(args)
    result = newinstance.restore_new_instance(contract, side=args.from_region, db=args.database, backup_id=args.backup,
                                              before=before, latest=args.latest, no_owner=args.no_owner,
                                              role_map=role_map, jobs=args.jobs, yes=not dry, args=args)

    def human():
        yield ("plan (nothing done; pass --yes to create the instance and restore):" if dry
               else f"restored {result.backup_id} into new instance {result.instance}:")
        yield from (f"  - {step}" for step in result.plan)
        if result.executed:
            restored = result.restore or {}
            yield (f"  {result.instance} at {result.endpoint}: available after {dur(result.create_seconds)}; "
                   f"{sum(restored.get('rowCounts', {}).values())} rows in {len(restored.get('rowCounts', {}))} "
                   f"tables match the manifest; took {dur(result.seconds)}")
            yield f"  master user password: Secrets Manager secret {result.master_user_secret}"
            if restored.get("rolesCreated"):
                yield (f"  recreated roles {', '.join(restored['rolesCreated'])} without passwords: set them from "
                       "Secrets Manager (ALTER ROLE ... PASSWORD) or GRANT rds_iam for IAM authentication")
            yield (f"  point the service at {result.endpoint}; remove the instance when done: pilotlight restore "
                   f"--cleanup {result.instance} --from-region {result.side} --yes")

    emit(args, result.to_dict(), human)
    return plan_exit(args, "pilotlight restore") if dry else Exit.OK


def _point_in_time(args) -> int:
    """--to-time / --list-restored / --cleanup: flags and output; the work is scripts.pitr.engine."""
    if args.new_instance:
        raise UsageError("--new-instance restores a backup (--latest, --backup, --before), not --to-time")
    if args.tables or args.jobs != 1 or args.terminate_sessions or args.no_owner or args.allow_rename or args.role_map:
        raise UsageError("--tables, --jobs, --terminate-sessions, --no-owner, --role-map and --allow-rename are for "
                         "backup restores; "
                         "use --copy-back with --to-time")
    if (args.where or args.overwrite) and not args.copy_back:
        raise UsageError("--where and --overwrite go with --copy-back")
    if args.into_schema and not _IDENT.match(args.into_schema):
        raise UsageError(f"--into-schema {args.into_schema!r} is not a plain identifier")
    copy_back = [t.strip() for t in args.copy_back.split(",") if t.strip()] if args.copy_back else None
    for t in copy_back or ():
        if not _TABLE.match(t):
            raise UsageError(f"--copy-back entry {t!r} is not a table name (name or schema.name)")
    if args.target:
        parse_dsn(args.target, "--target")
    to_time = parse_timestamp(args.to_time, "--to-time") if args.to_time else None
    contract = load_contract(args)
    if args.list_restored:
        found = engine.list_restored(contract)
        emit(args, found, lambda: [f"{i['identifier']}  {i['side']}  {i['status']}  "
                                   + (f"backup {i['backup']}" if i.get("backup") else f"restore time {i['restore_time']}")
                                   + f"  {i['host'] or '-'}:{i['port'] or '-'}" for i in found] or ["no restored instances"])
        return Exit.OK
    if args.cleanup:
        if plan_only(args):
            emit(args, {"delete": args.cleanup, "executed": False},
                 lambda: [f"plan (nothing done; pass --yes): delete {args.cleanup} in {args.from_region}'s region "
                          "(no final snapshot)"])
            return plan_exit(args, "pilotlight restore")
        rds.delete_restored(contract, args.from_region, args.cleanup)
        emit(args, {"delete": args.cleanup, "executed": True}, lambda: [f"deleting {args.cleanup}"])
        return Exit.OK
    dry = plan_only(args)
    result = engine.restore_to_time(contract, to_time, side=args.from_region, db=args.database, copy_back_tables=copy_back,
                                    where=args.where, into_schema=args.into_schema, target_dsn=args.target,
                                    overwrite=args.overwrite, yes=not dry)

    def human():
        yield ("plan (nothing done; pass --yes to restore):" if dry else f"restored to {result.to_time}:")
        yield from (f"  - {step}" for step in result.plan)
        if result.executed:
            yield (f"  {result.instance} at {result.endpoint}: available after {result.restore_seconds:.1f}s, "
                   f"last commit {result.last_commit or 'unknown (track_commit_timestamp off)'}")
            if result.copy_back:
                yield (f"  copied back {sum(result.copy_back['inserted'].values())} rows "
                       f"({', '.join(f'{k}: {v}' for k, v in result.copy_back['inserted'].items())}); staged copy in "
                       f"schema {result.copy_back['schema']}")
            yield f"  remove it when done: pilotlight restore --cleanup {result.instance} --from-region {result.side} --yes"

    emit(args, result.to_dict(), human)
    return plan_exit(args, "pilotlight restore") if dry else Exit.OK
