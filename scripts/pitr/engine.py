"""`restore --to-time`: plan, restore into a new instance, check it, then copy back (or hand over).

Order (nothing existing is touched until the restored instance is proven):

1. the restorable window of the chosen region's automated backups must contain the time
   (one line naming the window otherwise);
2. the new instance's settings: the contract's restore target (DR: the standby's network,
   parameter group, class) or the production instance's own;
3. RestoreDBInstanceToPointInTime, then the ``db_instance_available`` waiter;
4. checks: the settings RDS reports equal the stack's (key included); the instance answers; its
   last commit (``pg_last_committed_xact()``, where ``track_commit_timestamp`` is on) is not after
   the restore time;
5. the way back: ``--copy-back`` tables/rows into the live database (scripts.pitr.copyback), or
   the instance is left ready for the service to move to it (the plan says how).

A failure after step 3 leaves the new instance (tagged, listed by ``--list-restored``, removed by
``--cleanup``) and never the live database changed; the error says so.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from scripts.postgres import client as pg
from scripts.common import Exit, PilotlightError, iso, log, utcnow
from scripts.contract import Contract
from scripts.postgres.dsn import endpoint_dsn, side_dsn
from scripts.pitr import copyback, rds


@dataclass
class PitrResult:
    database: str
    side: str
    region: str
    to_time: str
    instance: str
    window: dict[str, str]
    plan: list[str]
    executed: bool = False
    endpoint: str | None = None
    last_commit: str | None = None
    copy_back: dict[str, Any] | None = None
    restore_seconds: float = 0.0
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def restore_to_time(contract: Contract, to_time: datetime, *, side: str = "primary", db: str | None = None,
                    copy_back_tables: list[str] | None = None, where: str | None = None,
                    into_schema: str | None = None, target_dsn: str | None = None, name: str | None = None,
                    overwrite: bool = False, yes: bool = False) -> PitrResult:
    """Restore ``db`` to ``to_time`` into a new instance in ``side``'s region; with ``yes`` really do it."""
    started = time.monotonic()
    database = contract.database(db)
    found = rds.window(contract, database, side)
    if not found.contains(to_time):
        raise PilotlightError(f"--to-time {iso(to_time)} is outside the restorable window of {database.name} "
                              f"({found.describe()})", Exit.USAGE)
    target = rds.target_settings(contract, database, side)
    name = name or rds.instance_name(contract, database, to_time)
    arguments = rds.restore_arguments(contract, database, side, name, to_time, target)
    origin = (f"the automated backups replicated to {found.region} ({arguments['SourceDBInstanceAutomatedBackupsArn']})"
              if side == "dr" else f"the automated backups of {database.primary.identifier} in {found.region}")
    from_settings = "the stack's restore target" if side in database.restore else \
        f"{database.primary.identifier}'s own settings"
    live = target_dsn or side_dsn(contract, contract.active, database)
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    schema = into_schema or f"pitr_{stamp.lower()}"
    plan = [
        f"restorable window {found.describe()} contains {iso(to_time)}",
        f"restore {origin} to {iso(to_time)} into NEW instance {name}",
        f"  class {target.instance_class}, subnet group {target.subnet_group_name}, security groups "
        f"{', '.join(target.security_group_ids)}, parameter group {target.parameter_group_name} ({from_settings}); "
        f"private, tagged {rds.TAG_RESTORE_OF}={database.primary.identifier}",
        f"wait until available; check its settings (key {target.kms_key_id or 'as the source'}), that it answers, "
        f"and that its last commit is not after {iso(to_time)}",
    ]
    if copy_back_tables:
        plan.append(f"copy back {', '.join(copy_back_tables)}: stage them in new schema {schema} of the live "
                    f"database, then insert the rows it lacks{' and replace the rows that differ' if overwrite else ''}"
                    f"{f' (staged rows matching {where})' if where else ''}; nothing deleted")
    else:
        plan.append(f"leave {name} running: copy rows back with --copy-back, or point the service at it; "
                    f"remove it with `restore --cleanup {name}`")
    result = PitrResult(database.name, side, found.region, iso(to_time), name,
                        {"earliest": iso(found.earliest), "latest": iso(found.latest)}, plan)
    if not yes:
        return result
    if copy_back_tables:
        copyback.check_tables(live, [t if "." in t else f"public.{t}" for t in copy_back_tables])
    rds.start_restore(contract, side, arguments)
    try:
        _finish(contract, result, database, side, target, to_time)
        if copy_back_tables:
            source = endpoint_dsn(contract, result.settings["host"], result.settings["port"], database.db_name,
                                      db=database, side=side)
            done = copyback.copy_back(source, live, copy_back_tables, schema, where, stamp.lower(), overwrite)
            result.copy_back = asdict(done)
    except BaseException:
        log.error("restored instance %s is kept in %s: `restore --list-restored` lists it, "
                  "`restore --cleanup %s` removes it", name, found.region, name)
        raise
    result.executed = True
    result.seconds = round(time.monotonic() - started, 3)
    return result


def _finish(contract: Contract, result: PitrResult, database, side: str, target, to_time: datetime) -> None:
    instance, result.restore_seconds = rds.wait_checked(contract, side, result.instance, target)
    result.settings = dict(instance.settings, host=instance.host, port=instance.port)
    result.endpoint = f"{instance.host}:{instance.port}"
    dsn = endpoint_dsn(contract, instance.host, instance.port, database.db_name, db=database, side=side)
    last = last_commit(dsn)
    if last is not None and last > to_time:
        raise PilotlightError(f"{result.instance} has a commit at {iso(last)}, after the restore time {iso(to_time)}")
    result.last_commit = iso(last) if last else None


def last_commit(dsn: str) -> datetime | None:
    """The instance's last commit time (None when ``track_commit_timestamp`` is off); it must answer."""
    try:
        with pg.connect(dsn) as conn:
            on = conn.execute("SELECT current_setting('track_commit_timestamp')").fetchone()[0] == "on"
            if not on:
                return None
            row = conn.execute("SELECT timestamp FROM pg_last_committed_xact()").fetchone()
            return row[0] if row else None
    except psycopg.Error as exc:
        raise PilotlightError(f"restored instance does not answer: {str(exc).strip().splitlines()[0]}",
                              Exit.NETWORK) from None


def list_restored(contract: Contract) -> list[dict[str, Any]]:
    """Every instance this stack's restores made, in both regions (a region that does not answer is skipped)."""
    out = []
    for side in contract.regions:
        try:
            out += [asdict(i) for i in rds.list_restored(contract, side)]
        except PilotlightError as exc:
            log.warning("%s", exc)
    return out


def windows(contract: Contract, db) -> dict[str, rds.Window | str]:
    """The restorable window of ``db`` in each region, or the one-line reason it cannot be read."""
    out: dict[str, rds.Window | str] = {}
    for side in contract.regions:
        try:
            out[side] = rds.window(contract, db, side)
        except PilotlightError as exc:
            out[side] = str(exc)
    return out
