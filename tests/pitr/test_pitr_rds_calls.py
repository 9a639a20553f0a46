"""The AWS path of `restore --to-time`: the exact RDS calls, checked against botocore's own model (Stubber).

The contract is the example stack's (tests/fixtures/outputs.json): real AWS, no sandbox section.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from scripts import aws
from scripts.common import PilotlightError
from scripts.contract import parse
from scripts.pitr import engine, rds
from scripts.commands.restore import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "outputs.json"
EARLIEST = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
LATEST = datetime(2026, 12, 1, 10, 45, tzinfo=timezone.utc)
TO_TIME = datetime(2026, 12, 1, 10, 42, 17, tzinfo=timezone.utc)
NAME = "pilotlight-dr-orders-pitr-20261201104217"


@pytest.fixture
def contract():
    return parse(json.loads(FIXTURE.read_text()))


@pytest.fixture
def stubs(monkeypatch):
    """One stubbed RDS client per region; any other AWS client is a test failure."""
    clients = {}

    def client(contract, service, side="primary", **_):
        assert service == "rds", f"unexpected {service} call"
        if side not in clients:
            clients[side] = boto3.client("rds", region_name=contract.regions[side], aws_access_key_id="x",
                                         aws_secret_access_key="x")
            clients[side].stubber = Stubber(clients[side])
            clients[side].stubber.activate()
        return clients[side]

    monkeypatch.setattr(aws, "client", client)
    monkeypatch.setattr(engine, "endpoint_dsn", lambda contract, host, port, dbname, **_: f"host={host} port={port}")
    monkeypatch.setattr(engine, "last_commit", lambda dsn: TO_TIME - timedelta(seconds=1))
    yield lambda contract, side: client(contract, "rds", side).stubber
    for c in clients.values():
        c.stubber.assert_no_pending_responses()


def _window(stub, arn):
    stub.add_response("describe_db_instance_automated_backups", {"DBInstanceAutomatedBackups": [{
        "DBInstanceAutomatedBackupsArn": arn, "Status": "replicating",
        "RestoreWindow": {"EarliestTime": EARLIEST, "LatestTime": LATEST}}]},
        {"DBInstanceAutomatedBackupsArn": arn})


def _instance(target, status="available", **changes):
    inst = {"DBInstanceIdentifier": NAME, "DBInstanceStatus": status, "DBInstanceClass": target.instance_class,
            "Endpoint": {"Address": f"{NAME}.abc.us-west-2.rds.amazonaws.com", "Port": 5432},
            "DBSubnetGroup": {"DBSubnetGroupName": target.subnet_group_name},
            "VpcSecurityGroups": [{"VpcSecurityGroupId": g, "Status": "active"} for g in target.security_group_ids],
            "DBParameterGroups": [{"DBParameterGroupName": target.parameter_group_name}],
            "KmsKeyId": target.kms_key_id,
            "TagList": [{"Key": rds.TAG_STACK, "Value": "pilotlight/dr"}, {"Key": rds.TAG_RESTORE_OF, "Value": "orders-prod"}]}
    inst.update(changes)
    return {"DBInstances": [inst]}


def test_from_the_dr_region_restores_the_replicated_backups_into_the_standby_network(contract, stubs):
    target = contract.database().restore["dr"]
    dr = stubs(contract, "dr")
    _window(dr, target.automated_backups_arn)
    dr.add_response("restore_db_instance_to_point_in_time", {"DBInstance": {"DBInstanceIdentifier": NAME}}, {
        "SourceDBInstanceAutomatedBackupsArn": target.automated_backups_arn,
        "TargetDBInstanceIdentifier": NAME,
        "RestoreTime": TO_TIME,
        "DBInstanceClass": "db.r6g.large",
        "DBSubnetGroupName": target.subnet_group_name,
        "VpcSecurityGroupIds": list(target.security_group_ids),
        "DBParameterGroupName": target.parameter_group_name,
        "Port": 5432, "MultiAZ": False, "PubliclyAccessible": False, "DeletionProtection": False,
        "CopyTagsToSnapshot": True,
        "Tags": [{"Key": "pilotlight:stack", "Value": "pilotlight/dr"}, {"Key": "pilotlight:database", "Value": "orders"},
                 {"Key": "pilotlight:restore-of", "Value": "orders-prod"},
                 {"Key": "pilotlight:restore-time", "Value": "2026-12-01T10:42:17.000000Z"}],
    })
    dr.add_response("describe_db_instances", _instance(target, "creating"), {"DBInstanceIdentifier": NAME})
    dr.add_response("describe_db_instances", _instance(target), {"DBInstanceIdentifier": NAME})
    dr.add_response("describe_db_instances", _instance(target), {"DBInstanceIdentifier": NAME})
    rds.WAITER["Delay"] = 0
    result = engine.restore_to_time(contract, TO_TIME, side="dr", yes=True)
    assert result.executed and result.instance == NAME and result.region == "us-west-2"
    assert result.endpoint == f"{NAME}.abc.us-west-2.rds.amazonaws.com:5432"
    assert result.last_commit == "2026-12-01T10:42:16.000000Z"


@pytest.mark.parametrize("moment", [EARLIEST - timedelta(seconds=1), LATEST + timedelta(minutes=1)])
def test_a_time_outside_the_window_exits_2_with_one_line_naming_it_and_restores_nothing(contract, stubs, capsys,
                                                                                      moment, tmp_path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(FIXTURE.read_text())
    _window(stubs(contract, "dr"), contract.database().restore["dr"].automated_backups_arn)
    rc = main(["--outputs", str(outputs), "--to-time", moment.isoformat(), "--from-region", "dr", "--yes"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "outside the restorable window of orders (2026-12-01T08:00:00.000000Z .. 2026-12-01T10:45:00.000000Z " \
           "in us-west-2)" in err


def test_without_yes_it_only_plans(contract, stubs):
    _window(stubs(contract, "dr"), contract.database().restore["dr"].automated_backups_arn)
    result = engine.restore_to_time(contract, TO_TIME, side="dr")
    assert not result.executed
    assert any(f"NEW instance {NAME}" in step for step in result.plan)


def test_a_restored_instance_with_other_settings_is_reported_and_kept_for_cleanup(contract, stubs, caplog):
    target = contract.database().restore["dr"]
    dr = stubs(contract, "dr")
    _window(dr, target.automated_backups_arn)
    dr.add_response("restore_db_instance_to_point_in_time", {"DBInstance": {"DBInstanceIdentifier": NAME}}, None)
    wrong = _instance(target, DBSubnetGroup={"DBSubnetGroupName": "default"})
    dr.add_response("describe_db_instances", wrong, {"DBInstanceIdentifier": NAME})
    dr.add_response("describe_db_instances", wrong, {"DBInstanceIdentifier": NAME})
    with pytest.raises(PilotlightError, match="subnetGroupName is 'default', the stack's is"):
        engine.restore_to_time(contract, TO_TIME, side="dr", yes=True)
    assert f"restore --cleanup {NAME}" in caplog.text


def test_from_the_primary_region_the_restore_copies_the_production_instances_settings(contract, stubs):
    primary = stubs(contract, "primary")
    primary.add_response("describe_db_instance_automated_backups", {"DBInstanceAutomatedBackups": [{
        "RestoreWindow": {"EarliestTime": EARLIEST, "LatestTime": LATEST}}]}, {"DBInstanceIdentifier": "orders-prod"})
    primary.add_response("describe_db_instances", {"DBInstances": [{
        "DBInstanceIdentifier": "orders-prod", "DBInstanceClass": "db.r6g.xlarge",
        "DBSubnetGroup": {"DBSubnetGroupName": "prod-subnets"},
        "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-0prod", "Status": "active"}],
        "DBParameterGroups": [{"DBParameterGroupName": "prod-pg15"}], "KmsKeyId": "arn:aws:kms:us-east-1:1:key/k"}]},
        {"DBInstanceIdentifier": "orders-prod"})
    result = engine.restore_to_time(contract, TO_TIME, side="primary")
    assert rds.source_of(contract.database(), "primary") == {"SourceDBInstanceIdentifier": "orders-prod"}
    assert any("db.r6g.xlarge" in step and "prod-subnets" in step and "sg-0prod" in step and "prod-pg15" in step
               and "orders-prod's own settings" in step for step in result.plan)


def test_cleanup_deletes_only_instances_a_restore_made(contract, stubs):
    target = contract.database().restore["dr"]
    dr = stubs(contract, "dr")
    listing = {"DBInstances": [_instance(target)["DBInstances"][0],
                               {"DBInstanceIdentifier": "pilotlight-dr-orders-standby", "TagList": []}]}
    dr.add_response("describe_db_instances", listing, {})
    dr.add_response("delete_db_instance", {"DBInstance": {"DBInstanceIdentifier": NAME}},
                    {"DBInstanceIdentifier": NAME, "SkipFinalSnapshot": True, "DeleteAutomatedBackups": True})
    rds.delete_restored(contract, "dr", NAME)
    dr.add_response("describe_db_instances", listing, {})
    with pytest.raises(PilotlightError, match="is not an instance made by `restore --to-time`"):
        rds.delete_restored(contract, "dr", "pilotlight-dr-orders-standby")


def test_an_interrupted_restore_names_the_instance_it_leaves_and_how_to_remove_it(contract, stubs, caplog, monkeypatch):
    target = contract.database().restore["dr"]
    dr = stubs(contract, "dr")
    _window(dr, target.automated_backups_arn)
    dr.add_response("restore_db_instance_to_point_in_time", {"DBInstance": {"DBInstanceIdentifier": NAME}}, None)

    def interrupted(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(rds, "wait_available", interrupted)
    with pytest.raises(KeyboardInterrupt):
        engine.restore_to_time(contract, TO_TIME, side="dr", yes=True)
    assert f"restored instance {NAME} is kept in us-west-2" in caplog.text
    assert f"`restore --cleanup {NAME}` removes it" in caplog.text
