"""While DR serves (active: dr) backups go to the DR vault with the DR key, even with the primary region down,
and replicate back to the primary vault once it is reachable."""
from __future__ import annotations

import base64
import json

from botocore.exceptions import ClientError

from scripts.commands import restore
from scripts.contract import load_file
from scripts.failover.cutover import record_active_side
from scripts.sandbox import control
from scripts.vault import backup
from scripts.vault.layout import list_backups
from tests.vault.conftest import table_checksums

DATA = ["CREATE TABLE orders_dr (id bigserial PRIMARY KEY, total numeric(10, 2))",
        "INSERT INTO orders_dr (total) SELECT i * 2.5 FROM generate_series(1, 250) i"]


def _replicates_back(env) -> bool:
    try:
        rules = env.s3("dr").get_bucket_replication(Bucket=env.bucket("dr"))["ReplicationConfiguration"]["Rules"]
    except ClientError:
        return False
    return [r["ID"] for r in rules] == ["vault-to-primary"]


def test_backup_while_active_dr_lands_in_the_dr_vault_encrypted_with_the_dr_key_restores_and_reaches_primary(
        env, capsys):
    env.create_db("after_failover", *DATA)
    expected = table_checksums(env.dsn("after_failover"))
    record_active_side(env.contract, "dr", env.handle.outputs_path)
    failed_over = load_file(env.handle.outputs_path)
    primary_region = env.contract.regions["primary"]
    try:
        # What `pulumi up` with active: dr declares (components/vault.py), the sandbox applies.
        control.wait_for(lambda: _replicates_back(env), 30, "the DR vault's rule back to primary")
        control.block_region(env.handle.state, primary_region)
        try:
            m = backup.perform_backup(failed_over, "hourly", source_dsn=env.dsn("after_failover"))
            assert m.doc["object"]["bucket"] == env.bucket("dr")
            assert m.doc["object"]["region"] == env.contract.regions["dr"]
            head = env.s3("dr").head_object(Bucket=env.bucket("dr"), Key=m.doc["object"]["key"])
            assert head["ServerSideEncryption"] == "aws:kms"
            assert head["SSEKMSKeyId"].endswith(env.contract.keys["dr"].arn.rsplit("/", 1)[1])
            wrapped = m.wrapped_keys
            assert set(wrapped) == {"primary", "dr"} and all(base64.b64decode(v) for v in wrapped.values())
            rc = restore.main(env.args("--target", env.dsn("after_failover_restored"), "--backup", m.id,
                                       "--from-region", "dr", "--allow-rename", "--yes", "--json"))
            assert rc == 0, capsys.readouterr().err
            assert json.loads(capsys.readouterr().out)["side"] == "dr"
            assert table_checksums(env.dsn("after_failover_restored")) == expected
        finally:
            control.unblock_region(env.handle.state, primary_region)
        # Once the primary region is reachable the backup replicates back, re-encrypted with the primary key.
        control.wait_for(lambda: any(e.id == m.id and e.complete for e in list_backups(env.contract, "primary")),
                         60, f"{m.id} in the primary vault")
        head = env.s3("primary").head_object(Bucket=env.bucket("primary"), Key=m.doc["object"]["key"])
        assert head["SSEKMSKeyId"].endswith(env.contract.keys["primary"].arn.rsplit("/", 1)[1])
        # ... once: the replica in primary does not come back to DR as another version.
        versions = env.s3("dr").list_object_versions(Bucket=env.bucket("dr"), Prefix=m.doc["object"]["key"])
        assert len(versions["Versions"]) == 1
    finally:
        record_active_side(env.contract, "primary", env.handle.outputs_path)
    control.wait_for(lambda: not _replicates_back(env), 30, "the rule back to primary to go with active: primary")
