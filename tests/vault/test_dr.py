"""Regional outage: restore from the DR bucket with the DR key while every primary-region endpoint is down."""
from __future__ import annotations

import json

import pytest

from scripts.vault import backup as vault_backup
from scripts.commands import restore
from scripts.common import Exit
from scripts.sandbox import control
from tests.vault.conftest import one_line_error, table_checksums
from tests.vault.test_faults import wait_replicated

DATA = ["CREATE TABLE ledger (id bigserial PRIMARY KEY, amount numeric(12, 2), memo text)",
        "INSERT INTO ledger (amount, memo) SELECT i * 1.5, 'entrée ' || i FROM generate_series(1, 300) i"]


@pytest.fixture(scope="module")
def ledger(env):
    env.create_db("ledger", *DATA)
    return "ledger"


def test_restore_from_dr_with_primary_region_blocked(env, ledger, capsys):
    m = vault_backup.perform_backup(env.contract, "daily", source_dsn=env.dsn("ledger"))
    wait_replicated(env, m.id)
    expected = table_checksums(env.dsn("ledger"))
    primary_region = env.contract.regions["primary"]
    control.block_region(env.handle.state, primary_region)
    try:
        assert restore.main(env.args("--target", env.dsn("ledger_dr"), "--latest", "--database", "ledger", "--allow-rename", "--from-region", "dr")) == Exit.REFUSED
        assert "plan (nothing done" in capsys.readouterr().out
        rc = restore.main(env.args("--target", env.dsn("ledger_dr"), "--latest", "--database", "ledger", "--allow-rename", "--from-region", "dr", "--yes", "--json"))
        result = json.loads(capsys.readouterr().out)
        assert rc == 0 and result["backupId"] == m.id and result["side"] == "dr"
        assert table_checksums(env.dsn("ledger_dr")) == expected
        # the primary side really is gone: the same restore from it fails with one network line
        assert restore.main(env.args("--target", env.dsn("ledger_dr"), "--latest", "--database", "ledger", "--allow-rename", "--yes")) == Exit.NETWORK
        assert "cannot list the primary vault" in one_line_error(capsys)
    finally:
        control.unblock_region(env.handle.state, primary_region)


def test_backup_publishes_age_metric(env, ledger):
    m = vault_backup.perform_backup(env.contract, "weekly", source_dsn=env.dsn("ledger"))
    cw = vault_backup.aws.client(env.contract, "cloudwatch", "primary")
    metrics = cw.list_metrics(Namespace=env.contract.metric_namespace, MetricName=env.contract.backup_age_metric)["Metrics"]
    dims = [{d["Name"]: d["Value"] for d in x["Dimensions"]} for x in metrics]
    assert {"Database": m.database, "Tier": "weekly"} in dims


def test_backup_age_of_every_tier_is_published_from_what_was_read_beside_the_dump(env, ledger, monkeypatch):
    first = vault_backup.perform_backup(env.contract, "monthly", source_dsn=env.dsn("ledger"))
    published = []
    real = vault_backup.publish_age
    monkeypatch.setattr(vault_backup, "publish_age", lambda *a, **k: published.append(real(*a, **k)) or published[-1])
    second = vault_backup.perform_backup(env.contract, "daily", source_dsn=env.dsn("ledger"))
    ages = published[-1]
    assert ages["daily"] < 5 and ages["monthly"] >= (second.finished_at - first.finished_at).total_seconds() - 1
    assert ages == pytest.approx(real(env.contract, second.database), abs=5)  # as listing the vault afterwards says
