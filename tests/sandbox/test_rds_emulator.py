"""The emulated RDS control plane (scripts/sandbox/rds.py) through boto3, as the tools and AWS's rules see it."""
import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from scripts import aws
from scripts.failover.rds import RdsPlatform
from scripts.postgres import replication
from scripts.sandbox import control
from scripts.sandbox.rds import Timing

pytestmark = pytest.mark.integration


def code_of(call) -> str:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"]


def test_timing_presets_and_overrides():
    assert Timing.parse("fast") == Timing() and Timing.parse("aws").promote == 60
    assert Timing.parse("promote=5,create=20") == Timing(promote=5, create=20)
    with pytest.raises(ValueError, match="unknown RDS timing 'nope'"):
        Timing.parse("nope=1")


def test_the_stack_instances_answer_as_rds_with_aws_rules_and_a_blocked_region_cuts_the_api(fresh_sandbox):
    c = fresh_sandbox.contract
    db = c.database()
    rds = {side: aws.client(c, "rds", side) for side in ("primary", "dr")}
    primary = rds["primary"].describe_db_instances(DBInstanceIdentifier=db.primary.identifier)["DBInstances"][0]
    standby = rds["dr"].describe_db_instances(DBInstanceIdentifier=db.standby.identifier)["DBInstances"][0]
    assert primary["DBInstanceArn"] == db.primary.arn and standby["DBInstanceArn"] == db.standby.arn
    assert standby["ReadReplicaSourceDBInstanceIdentifier"] == db.primary.arn  # cross-region: by ARN
    assert primary["ReadReplicaDBInstanceIdentifiers"] == [db.standby.arn]
    assert standby["StorageEncrypted"] and standby["KmsKeyId"] == c.keys["dr"].arn
    assert (standby["Endpoint"]["Address"], standby["Endpoint"]["Port"]) == (db.standby.host, db.port_of("dr"))
    assert [i["DBInstanceIdentifier"] for i in rds["dr"].describe_db_instances()["DBInstances"]] == [db.standby.identifier]

    assert code_of(lambda: rds["dr"].describe_db_instances(DBInstanceIdentifier="nope")) == "DBInstanceNotFound"
    assert code_of(lambda: rds["primary"].delete_db_instance(
        DBInstanceIdentifier=db.primary.identifier, SkipFinalSnapshot=True)) == "InvalidParameterCombination"
    assert code_of(lambda: rds["dr"].stop_db_instance(DBInstanceIdentifier=db.standby.identifier)) \
        == "InvalidDBInstanceState"  # RDS: a replica cannot be stopped
    assert code_of(lambda: rds["dr"].promote_read_replica(DBInstanceIdentifier="nope")) == "DBInstanceNotFound"
    assert code_of(lambda: rds["primary"].create_db_instance_read_replica(
        DBInstanceIdentifier="x-replica", SourceDBInstanceIdentifier=db.standby.arn,
        SourceRegion=c.regions["dr"])) == "InvalidParameterCombination"  # encrypted cross-region needs KmsKeyId
    assert code_of(lambda: rds["dr"].create_db_instance(  # RDS: a master user, storage and one way to its password
        DBInstanceIdentifier="x", Engine="postgres", DBInstanceClass="db.t3.micro")) == "InvalidParameterValue"
    assert code_of(lambda: rds["dr"].create_db_instance(
        DBInstanceIdentifier="x", Engine="postgres", DBInstanceClass="db.t3.micro", MasterUsername="m",
        AllocatedStorage=20, MasterUserPassword="p" * 12, ManageMasterUserPassword=True)) == "InvalidParameterCombination"
    assert code_of(lambda: rds["dr"].copy_db_snapshot(SourceDBSnapshotIdentifier="a", TargetDBSnapshotIdentifier="b")) \
        == "InvalidAction"

    # RebootDBInstance: "rebooting", then boto3's own waiter sees it available again, the replica still streaming.
    assert rds["dr"].reboot_db_instance(DBInstanceIdentifier=db.standby.identifier)["DBInstance"][
        "DBInstanceStatus"] == "rebooting"
    rds["dr"].get_waiter("db_instance_available").wait(DBInstanceIdentifier=db.standby.identifier,
                                                       WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    replication.wait_caught_up(c, db, "dr", "primary", 30)

    # The primary region's proxy refuses: its RDS API is gone too, the DR region's still answers.
    control.block_region(fresh_sandbox.state, c.regions["primary"])
    try:
        fast = boto3.session.Session().client("rds", region_name=c.regions["primary"],
                                              endpoint_url=c.aws_endpoint("primary"), aws_access_key_id="testing",
                                              aws_secret_access_key="testing",
                                              config=aws.botocore_config(retries={"max_attempts": 1}))
        with pytest.raises(EndpointConnectionError):
            fast.describe_db_instances(DBInstanceIdentifier=db.primary.identifier)
        assert RdsPlatform(c).describe("dr", db.standby.identifier)["DBInstanceStatus"] == "available"
    finally:
        control.unblock_region(fresh_sandbox.state, c.regions["primary"])

    # ModifyDBInstance lifts deletion protection; DeleteDBInstance then goes, and the deleted waiter returns.
    rds["dr"].modify_db_instance(DBInstanceIdentifier=db.standby.identifier, DeletionProtection=False,
                                 ApplyImmediately=True)
    rds["dr"].get_waiter("db_instance_available").wait(DBInstanceIdentifier=db.standby.identifier,
                                                       WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert rds["dr"].delete_db_instance(DBInstanceIdentifier=db.standby.identifier, SkipFinalSnapshot=True)[
        "DBInstance"]["DBInstanceStatus"] == "deleting"
    rds["dr"].get_waiter("db_instance_deleted").wait(DBInstanceIdentifier=db.standby.identifier,
                                                     WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert rds["primary"].describe_db_instances(DBInstanceIdentifier=db.primary.identifier)["DBInstances"][0][
        "ReadReplicaDBInstanceIdentifiers"] == []
