"""`pilotlight status`: the stack's objectives against its present state, one OK/WARN/FAIL line each.

Lines, each judged on its own (an unreachable source is a FAIL line, never a crash):

- backup age per database and tier: OK within the tier's interval, WARN within interval + slack
  (a backup is due; the backup-age alarm fires past it), FAIL beyond or when there is none;
- RPO of the backup-based scenarios (data corruption, ransomware, accidental deletion) against
  the newest complete backup's age — or, for data corruption and accidental deletion, against the
  DR region's point-in-time restore lag when that is smaller (the line says which mechanism meets it);
- the restorable window (RDS automated backups) per database and region; WARN when the DR
  region's latest restorable time lags more than the data-corruption RPO, or cannot be read;
- replication: the newest backup is in the DR vault too (WARN while inside the 15 min RTC window);
- standby lag against the regional-outage RPO (the standby's own replay position in SQL, or the
  ``ReplicaLag`` metric when the tools cannot reach it), FAIL if the standby no longer replicates
  while primary is active, or its WAL replay is paused;
- fence: FAIL when a side's database takes no session (a fence an interrupted cutover left behind),
  naming the rerun that finishes the cutover or the statement that lifts it;
- DNS: which side every authoritative server answers for, against the stack's ``active`` side;
- the last drill of each scenario found in the reports directory (PASS, age, measured RTO/RPO);
- restore-test evidence: the newest record the verification job locked into either vault
  (``evidence/``), WARN when it failed, is older than two days, or there is none.

Exit 1 when any line is FAIL. Works the same on the sandbox and on a real stack.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from scripts import aws
from scripts.failover import dns as dnscheck
from scripts.postgres import client as pg
from scripts.vault import evidence
from scripts.vault import layout as vault
from scripts.common import Exit, PilotlightError, iso, parse_timestamp, utcnow
from scripts.commands.parser import emit, load_contract, parser_for, run
from scripts.contract import SANDBOX_ENVIRONMENT, Contract, Database, project_root
from scripts.postgres import replication
from stacks.vocabulary import SIDES
from scripts.postgres.dsn import side_dsn
from scripts.postgres import kept
from scripts.pitr import engine
from scripts.commands.runbook import duration
from stacks.vocabulary import BACKUP_SCENARIOS, PITR_SCENARIOS, RTC_MINUTES

OK, WARN, FAIL = "OK", "WARN", "FAIL"
RTC_SECONDS = RTC_MINUTES * 60
DRILL_MAX_AGE = timedelta(days=31)
EVIDENCE_MAX_AGE = timedelta(days=2)  # the verification runs daily: one missed run is tolerated
LAG_PROBE_SECONDS = 5.0


@dataclass(frozen=True)
class Line:
    check: str
    subject: str
    state: str
    value: str
    objective: str
    detail: str = ""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def guarded(check: str, subject: str, objective: str, produce: Callable[[], list[Line]]) -> list[Line]:
    """The lines ``produce`` returns, or one FAIL line saying why they could not be produced."""
    try:
        return produce()
    except Exception as exc:  # noqa: BLE001 - an unreachable source is a FAIL line, not a crash
        return [Line(check, subject, FAIL, "unknown", objective, f"unreachable: {_one_line(exc)}")]


def age_text(seconds: float) -> str:
    """An age to read at a glance: 42 s, 17 min, 4 h 03 min, 2 d 05 h."""
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600:02d} h"


def _age(now: datetime, then: datetime) -> float:
    return max(0.0, (now - then).total_seconds())


def pitr_lag(windows: dict[str, Any], now: datetime) -> float | None:
    """Seconds the DR region's latest restorable time is behind now (None: no DR window)."""
    found = windows.get("dr")
    return None if isinstance(found, str) or found is None else _age(now, found.latest)


def window_lines(contract: Contract, db: Database, windows: dict[str, Any], now: datetime) -> list[Line]:
    rpo = contract.objectives["data-corruption"].rpo_seconds
    lines = []
    for side in SIDES:
        found = windows.get(side)
        subject = f"{db.name} {side} ({contract.regions[side]})"
        objective = f"latest <= {duration(rpo)} ago" if side == "dr" else "restorable"
        if isinstance(found, str) or found is None:
            lines.append(Line("restorable window", subject, WARN, "unknown", objective, found or "not read"))
            continue
        lag = _age(now, found.latest)
        state = WARN if side == "dr" and lag > rpo else OK
        lines.append(Line("restorable window", subject, state, f"latest {age_text(lag)} ago", objective,
                          f"{iso(found.earliest)} .. {iso(found.latest)}"))
    return lines


