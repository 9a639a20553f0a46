"""Pure vault rules and policy documents: exact numbers and least-privilege statements."""
import json

import pytest
from stack_values import config, example_values

from components import rules

BUCKET = "arn:aws:s3:::pilotlight-dr-vault-us-east-1"
DEST = "arn:aws:s3:::pilotlight-dr-vault-us-west-2"
KEY = "arn:aws:kms:us-east-1:123456789012:key/mrk-1"
REPLICA = "arn:aws:kms:us-west-2:123456789012:key/mrk-1"
ROLE = "arn:aws:iam::123456789012:role/pilotlight-dr-vault-replication"


def by_id(rule_list):
    return {r["ID"]: r for r in rule_list}


def test_lifecycle_rules_follow_the_runbook_defaults():
    got = by_id(rules.lifecycle_rules(config().vault))
    assert set(got) == {"tier-hourly", "tier-daily", "tier-weekly", "tier-monthly"}
    for tier, days in (("hourly", 7), ("daily", 30), ("weekly", 90), ("monthly", 365)):
        rule = got[f"tier-{tier}"]
        assert rule["Status"] == "Enabled"
        assert rule["Filter"] == {"Prefix": f"{tier}/"}
        assert rule["Expiration"] == {"Days": days}
        assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
        assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    # Objects that expire on or before day 30 never move to IA (S3 refuses transition >= expiration).
    assert "Transitions" not in got["tier-hourly"] and "Transitions" not in got["tier-daily"]
    assert got["tier-weekly"]["Transitions"] == [{"Days": 30, "StorageClass": "STANDARD_IA"}]
    assert got["tier-monthly"]["Transitions"] == [
        {"Days": 30, "StorageClass": "STANDARD_IA"},
        {"Days": 90, "StorageClass": "GLACIER"},
    ]


def test_lifecycle_numbers_come_from_config():
    values = example_values()
    values["vault"] = {
        "tiers": {"daily": {"retentionDays": 45}, "monthly": {"retentionDays": 730, "archiveAfterDays": 120, "archiveClass": "DEEP_ARCHIVE"}},
        "infrequentAccessAfterDays": 35,
        "noncurrentVersionDays": 10,
        "abortMultipartDays": 2,
    }
    got = by_id(rules.lifecycle_rules(config(values).vault))
    assert got["tier-daily"]["Expiration"] == {"Days": 45}
    assert got["tier-daily"]["Transitions"] == [{"Days": 35, "StorageClass": "STANDARD_IA"}]
    assert got["tier-monthly"]["Transitions"][-1] == {"Days": 120, "StorageClass": "DEEP_ARCHIVE"}
    assert got["tier-hourly"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 10}
    assert got["tier-hourly"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}


def test_replication_rule_has_rtc_metrics_delete_markers_and_replica_key():
    doc = rules.replication_configuration(ROLE, DEST, REPLICA)
    assert doc["Role"] == ROLE
    (rule,) = doc["Rules"]
    assert rule["Status"] == "Enabled" and rule["Filter"] == {"Prefix": ""}
    assert rule["DeleteMarkerReplication"] == {"Status": "Enabled"}
    assert rule["SourceSelectionCriteria"] == {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    dest = rule["Destination"]
    assert dest["Bucket"] == DEST
    assert dest["EncryptionConfiguration"] == {"ReplicaKmsKeyID": REPLICA}
    assert dest["ReplicationTime"] == {"Status": "Enabled", "Time": {"Minutes": 15}}
    assert dest["Metrics"] == {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}


def test_object_lock_configuration():
    assert rules.object_lock_configuration("GOVERNANCE", 7) == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 7}},
    }
    with pytest.raises(ValueError):
        rules.object_lock_configuration("LEGAL", 7)


