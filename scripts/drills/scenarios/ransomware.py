"""ransomware: data encrypted in place, new backups poisoned, old backups attacked; restore from before.

Steps: create and fingerprint the drill's own table → the newest scheduled (clean) backup holding it → the
attack: scramble the table (every token replaced by its SHA-256: unreadable, as encrypted) → a backup
taken after the attack (poisoned: it holds the scrambled rows) → the attacker tries to destroy the
clean backup: a versioned DELETE of every object version of it, which must be refused by Object
Lock (the drill never sends a governance bypass; a delete that succeeds is a FAIL) → restore the
table ``--before`` the attack time into a new schema, which must pick the clean backup and skip
the poisoned one, and write the rows back → the fingerprint must equal the one before the attack.
RTO = attack → verified data back; RPO = the age of the clean backup at the attack.
"""
from __future__ import annotations

import time

import psycopg
from botocore.exceptions import ClientError

from scripts import aws
from scripts.common import utcnow
from scripts.drills.scenarios import DrillContext
from scripts.drills.scenarios.data import (TABLE, age_at, describe, drop_schema, dsn, fingerprint, measure_rpo,
                                           put_back, restore_table, run_data_drill, scheduled_backup, take_backup)
from scripts.vault.layout import DUMP, MANIFEST, Manifest, object_key
from scripts.steps import FAILED

ENCRYPT = f"update {TABLE} set token = encode(sha256(convert_to(token, 'UTF8')), 'base64')"


def attempt_delete(ctx: DrillContext, manifest: Manifest) -> list[dict]:
    """Try to permanently delete every version of the backup's objects; what S3 answered for each."""
    s3 = aws.client(ctx.contract, "s3", "primary")
    bucket = ctx.contract.buckets["primary"].bucket
    outcomes = []
    for name in (DUMP, MANIFEST):
        key = object_key(ctx.contract, manifest.tier, manifest.database, manifest.id, name)
        versions = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
        for version in (v for v in versions if v["Key"] == key):
            try:
                s3.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
                outcomes.append({"key": key, "refused": False, "answer": "deleted"})
            except ClientError as exc:
                outcomes.append({"key": key, "refused": True, "answer": exc.response["Error"].get("Code", "?")})
    return outcomes


def run(ctx: DrillContext) -> None:
    run_data_drill(ctx, _drill)


def _drill(ctx: DrillContext, side: str, before: tuple[int, str]) -> None:
    steps = ctx.steps
    schema = None
    with steps.step("newest scheduled backup (clean)") as s:
        clean = scheduled_backup(ctx, side)
        ctx.backup = describe(clean)
        s.note(clean.id)
    with steps.step("inject: encrypt table") as s:
        t_attack, at_attack = time.monotonic(), utcnow()
        with psycopg.connect(dsn(ctx, side), autocommit=True) as conn:
            s.note(f"{conn.execute(ENCRYPT).rowcount} rows of {TABLE} encrypted")
    try:
        with steps.step("poisoned backup after the attack") as s:
            poisoned = take_backup(ctx, side)
            ctx.measured["poisonedBackup"] = poisoned.id
            s.note(poisoned.id)
        with steps.step("attack: delete the clean backup") as s:
            outcomes = attempt_delete(ctx, clean)
            refused = [o for o in outcomes if o["refused"]]
            passed = ctx.check("Object Lock refused every delete of the clean backup",
                               outcomes and len(refused) == len(outcomes),
                               f"{len(refused)}/{len(outcomes)} versioned deletes refused "
                               f"({', '.join(sorted({o['answer'] for o in outcomes}))})")
            s.note(f"{len(refused)}/{len(outcomes)} versioned deletes refused", None if passed else FAILED)
        with steps.step("restore the table --before the attack; write it back") as s:
            schema, restored = restore_table(ctx, side, clean, at_attack)
            ctx.backup = describe(clean, restored) | {"id": restored.backup_id}
            done = put_back(ctx, side, schema, overwrite=True)
            s.note(f"backup {restored.backup_id} restored in {restored.seconds:.2f} s; {done['replaced']} rows "
                   "written back")
        with steps.step("verify data") as s:
            after = fingerprint(dsn(ctx, side))
            ctx.measured["rtoSeconds"] = round(time.monotonic() - t_attack, 3)
            ctx.check("table equals its state before the attack", after == before,
                      f"fingerprint {'matches' if after == before else 'DIFFERS'}")
            ctx.check("the poisoned backup was not used", restored.backup_id == clean.id,
                      f"used {restored.backup_id}, poisoned {poisoned.id}")
            s.note(f"{after[0]} rows, fingerprint {'matches' if after == before else 'differs'}")
        measure_rpo(ctx, side, age_at(clean, at_attack), at_attack.timestamp())
    finally:
        with steps.step("cleanup: drop the recovery schema"):
            if schema is not None:
                drop_schema(ctx, side, schema)
    ctx.notes.append("the poisoned backup stays in the vault, filed apart under the drill's own prefix (never a real "
                     "restore's --latest): Object Lock keeps it until its retention ends")