def backup_lines(contract: Contract, now: datetime, windows: dict[str, dict[str, Any]] | None = None) -> list[Line]:
    listings: dict[str, list[vault.Entry]] = {}
    lines: list[Line] = []
    for side in SIDES:
        bucket = contract.buckets[side].bucket
        try:
            listings[side] = [e for e in vault.list_backups(contract, side) if e.complete]
        except Exception as exc:  # noqa: BLE001 - one side down must not hide the other
            lines.append(Line("vault", f"{side} s3://{bucket}", FAIL, "unreachable", "reachable", _one_line(exc)))
    source = "primary" if "primary" in listings else "dr"
    entries = listings.get(source, [])
    for db in contract.databases:
        mine = [e for e in entries if e.database == db.name]
        if not listings:
            lines.append(Line("backup age", db.name, FAIL, "unknown", "", "no vault reachable"))
            continue
        for tier in contract.tiers.values():
            lines.append(_tier_line(db, tier, [e for e in mine if e.tier == tier.name], now, source))
        newest_age = _age(now, mine[0].time) if mine else None
        lag = pitr_lag((windows or {}).get(db.name, {}), now)
        for scenario in BACKUP_SCENARIOS:
            rpo = contract.objectives[scenario].rpo_seconds
            if scenario in PITR_SCENARIOS and lag is not None and (newest_age is None or lag < newest_age):
                lines.append(Line("RPO", f"{db.name} {scenario}", OK if lag <= rpo else FAIL, age_text(lag),
                                  f"<= {duration(rpo)}", "point-in-time restore from the DR region's automated backups"))
                continue
            state = FAIL if newest_age is None or newest_age > rpo else OK
            value = "no backup" if newest_age is None else age_text(newest_age)
            lines.append(Line("RPO", f"{db.name} {scenario}", state, value, f"<= {duration(rpo)}",
                              "newest complete backup, any tier"))
        if "dr" in listings and "primary" in listings:
            lines.append(_replication_line(contract, db, mine, listings["dr"], now))
    return lines


def _tier_line(db: Database, tier: Any, entries: list[vault.Entry], now: datetime, side: str) -> Line:
    limit = tier.interval_seconds + tier.slack_seconds
    objective = f"<= {duration(tier.interval_seconds)} (+{duration(tier.slack_seconds)})"
    subject = f"{db.name} {tier.name}"
    if not entries:
        return Line("backup age", subject, FAIL, "none", objective, f"no complete {tier.name} backup in the {side} vault")
    age = _age(now, entries[0].time)
    state = OK if age <= tier.interval_seconds else WARN if age <= limit else FAIL
    return Line("backup age", subject, state, age_text(age), objective, entries[0].id)


def _replication_line(contract: Contract, db: Database, primary: list[vault.Entry], dr: list[vault.Entry],
                      now: datetime) -> Line:
    objective = f"in DR within {duration(RTC_SECONDS)}"
    if not primary:
        return Line("replication", db.name, WARN, "nothing to replicate", objective)
    newest = primary[0]
    if any(e.id == newest.id for e in dr):
        return Line("replication", db.name, OK, "replicated", objective, newest.id)
    age = _age(now, newest.time)
    s3_says = _replication_status(contract, newest)
    state = FAIL if age > RTC_SECONDS or s3_says == "FAILED" else WARN
    said = f"; S3 replication status {s3_says}" if s3_says else ""
    return Line("replication", db.name, state, f"missing for {age_text(age)}", objective,
                f"{newest.id} not in the DR vault{said}")


def _replication_status(contract: Contract, entry: vault.Entry) -> str | None:
    """S3's own word on the manifest's replication (PENDING, COMPLETED, FAILED); None if it has none."""
    key = vault.object_key(contract, entry.tier, entry.database, entry.id, vault.MANIFEST)
    try:
        head = aws.client(contract, "s3", "primary").head_object(Bucket=contract.buckets["primary"].bucket, Key=key)
    except Exception:  # noqa: BLE001 - only a hint on a line that already reports the missing copy
        return None
    return head.get("ReplicationStatus")