def test_bucket_policy_denies_plain_http_and_foreign_encryption():
    doc = json.loads(json.dumps(rules.bucket_policy(BUCKET, KEY)))
    st = {s["Sid"]: s for s in doc["Statement"]}
    assert all(s["Effect"] == "Deny" and s["Principal"] == "*" for s in st.values())
    tls = st["DenyInsecureTransport"]
    assert tls["Action"] == "s3:*" and tls["Resource"] == [BUCKET, f"{BUCKET}/*"]
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert st["DenyNonKmsEncryption"]["Action"] == "s3:PutObject"
    assert st["DenyNonKmsEncryption"]["Condition"] == {
        "Null": {"s3:x-amz-server-side-encryption": "false"},
        "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
    }
    assert st["DenyOtherKmsKey"]["Condition"] == {
        "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"},
        "StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": KEY},
    }
    # a headerless put (default SSE-KMS, multipart UploadPart) must not match any Deny
    assert not any("IfExists" in op for s in st.values() for op in s["Condition"])


def test_replication_role_trusts_only_s3():
    doc = rules.replication_trust_policy("123456789012")
    (st,) = doc["Statement"]
    assert st["Principal"] == {"Service": "s3.amazonaws.com"} and st["Action"] == "sts:AssumeRole"
    assert st["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_replication_role_policy_is_least_privilege():
    doc = rules.replication_role_policy(
        source_bucket_arn=BUCKET,
        destination_bucket_arn=DEST,
        source_key_arn=KEY,
        replica_key_arn=REPLICA,
        source_region="us-east-1",
        destination_region="us-west-2",
    )
    st = {s["Sid"]: s for s in doc["Statement"]}
    actions = [a for s in doc["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert not any("*" in a for a in actions), actions
    assert st["WriteReplicas"]["Resource"] == f"{DEST}/*"
    assert "s3:PutObject" not in actions and "s3:DeleteObject" not in actions
    assert st["DecryptSource"]["Action"] == "kms:Decrypt" and st["DecryptSource"]["Resource"] == KEY
    assert st["DecryptSource"]["Condition"]["StringEquals"] == {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    assert st["EncryptReplicas"]["Resource"] == REPLICA
    assert st["EncryptReplicas"]["Condition"]["StringEquals"] == {"kms:ViaService": "s3.us-west-2.amazonaws.com"}
    assert "s3:GetObjectRetention" in st["ReadSourceVersions"]["Action"]


def test_key_policy_has_one_statement_per_user_scoped_by_service():
    doc = rules.key_policy(partition="aws", account_id="123456789012", region="us-west-2", replication_role_arn=ROLE)
    st = {s["Sid"]: s for s in doc["Statement"]}
    assert set(st) == {"AccountAdministers", "VaultUseThroughS3", "ReplicationRoleThroughS3", "StandbyUseThroughRds", "AlarmNotifications"}
    assert st["AccountAdministers"]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert st["VaultUseThroughS3"]["Condition"]["StringEquals"]["kms:ViaService"] == "s3.us-west-2.amazonaws.com"
    assert st["ReplicationRoleThroughS3"]["Condition"]["ArnEquals"] == {"aws:PrincipalArn": ROLE}
    assert st["StandbyUseThroughRds"]["Condition"]["StringEquals"]["kms:ViaService"] == "rds.us-west-2.amazonaws.com"
    assert "kms:CreateGrant" in st["StandbyUseThroughRds"]["Action"]
    assert st["AlarmNotifications"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    users = [s for sid, s in st.items() if sid != "AccountAdministers"]
    assert all("kms:*" not in s["Action"] for s in users)


def test_s3_shapes_convert_to_pulumi_argument_names():
    rule = rules.as_pulumi_args(rules.replication_configuration(ROLE, DEST, REPLICA)["Rules"][0])
    assert rule["destination"]["encryption_configuration"] == {"replica_kms_key_id": REPLICA}
    assert rule["source_selection_criteria"] == {"sse_kms_encrypted_objects": {"status": "Enabled"}}
    assert rule["destination"]["metrics"]["event_threshold"] == {"minutes": 15}
    assert rule["id"] == "vault-to-dr"
    lifecycle = rules.as_pulumi_args(rules.lifecycle_rules(config().vault))[3]
    assert lifecycle["abort_incomplete_multipart_upload"] == {"days_after_initiation": 1}
    assert lifecycle["transitions"][1] == {"days": 90, "storage_class": "GLACIER"}
