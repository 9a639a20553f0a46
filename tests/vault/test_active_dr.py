"""While DR serves (active: dr) backups go to the DR vault with the DR key, even with the primary region down."""
from __future__ import annotations

import base64
import dataclasses
import json

from scripts.commands import restore
from scripts.vault import backup
from scripts.sandbox import control
from tests.vault.conftest import table_checksums

DATA = ["CREATE TABLE orders_dr (id bigserial PRIMARY KEY, total numeric(10, 2))",
        "INSERT INTO orders_dr (total) SELECT i * 2.5 FROM generate_series(1, 250) i"]


def test_backup_while_active_dr_lands_in_the_dr_vault_encrypted_with_the_dr_key_and_restores(env, capsys):
    env.create_db("after_failover", *DATA)
    expected = table_checksums(env.dsn("after_failover"))
    failed_over = dataclasses.replace(env.contract, active="dr")
    primary_region = env.contract.regions["primary"]
    control.block_region(env.handle.state, primary_region)
    try:
        m = backup.perform_backup(failed_over, "hourly", source_dsn=env.dsn("after_failover"))
        assert m.doc["object"]["bucket"] == env.bucket("dr") and m.doc["object"]["region"] == env.contract.regions["dr"]
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
