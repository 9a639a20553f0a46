"""The verify engine: prove backups are present, intact, decryptable and restorable (`pilotlight verify`).

Per backup: manifest and object present in both buckets with the manifest's size, each copy's
manifest sealed by the data key of the object it describes (not rewritten), the primary's
latest version the one the backup wrote, S3 checksums equal where S3 reports them (replication
status from the primary's ``ReplicationStatus`` where S3 reports one: FAILED, or PENDING for
more than 15 minutes, is an RPO breach); the primary copy's SHA-256 re-computed by streaming; the
DR copy downloaded, every chunk authenticated and decrypted with the DR key ALONE, and the dump's
SHA-256 compared. ``--from-region dr`` verifies the DR copies alone (listed, checked, decrypted and
test-restored with the DR key, the primary vault never read), as the DR-region job does. With ``--test-restore`` a scratch database is restored, its row counts compared
with the manifest, then dropped. Per tier: the newest complete backup must be younger than the
tier's interval plus slack. Without --backup/--all the newest backup of each tier is checked.
Any failure: exit 1, and the report names the backup and why.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError
from scripts import aws, progress
from scripts.vault import restore
from scripts.common import Exit, PilotlightError, iso, utcnow
from scripts.contract import Contract
from scripts.postgres.dsn import side_dsn
from scripts.vault.pipeline import Digest
from scripts.vault.stream import check_stream, download
from scripts.units import seconds as dur
from scripts.vault.layout import (Entry, Manifest, aws_error, check_object, check_seal, id_database, list_backups,
                                  validate_backup_id)
from stacks.vocabulary import RTC_MINUTES

PENDING_LIMIT = timedelta(minutes=RTC_MINUTES)


def _replication(contract: Contract, m: Manifest, now: datetime) -> str | None:
    """A problem with the primary object's replication status, or None."""
    head = aws.client(contract, "s3", "primary").head_object(
        Bucket=contract.buckets["primary"].bucket, Key=m.doc["object"]["key"])
    status = head.get("ReplicationStatus")
    if status == "FAILED":
        return "replication to the DR bucket FAILED"
    if status == "PENDING" and now - m.finished_at > PENDING_LIMIT:
        return f"replication PENDING for more than {int(PENDING_LIMIT.total_seconds() // 60)} minutes"
    return None


def _stored_sha(contract: Contract, side: str, m: Manifest, args) -> str | None:
    digest = Digest()
    with progress.bar(args, f"hash {m.id} ({side})", total=m.stored_bytes) as bar:
        for _ in digest.tap(bar.tap(download(contract, side, m))):
            pass
    if digest.size != m.stored_bytes or digest.hexdigest() != m.stored_sha256:
        return f"SHA-256 of the {side} object does not match the manifest"
    return None


def verify_one(contract: Contract, entry: Entry, dr: dict[str, Entry] | None, *, test_restore: bool = False,
               server_dsn: str | None = None, now: datetime | None = None, args=None, side: str = "primary") -> dict:
    """Every check on one backup; ``problems`` empty means it is good.

    ``side`` is the copy verified: ``primary`` checks the primary copy and its DR twin (``dr``);
    ``dr`` checks the DR copy alone, with the DR key alone (a verification in the DR region, which
    must work while the primary region is down) and test-restores from it.
    """
    now = now or utcnow()
    report = {"id": entry.id, "tier": entry.tier, "database": entry.database, "side": side, "checks": {},
              "problems": list(entry.problems)}
    m = entry.manifest
    if m is None:
        return report

    def check(name: str, fn) -> None:
        try:
            problem = fn()
        except PilotlightError as exc:
            problem = str(exc)
        except (ClientError, BotoCoreError) as exc:
            problem = str(aws_error(exc, name))
        report["checks"][name] = "ok" if problem is None else "FAILED"
        if problem:
            report["problems"].append(problem)

    if side == "primary":
        check("primary-object", lambda: check_object(contract, "primary", m) and None)
        check("primary-manifest-seal", lambda: check_seal(contract, "primary", m))
        check("primary-replication", lambda: _replication(contract, m, now))
        check("primary-sha256", lambda: _stored_sha(contract, "primary", m, args))

        def dr_copy() -> str | None:
            if dr is None:
                return "DR vault unreachable"
            twin = dr.get(entry.id)
            if twin is None:
                return "not in the DR bucket (not replicated)"
            if twin.problems:
                return "DR copy: " + "; ".join(twin.problems)
            return _dr_checks(contract, twin.manifest)

        check("dr-copy-decrypt-with-dr-key", dr_copy)
    else:
        check("dr-object", lambda: check_object(contract, "dr", m) and None)
        check("dr-manifest-seal", lambda: check_seal(contract, "dr", m))
        # One download: the stream checks the stored and the dump SHA-256 as it authenticates every chunk.
        check("dr-sha256-decrypt-with-dr-key", lambda: check_stream(contract, "dr", m, None) and None)
    if test_restore:
        def trial() -> None:
            trial = restore.trial_restore(contract, side, m, server_dsn, args)
            report["testRestore"] = trial
            report["rowCounts"] = trial["rowCounts"]
        check("test-restore", trial)
    return report


