"""RDS rules of the mock runtime: each raises on the combination AWS or the provider refuses."""
from __future__ import annotations

from dataclasses import replace

import pytest

from scripts.preview import awsrules
from scripts.preview.awsrules import AwsRuleError, Resource, check_resource, check_stack, transition_problems
from scripts.preview.awsrules.rds import BACKUPS_REPLICATION, INSTANCE, PARAMETER_GROUP

SOURCE = "arn:aws:rds:us-east-1:123456789012:db:orders-prod"
KEY_DR = "arn:aws:kms:us-west-2:123456789012:key/mrk-1"


def res(type_, logical, region="us-west-2", **inputs) -> Resource:
    return Resource(type=type_, name=logical, urn=f"urn:{logical}", inputs=inputs, region=region)


REPLICA = res(INSTANCE, "standby", identifier="orders-standby", replicateSourceDb=SOURCE, kmsKeyId=KEY_DR,
              storageEncrypted=True, parameterGroupName="pg15", instanceClass="db.r6g.large")
PARAMS = res(PARAMETER_GROUP, "params", name="pg15", family="postgres15")
PROMOTED = replace(REPLICA, inputs={k: v for k, v in REPLICA.inputs.items() if k != "replicateSourceDb"}
                   | {"backupRetentionPeriod": 7})


def rule_ids(problems):
    return {p.split("[AWS rule ", 1)[1].split(";", 1)[0] for p in problems}


def test_postgres_replica_with_backup_retention_is_refused():
    """Issue 10, item 1: the old standby (replica + backupRetentionPeriod=7) fails on the first `pulumi up`."""
    old = replace(REPLICA, inputs=REPLICA.inputs | {"backupRetentionPeriod": 7})
    with pytest.raises(AwsRuleError, match="rds-postgres-replica-no-backups"):
        check_stack([old, PARAMS])
    check_stack([REPLICA, PARAMS])
    check_stack([PROMOTED, PARAMS])


def test_replica_may_not_declare_what_it_inherits():
    with pytest.raises(AwsRuleError, match=r"engine conflicts with replicateSourceDb.*rds-replica-inherits-engine"):
        check_resource(replace(REPLICA, inputs=REPLICA.inputs | {"engine": "postgres"}))
    check_resource(replace(PROMOTED, inputs=PROMOTED.inputs | {"engine": "postgres"}))


def test_cross_region_encrypted_replica_needs_a_key_of_its_own_region():
    with pytest.raises(AwsRuleError, match="needs kmsKeyId"):
        check_resource(replace(REPLICA, inputs={k: v for k, v in REPLICA.inputs.items() if k != "kmsKeyId"}))
    with pytest.raises(AwsRuleError, match="key of us-east-1"):
        check_resource(replace(REPLICA, inputs=REPLICA.inputs | {"kmsKeyId": KEY_DR.replace("us-west-2", "us-east-1")}))
    check_resource(REPLICA)


def test_promoting_in_pulumi_up_with_a_retention_change_is_refused():
    """The provider sends ModifyDBInstance(BackupRetentionPeriod) to the replica before PromoteReadReplica."""
    assert "rds-modify-before-promote" in rule_ids(transition_problems([REPLICA, PARAMS], [PROMOTED, PARAMS]))
    refreshed = replace(PROMOTED)  # what `pilotlight cutover` left (promoted with the retention)
    assert transition_problems([refreshed, PARAMS], [PROMOTED, PARAMS]) == []


def test_an_instance_cannot_become_a_replica_again():
    assert "rds-no-demotion" in rule_ids(transition_problems([PROMOTED, PARAMS], [REPLICA, PARAMS]))
    ignored = replace(REPLICA, ignore_changes=("replicateSourceDb",))
    assert "rds-no-demotion" not in rule_ids(transition_problems([PROMOTED, PARAMS], [ignored, PARAMS]))


def test_replacing_with_the_source_ignored_creates_a_bare_instance():
    """Issue 10, item 4: the documented `pulumi up --replace` failback reused the stored, empty source."""
    again = replace(REPLICA, ignore_changes=("replicateSourceDb",), replace=True)
    assert "rds-create-needs-a-source-or-engine" in rule_ids(transition_problems([PROMOTED, PARAMS], [again, PARAMS]))
    adopted = replace(REPLICA, urn="urn:standby-g1", import_id="orders-standby-g1")
    assert transition_problems([PROMOTED, PARAMS], [PROMOTED, adopted, PARAMS]) == []


def test_backups_replication_is_replaced_delete_first():
    """Issue 10, item 5: every argument is replace-only; create-before-delete starts a second replication."""
    before = res(BACKUPS_REPLICATION, "backups", sourceDbInstanceArn=SOURCE, kmsKeyId=KEY_DR, retentionPeriod=7)
    after = replace(before, inputs=before.inputs | {"retentionPeriod": 14})
    assert "rds-backups-replication-delete-first" in rule_ids(transition_problems([before], [after]))
    assert transition_problems([before], [replace(after, delete_before_replace=True)]) == []
    assert [c.op for c in awsrules.changes([before], [after])] == ["replace"]


def test_backups_replication_needs_a_source_with_backups_and_one_per_region():
    standby_arn = "arn:aws:rds:us-west-2:123456789012:db:orders-standby"
    of_replica = res(BACKUPS_REPLICATION, "backups", region="us-east-1", sourceDbInstanceArn=standby_arn)
    with pytest.raises(AwsRuleError, match="a read replica that has none"):
        check_stack([REPLICA, PARAMS, of_replica])
    check_stack([PROMOTED, PARAMS, of_replica])
    twice = [res(BACKUPS_REPLICATION, n, sourceDbInstanceArn=SOURCE) for n in ("a", "b")]
    with pytest.raises(AwsRuleError, match="already replicated into us-west-2"):
        check_stack(twice)


def test_every_rule_cites_its_source():
    for rule in awsrules.RESOURCE_RULES + awsrules.STACK_RULES + awsrules.TRANSITION_RULES:
        assert rule.cite and ("docs.aws.amazon.com" in rule.cite or "internal/service/" in rule.cite), rule.id