def standby_line(contract: Contract, db: Database, now: datetime) -> list[Line]:
    standby = "dr" if contract.active == "primary" else "primary"
    rpo = contract.objectives["regional-outage"].rpo_seconds
    objective = f"<= {duration(rpo)}"
    subject = f"{db.name} side {standby}"  # "side dr", never to be read as the stack dr
    try:
        return [_sql_lag(contract, db, standby, subject, rpo, objective)]
    except PilotlightError as exc:  # the tools cannot reach the standby: ask CloudWatch instead
        unreachable = _one_line(exc)
    lag = _replica_lag_metric(contract, db, standby, now)
    if lag is None:
        return [Line("standby lag", subject, WARN, "no data", objective,
                     f"standby unreachable ({unreachable}); no ReplicaLag datapoint in 10 min")]
    return [Line("standby lag", subject, OK if lag <= rpo else FAIL, f"{lag:.0f} s", objective, "ReplicaLag")]


def _sql_lag(contract: Contract, db: Database, standby: str, subject: str, rpo: float, objective: str) -> Line:
    """How long the standby takes to replay what the active side has written so far (server clocks only)."""
    try:
        with pg.connect(side_dsn(contract, contract.active, db, dbname="postgres", superuser=True)) as conn:
            target = str(conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0])
    except PilotlightError as exc:
        target, unreachable = None, _one_line(exc)
    with pg.connect(side_dsn(contract, standby, db, dbname="postgres", superuser=True), autocommit=True) as conn:
        if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
            return Line("standby lag", subject, FAIL, "not replicating", objective,
                        f"the {standby} database is writable while the stack says {contract.active} is active")
        if conn.execute("SELECT pg_get_wal_replay_pause_state() <> 'not paused'").fetchone()[0]:
            return Line("standby lag", subject, FAIL, "replay paused", objective,
                        f"WAL replay on {standby} is paused (pg_wal_replay_pause); resume: SELECT pg_wal_replay_resume()")
        if target is None:
            age = conn.execute("SELECT EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())").fetchone()[0]
            return Line("standby lag", subject, WARN, "unknown", objective,
                        f"{contract.active} unreachable ({unreachable}); last replayed transaction "
                        f"{age_text(float(age)) if age is not None else 'never'} ago")
        started = time.monotonic()
        while True:
            caught_up = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()[0]
            waited = time.monotonic() - started
            if caught_up or waited >= min(rpo, LAG_PROBE_SECONDS):
                break
            time.sleep(0.1)
        if caught_up:
            return Line("standby lag", subject, OK if waited <= rpo else FAIL, f"{waited:.1f} s", objective,
                        f"replayed the {contract.active} side's WAL position {target}")
        age = conn.execute("SELECT EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())").fetchone()[0]
    lag = float(age) if age is not None else float("inf")
    return Line("standby lag", subject, OK if lag <= rpo else FAIL, f"{lag:.1f} s", objective,
                f"still behind {target} after {waited:.1f} s; lag from the last replayed transaction")


def fence_lines(contract: Contract, db: Database) -> list[Line]:
    """A fence left behind: a side's database refuses every session (see scripts.postgres.replication).

    Expected on the old side once the other is promoted (until failback); a FAIL on the side the
    stack records as active, or while the other side has not been promoted (a cutover interrupted
    between fence and promotion: nobody can write).
    """
    states = {side: replication.state(contract, db, side) for side in SIDES}
    lines = []
    for side, now in states.items():
        if not (now.reachable and now.fenced):
            continue
        other = "dr" if side == "primary" else "primary"
        if side != contract.active and states[other].role == "primary" and not states[other].fenced:
            lines.append(Line("fence", f"{db.name} {side}", OK, "fenced", "old side only",
                              f"{db.db_name} takes no session on the old {side} side (expected until failback)"))
            continue
        lines.append(Line("fence", f"{db.name} {side}", FAIL, "fenced", "none on the active side",
                          f"{db.db_name} takes no session on {side} ({now.role}): a cutover was interrupted; finish it: "
                          f"pilotlight cutover --to {other} --yes; or undo: ALTER DATABASE {db.db_name} "
                          "ALLOW_CONNECTIONS true"))
    return lines or [Line("fence", db.name, OK, "none", "none on the active side", "both sides accept sessions")]