def _dr_checks(contract: Contract, twin: Manifest) -> None:
    check_object(contract, "dr", twin)
    check_seal(contract, "dr", twin)
    check_stream(contract, "dr", twin, None)
    return None


def verify_backups(contract: Contract, *, backup_id: str | None = None, all_backups: bool = False,
                   test_restore: bool = False, db: str | None = None, server_dsn: str | None = None,
                   args=None, side: str = "primary") -> dict:
    """The verification report (``ok`` false on any failure); see the module docstring.

    ``side="dr"``: the DR vault's copies are listed, checked and test-restored with the DR key
    alone; the primary vault is not read (it may be the region that is down).
    """
    now = utcnow()
    protected = next((d for d in contract.databases if d.name == db), None) if db else contract.database()
    server_dsn = server_dsn or side_dsn(contract, "primary", protected or contract.database(), superuser=True)
    filed = id_database(validate_backup_id(backup_id)) if backup_id and db is None else db or protected.name
    entries = list_backups(contract, side, filed)
    dr = None
    if side == "primary":
        try:
            dr = {e.id: e for e in list_backups(contract, "dr", filed)}
        except PilotlightError:
            pass
    if backup_id:
        chosen = [e for e in entries if e.id == validate_backup_id(backup_id)]
        if not chosen:
            raise PilotlightError(f"unknown backup id {backup_id} (not in s3://{contract.buckets[side].bucket})",
                                  Exit.USAGE)
    elif all_backups:
        chosen = entries
    else:
        chosen = []
        for tier in contract.tiers:
            first = next((e for e in entries if e.tier == tier and e.manifest is not None), None)
            chosen += [first] if first else []
    tiers = {}
    if not backup_id:
        for name, tier in contract.tiers.items():
            newest = next((e for e in entries if e.tier == name and e.complete), None)
            limit = timedelta(seconds=tier.interval_seconds + tier.slack_seconds)
            age = (now - newest.manifest.finished_at) if newest else None
            tiers[name] = {"newest": newest.id if newest else None,
                           "ageSeconds": round(age.total_seconds(), 1) if age is not None else None,
                           "limitSeconds": limit.total_seconds(), "stale": age is not None and age > limit,
                           "missing": newest is None}
    reports = [verify_one(contract, e, dr, test_restore=test_restore, server_dsn=server_dsn, now=now, args=args,
                          side=side) for e in chosen]
    failures = [f"{r['id']}: {p}" for r in reports for p in r["problems"]]
    failures += [f"tier {t}: newest backup {v['newest']} is {dur(v['ageSeconds'])} old, over {dur(v['limitSeconds'])}"
                 for t, v in tiers.items() if v["stale"]]
    failures += [f"tier {t}: no complete backup of {filed} (`pilotlight status` calls this FAIL); "
                 f"run `pilotlight backup --tier {t}`" for t, v in tiers.items() if v["missing"]]
    if dr is None and side == "primary":
        failures.append(f"DR vault s3://{contract.buckets['dr'].bucket} unreachable")
    if not chosen and not failures:
        failures.append(f"no backups of {filed} found")
    return {"ok": not failures, "checkedAt": iso(now), "database": filed, "side": side,
            "bucket": contract.buckets[side].bucket, "backups": reports,
            "tiers": tiers, "failures": failures}
