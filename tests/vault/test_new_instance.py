"""`restore --new-instance` on the sandbox: CreateDBInstance (emulated RDS on real PostgreSQL), then the backup.

The instance gets the stack's network, parameter group, KMS key and class from the contract's
restore target; the master password lives only in the Secrets Manager secret RDS manages; the
backup's roles are recreated without passwords; a failure after the create leaves the instance,
listed and removable as the point-in-time restores' are.
"""
from __future__ import annotations

import json

import psycopg
import pytest
from botocore.exceptions import ClientError

from scripts import aws
from scripts.commands import backup, restore
from scripts.pitr import rds
from scripts.postgres.dsn import endpoint_dsn
from tests.vault.test_faults import wait_replicated


def take(env, capsys) -> dict:
    assert backup.main(env.args("--tier", "daily", "--json")) == 0, capsys.readouterr()
    manifest = json.loads(capsys.readouterr().out)
    wait_replicated(env, manifest["id"])
    return manifest


def connect(env, instance, dbname: str):
    user, password = rds.master_credentials(env.contract, "dr", instance)
    return psycopg.connect(endpoint_dsn(env.contract, instance.host, instance.port, dbname, superuser=True),
                           user=user, password=password)


def test_dry_run_plans_the_instance_and_creates_nothing(env, capsys):
    manifest = take(env, capsys)
    rc = restore.main(env.args("--new-instance", "--from-region", "dr", "--latest", "--dry-run", "--json"))
    plan = json.loads(capsys.readouterr().out)
    assert rc == 0 and plan["executed"] is False and plan["backup_id"] == manifest["id"]
    target = env.contract.databases[0].restore["dr"]
    text = " ".join(plan["plan"])
    for setting in (target.subnet_group_name, target.parameter_group_name, target.kms_key_id, target.instance_class,
                    *target.security_group_ids):
        assert setting in text
    assert "Secrets Manager" in text and "without passwords" in text
    assert rds.list_restored(env.contract, "dr") == []
    assert restore.main(env.args("--new-instance", "--from-region", "dr", "--latest")) == 4  # no --yes: plan only
    capsys.readouterr()
    assert rds.list_restored(env.contract, "dr") == []


def test_new_instance_has_the_stacks_settings_and_the_backup_with_its_roles(env, capsys):
    manifest = take(env, capsys)
    rc = restore.main(env.args("--new-instance", "--from-region", "dr", "--backup", manifest["id"], "--yes", "--json"))
    out = capsys.readouterr()
    assert rc == 0, out
    result = json.loads(out.out)
    assert result["executed"] and result["restore"]["rowCounts"] == {k: v for k, v in manifest["rowCounts"].items()}
    db = env.contract.databases[0]
    instance = rds.describe(env.contract, "dr", result["instance"])
    assert rds.settings_mismatch(instance, db.restore["dr"]) == []
    raw = rds.describe_raw(env.contract, "dr", result["instance"])
    assert raw["StorageEncrypted"] and raw["IAMDatabaseAuthenticationEnabled"] and raw["EngineVersion"] == "15"
    _user, password = rds.master_credentials(env.contract, "dr", instance)
    assert password not in out.out + out.err  # never printed
    app = env.contract.sandbox.app_user
    assert app in result["restore"]["rolesCreated"]
    with connect(env, instance, db.db_name) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == manifest["rowCounts"]["public.orders"]
        assert conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'orders'").fetchone()[0] == app
        assert conn.execute("SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = %s", (app,)).fetchone()[0]
    listed = {i.identifier: i for i in rds.list_restored(env.contract, "dr")}
    assert listed[result["instance"]].backup == manifest["id"]

    assert restore.main(env.args("--cleanup", result["instance"], "--from-region", "dr", "--yes")) == 0
    aws.client(env.contract, "rds", "dr").get_waiter("db_instance_deleted").wait(
        DBInstanceIdentifier=result["instance"], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    with pytest.raises(ClientError):  # RDS deletes the secret it managed with the instance
        aws.client(env.contract, "secretsmanager", "dr").get_secret_value(SecretId=result["master_user_secret"])
    capsys.readouterr()


def test_a_failure_after_the_create_says_what_it_left_and_cleanup_removes_it(env, capsys):
    take(env, capsys)
    rc = restore.main(env.args("--new-instance", "--from-region", "dr", "--latest", "--role-map",
                               "pilotlight_app=nobody_here", "--yes"))
    err = capsys.readouterr().err
    assert rc == 2 and "role nobody_here does not exist" in err
    left = [i for i in rds.list_restored(env.contract, "dr") if i.backup]
    assert len(left) == 1 and f"`restore --cleanup {left[0].identifier} --from-region dr --yes` removes it" in err
    assert restore.main(env.args("--cleanup", left[0].identifier, "--from-region", "dr", "--yes")) == 0
    capsys.readouterr()


def test_new_instance_flags_are_checked_before_anything(env, capsys):
    assert restore.main(env.args("--new-instance", "--target", "dbname=orders", "--latest")) == 2
    assert "does not go with --target" in capsys.readouterr().err
    assert restore.main(env.args("--new-instance", "--to-time", "2026-01-01T00:00:00Z")) == 2
    assert "not --to-time" in capsys.readouterr().err