def _replica_lag_metric(contract: Contract, db: Database, side: str, now: datetime) -> float | None:
    endpoint = db.standby if side == "dr" else db.primary
    points = aws.client(contract, "cloudwatch", side).get_metric_statistics(
        Namespace="AWS/RDS", MetricName="ReplicaLag", Statistics=["Maximum"], Period=60,
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": endpoint.identifier}],
        StartTime=now - timedelta(minutes=10), EndTime=now,
    )["Datapoints"]
    return max(points, key=lambda p: p["Timestamp"])["Maximum"] if points else None


def dns_line(contract: Contract, db: Database) -> list[Line]:
    answers = dnscheck.answers(contract, db)
    sides = {server: dnscheck.side_of(db, target) for server, target in answers.items()}
    objective = f"answers {contract.active}"
    errors = [f"{server}: {target}" for server, target in answers.items() if str(target).startswith("error")]
    if errors or not answers:
        return [Line("dns", db.dns.record_name, FAIL, "unreachable", objective, "; ".join(errors) or "no nameserver")]
    found = set(sides.values())
    if len(found) != 1 or None in found:
        return [Line("dns", db.dns.record_name, FAIL, "inconsistent", objective, json.dumps(answers))]
    side = found.pop()
    if side == contract.active:
        return [Line("dns", db.dns.record_name, OK, side, objective, f"{len(answers)} authoritative server(s) agree")]
    return [Line("dns", db.dns.record_name, WARN, side, objective,
                 f"failover not recorded: `pulumi config set pilotlight:active {side}` or fail back")]


def same_target(doc: dict[str, Any], contract: Contract) -> bool:
    """A drill is evidence for this stack only if it ran against it (a sandbox drill never vouches for a real stack)."""
    return doc.get("stack") == contract.stack and bool(doc.get("sandbox")) == (contract.environment == SANDBOX_ENVIRONMENT)


def drill_lines(reports: Path, now: datetime, contract: Contract) -> list[Line]:
    newest: dict[str, dict[str, Any]] = {}
    elsewhere = 0
    for path in sorted(reports.glob("*.json")) if reports.is_dir() else []:
        try:
            doc = json.loads(path.read_text())
            started = parse_timestamp(doc["startedAt"], "startedAt")
            scenario, verdict = doc["scenario"], doc["verdict"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if not same_target(doc, contract):
            elsewhere += 1
            continue
        if scenario not in newest or started > newest[scenario]["at"]:
            newest[scenario] = {"at": started, "verdict": verdict, "measured": doc.get("measured") or {}}
    target = "the sandbox" if contract.environment == SANDBOX_ENVIRONMENT else contract.environment
    if not newest:
        ignored = f"; {elsewhere} report(s) of other stacks or the sandbox ignored" if elsewhere else ""
        return [Line("drill", "any", WARN, "never", f"PASS within {DRILL_MAX_AGE.days} d",
                     f"no drill of {target} in {reports}/{ignored}")]
    lines = []
    for scenario, found in sorted(newest.items()):
        m = found["measured"]
        measured = ", ".join(f"{k[:3].upper()} {m[k]:.1f} s" for k in ("rtoSeconds", "rpoSeconds")
                             if isinstance(m.get(k), (int, float)))
        stale = now - found["at"] > DRILL_MAX_AGE
        state = FAIL if found["verdict"] != "PASS" else WARN if stale else OK
        lines.append(Line("drill", scenario, state, found["verdict"], f"PASS within {DRILL_MAX_AGE.days} d",
                          f"{iso(found['at'])}{'; ' + measured if measured else ''}"))
    return lines


def kept_line(contract: Contract, db: Database) -> list[Line]:
    """Copies earlier restores kept on the active side: each is as big as the database."""
    with pg.connect(side_dsn(contract, contract.active, db, dbname="postgres", superuser=True), autocommit=True) as conn:
        found = kept.list_kept(conn, db.db_name)
    size = sum(k.bytes for k in found)
    state = WARN if len(found) >= kept.WARN_AT else OK
    detail = "drop old ones: pilotlight restore --target ... --drop-kept 7d --yes" if state == WARN else ""
    return [Line("kept copies", db.name, state, f"{len(found)} ({size >> 20} MiB)", f"< {kept.WARN_AT}", detail)]


def evidence_line(contract: Contract, db: Database, now: datetime) -> list[Line]:
    """The newest restore-test record of ``db`` in either vault (the DR-region job writes the DR one)."""
    objective = f"PASS within {EVIDENCE_MAX_AGE.days} d"
    found, unreachable = [], []
    for side in SIDES:
        try:
            newest = evidence.newest(contract, side, db.name)
        except Exception as exc:  # noqa: BLE001 - one vault down still leaves the other's record
            unreachable.append(f"{side}: {_one_line(exc)}")
            continue
        if newest:
            found.append((newest[1]["finishedAt"], side, *newest))
    if not found:
        detail = "; ".join(unreachable) or "run `pilotlight verify --from-region dr --test-restore --evidence`"
        return [Line("restore test", db.name, WARN, "none", objective, f"no evidence: {detail}")]
    _, side, key, doc = max(found)
    age = evidence.age_seconds(doc, now)
    verdict = "PASS" if doc.get("ok") else "FAILED"
    state = OK if doc.get("ok") and age <= EVIDENCE_MAX_AGE.total_seconds() else WARN
    rows = sum(b.get("testRestore", {}).get("rows", 0) for b in doc.get("backups", []))
    detail = (f"{len(doc.get('backups', []))} backup(s) checked, {rows} rows test-restored; "
              f"s3://{contract.buckets[side].bucket}/{key}")
    if not doc.get("ok"):
        detail = f"{'; '.join(doc.get('failures', []))[:200]}; {detail}"
    return [Line("restore test", db.name, state, f"{verdict} {age_text(age)} ago", objective, detail)]


def collect(contract: Contract, reports: Path, now: datetime) -> list[Line]:
    windows = {db.name: engine.windows(contract, db) for db in contract.databases}
    lines = guarded("backup age", "vault", "", lambda: backup_lines(contract, now, windows))
    for db in contract.databases:
        lines += window_lines(contract, db, windows[db.name], now)
        lines += guarded("standby lag", db.name, "", lambda db=db: standby_line(contract, db, now))
        lines += guarded("fence", db.name, "none", lambda db=db: fence_lines(contract, db))
        lines += guarded("kept copies", db.name, f"< {kept.WARN_AT}", lambda db=db: kept_line(contract, db))
        lines += guarded("dns", db.dns.record_name, f"answers {contract.active}", lambda db=db: dns_line(contract, db))
        lines += guarded("restore test", db.name, "", lambda db=db: evidence_line(contract, db, now))
    lines += guarded("drill", "reports", "", lambda: drill_lines(reports, now, contract))
    return lines


def table(lines: list[Line]) -> Iterable[str]:
    rows = [("STATE", "CHECK", "SUBJECT", "NOW", "OBJECTIVE", "DETAIL")]
    rows += [(line.state, line.check, line.subject, line.value, line.objective, line.detail) for line in lines]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        yield "  ".join(f"{cell:<{w}}" for cell, w in zip(r[:5], widths)) + f"  {r[5]}".rstrip()


def parse_arguments() -> argparse.ArgumentParser:
    parser = parser_for("status", "Objectives against the present state: backups, replication, standby, DNS, drills.")
    parser.add_argument("--reports", metavar="DIR", type=Path,
                        help="where drill reports are (default: reports/ in the project root, as `make drill` writes them)")
    return parser


def body(args: argparse.Namespace) -> Exit:
    contract = load_contract(args)
    now = utcnow().astimezone(timezone.utc)
    lines = collect(contract, args.reports or (project_root() or Path.cwd()) / "reports", now)
    failed = any(line.state == FAIL for line in lines)
    counts = {state: sum(line.state == state for line in lines) for state in (OK, WARN, FAIL)}
    result = {"stack": contract.stack, "active": contract.active, "at": iso(now), "ok": not failed,
              "counts": counts, "lines": [asdict(line) for line in lines]}

    def human() -> Iterable[str]:
        yield f"Stack {contract.project}/{contract.stack}, active side {contract.active}, at {iso(now)}"
        yield from table(lines)
        yield f"{counts[OK]} OK, {counts[WARN]} WARN, {counts[FAIL]} FAIL"

    emit(args, result, human)
    return Exit.FAILED if failed else Exit.OK


def main(argv: list[str] | None = None) -> int:
    return run(body, parse_arguments(), argv)
