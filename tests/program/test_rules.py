"""Pure vault rules and policy documents: exact numbers and least-privilege statements."""
import json

import pytest
from stack_values import config, example_values

from components import rules
from scripts.vault.envelope import context
from stacks.documents import vault_rules

BUCKET = "arn:aws:s3:::pilotlight-dr-vault-us-east-1-123456789012"
DEST = "arn:aws:s3:::pilotlight-dr-vault-us-west-2-123456789012"
KEY = "arn:aws:kms:us-east-1:123456789012:key/mrk-1"
REPLICA = "arn:aws:kms:us-west-2:123456789012:key/mrk-1"
ROLE = "arn:aws:iam::123456789012:role/pilotlight-dr-vault-replication"
WRITER = "arn:aws:iam::123456789012:role/pilotlight-dr-backup-writer"
READER = "arn:aws:iam::123456789012:role/pilotlight-dr-restore-reader"
GLASS = "arn:aws:iam::123456789012:role/pilotlight-dr-key-break-glass"
BACKUP_CONTEXT = {
    "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["pilotlight:backup-id", "pilotlight:database"]},
    "Null": {"kms:EncryptionContext:pilotlight:backup-id": "false", "kms:EncryptionContext:pilotlight:database": "false"},
}
DELETES_AND_UNLOCKS = {"s3:*", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:DeleteBucket", "s3:PutObjectRetention",
                       "s3:BypassGovernanceRetention", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
                       "s3:PutBucketObjectLockConfiguration", "s3:PutObjectLegalHold", "s3:PutLifecycleConfiguration"}


def by_id(rule_list):
    return {r["ID"]: r for r in rule_list}


def test_lifecycle_rules_follow_the_runbook_defaults():
    got = by_id(rules.lifecycle_rules(vault_rules(config())))
    assert set(got) == {"tier-hourly", "tier-daily", "tier-weekly", "tier-monthly", "expired-delete-markers"}
    # S3 refuses ExpiredObjectDeleteMarker next to Days: it has a rule of its own, over the whole vault.
    assert got.pop("expired-delete-markers") == {"ID": "expired-delete-markers", "Status": "Enabled",
                                                 "Filter": {"Prefix": ""}, "Expiration": {"ExpiredObjectDeleteMarker": True}}
    for tier, days in (("hourly", 7), ("daily", 30), ("weekly", 90), ("monthly", 365)):
        rule = got[f"tier-{tier}"]
        assert rule["Status"] == "Enabled"
        assert rule["Filter"] == {"Prefix": f"{tier}/"}
        assert rule["Expiration"] == {"Days": days}
        # A deleted backup (delete marker on top) stays recoverable for as long as its tier promises.
        assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": days}
        assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    # Objects that expire on or before day 30 never move to IA (S3 refuses transition >= expiration).
    assert "Transitions" not in got["tier-hourly"] and "Transitions" not in got["tier-daily"]
    assert got["tier-weekly"]["Transitions"] == [{"Days": 30, "StorageClass": "STANDARD_IA"}]
    assert got["tier-monthly"]["Transitions"] == [
        {"Days": 30, "StorageClass": "STANDARD_IA"},
        {"Days": 90, "StorageClass": "GLACIER_IR"},
    ]


def test_lifecycle_numbers_come_from_config():
    values = example_values()
    values["vault"] = {
        "tiers": {"daily": {"retentionDays": 45}, "hourly": {"noncurrentDays": 10},
                  "monthly": {"retentionDays": 730, "archiveAfterDays": 120, "archiveClass": "GLACIER_IR"}},
        "infrequentAccessAfterDays": 35,
        "abortMultipartDays": 2,
    }
    got = by_id(rules.lifecycle_rules(vault_rules(config(values))))
    assert got["tier-daily"]["Expiration"] == {"Days": 45}
    assert got["tier-daily"]["Transitions"] == [{"Days": 35, "StorageClass": "STANDARD_IA"}]
    assert got["tier-monthly"]["Transitions"][-1] == {"Days": 120, "StorageClass": "GLACIER_IR"}
    assert got["tier-daily"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 45}
    assert got["tier-hourly"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 10}
    assert got["tier-hourly"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}


def test_replication_rule_has_rtc_metrics_replica_key_and_no_delete_markers():
    doc = rules.replication_configuration(ROLE, DEST, REPLICA)
    assert doc["Role"] == ROLE
    (rule,) = doc["Rules"]
    assert rule["Status"] == "Enabled" and rule["Filter"] == {"Prefix": ""}
    # A delete in the primary region (ransomware, a mistake) must not hide the DR copy.
    assert rule["DeleteMarkerReplication"] == {"Status": "Disabled"}
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
    doc = rules.key_policy(partition="aws", account_id="123456789012", region="us-west-2", replication_role_arn=ROLE,
                           backup_writer_role_arn=WRITER, restore_reader_role_arn=READER, break_glass_arn=GLASS)
    st = {s["Sid"]: s for s in doc["Statement"]}
    assert set(st) == {"AccountAdministers", "DenyDestructiveKeyActions", "VaultUseThroughS3", "ReplicationRoleThroughS3",
                       "BackupWriterEnvelopeKeys", "RestoreReaderEnvelopeKeys", "StandbyUseThroughRds"}
    # The tools' direct (envelope) calls: one role each, only under the backup encryption context.
    assert st["BackupWriterEnvelopeKeys"]["Action"] == ["kms:GenerateDataKey", "kms:Encrypt"]
    assert st["BackupWriterEnvelopeKeys"]["Condition"] == {"ArnEquals": {"aws:PrincipalArn": WRITER}, **BACKUP_CONTEXT}
    assert st["RestoreReaderEnvelopeKeys"]["Action"] == ["kms:Decrypt"]
    assert st["RestoreReaderEnvelopeKeys"]["Condition"] == {"ArnEquals": {"aws:PrincipalArn": READER}, **BACKUP_CONTEXT}
    assert st["AccountAdministers"]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert st["VaultUseThroughS3"]["Condition"]["StringEquals"]["kms:ViaService"] == "s3.us-west-2.amazonaws.com"
    assert st["ReplicationRoleThroughS3"]["Condition"]["ArnEquals"] == {"aws:PrincipalArn": ROLE}
    assert st["StandbyUseThroughRds"]["Condition"]["StringEquals"]["kms:ViaService"] == "rds.us-west-2.amazonaws.com"
    assert "kms:CreateGrant" in st["StandbyUseThroughRds"]["Action"]
    # No kms:* at all: the admin statement cannot use the key, so every use statement is the only way in.
    assert all("kms:*" not in s["Action"] for s in st.values())
    assert not {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncrypt*", "kms:CreateGrant"} & set(
        st["AccountAdministers"]["Action"])
    assert "kms:PutKeyPolicy" not in st["DenyDestructiveKeyActions"]["Action"]  # the lockout safety check
    assert st["DenyDestructiveKeyActions"] == {
        "Sid": "DenyDestructiveKeyActions", "Effect": "Deny", "Principal": {"AWS": "*"},
        "Action": ["kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:DeleteImportedKeyMaterial"], "Resource": "*",
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": GLASS}}}


def test_key_policy_without_tool_roles_keeps_only_the_service_users():
    """The sandbox passes only the replication role: no statement names a role it did not give."""
    doc = rules.key_policy(partition="aws", account_id="123456789012", region="us-east-1", replication_role_arn=ROLE,
                           break_glass_arn=GLASS)
    assert not {"BackupWriterEnvelopeKeys", "RestoreReaderEnvelopeKeys"} & {s["Sid"] for s in doc["Statement"]}


def test_backup_context_condition_matches_what_the_backup_tool_sends():
    assert sorted(context("b1", "orders")) == sorted(rules.BACKUP_CONTEXT_KEYS)
    assert rules.backup_context_condition() == BACKUP_CONTEXT


def test_tool_roles_trust_only_the_account():
    doc = rules.account_trust_policy("aws-us-gov", "123456789012")
    assert doc["Statement"] == [{"Effect": "Allow", "Principal": {"AWS": "arn:aws-us-gov:iam::123456789012:root"},
                                 "Action": "sts:AssumeRole"}]


def _actions(statement):
    a = statement["Action"]
    return [a] if isinstance(a, str) else a


def writer_doc():
    return rules.backup_writer_policy(bucket_arn=BUCKET, key_arn=KEY, dr_key_arn=REPLICA, region="us-east-1",
                                      metric_namespace="Pilotlight")


def test_backup_writer_writes_the_primary_vault_and_never_deletes():
    st = {s["Sid"]: s for s in writer_doc()["Statement"]}
    assert st["ListVault"] == {"Sid": "ListVault", "Effect": "Allow", "Resource": BUCKET,
                               "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"]}
    assert st["WriteBackups"]["Resource"] == f"{BUCKET}/*"
    assert set(st["WriteBackups"]["Action"]) == {"s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload",
                                                 "s3:ListMultipartUploadParts"}
    granted = {a for s in st.values() for a in _actions(s)}
    assert not granted & DELETES_AND_UNLOCKS
    assert not [a for a in granted if "Delete" in a or a.endswith("*")]
    assert all(s["Effect"] == "Allow" for s in st.values())
    # Only the primary bucket: S3 replication, not the tool, writes the DR copy.
    s3_resources = {s["Resource"] for s in st.values() if _actions(s)[0].startswith("s3:")}
    assert s3_resources == {BUCKET, f"{BUCKET}/*"}


def test_backup_writer_kms_use_is_scoped_by_key_context_and_service():
    st = {s["Sid"]: s for s in writer_doc()["Statement"]}
    assert (st["NewDataKey"]["Action"], st["NewDataKey"]["Resource"]) == ("kms:GenerateDataKey", KEY)
    assert (st["WrapDataKeyForDr"]["Action"], st["WrapDataKeyForDr"]["Resource"]) == ("kms:Encrypt", REPLICA)
    assert st["NewDataKey"]["Condition"] == st["WrapDataKeyForDr"]["Condition"] == BACKUP_CONTEXT
    sse = st["VaultEncryptionThroughS3"]
    assert sse["Resource"] == KEY and set(sse["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert sse["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"},
                                "StringLike": {"kms:EncryptionContext:aws:s3:arn": [BUCKET, f"{BUCKET}/*"]}}
    kms = [s for s in st.values() if _actions(s)[0].startswith("kms:")]
    assert all(s.get("Condition") for s in kms)
    assert st["PublishBackupAge"]["Action"] == "cloudwatch:PutMetricData"
    assert st["PublishBackupAge"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Pilotlight"}}


def reader_doc():
    return rules.restore_reader_policy(bucket_arns={"primary": BUCKET, "dr": DEST},
                                       key_arns={"primary": KEY, "dr": REPLICA},
                                       regions={"primary": "us-east-1", "dr": "us-west-2"})


def test_restore_reader_only_reads_both_vaults_and_writes_only_locked_evidence():
    statements = reader_doc()["Statement"]
    writes = [s for s in statements if any(not a.startswith(("s3:Get", "s3:List", "kms:Decrypt"))
                                           for a in _actions(s))]
    st = {s["Sid"]: s for s in statements}
    assert [s["Sid"] for s in writes] == ["WriteRestoreTestEvidence", "ReadThroughS3Primary", "ReadThroughS3Dr"]
    # The only S3 write: new objects under evidence/ (locked by default retention); no delete, retention or bypass.
    assert st["WriteRestoreTestEvidence"]["Action"] == "s3:PutObject"
    assert st["WriteRestoreTestEvidence"]["Resource"] == [f"{BUCKET}/evidence/*", f"{DEST}/evidence/*"]
    granted = {a for s in statements for a in _actions(s)}
    assert not any(w in a for a in granted for w in ("Delete", "Bypass", "LegalHold", "Retention")), granted
    assert st["ListVaults"]["Resource"] == [BUCKET, DEST]
    assert set(st["ListVaults"]["Action"]) == {"s3:ListBucket", "s3:ListBucketVersions"}
    assert st["ReadBackups"]["Resource"] == [f"{BUCKET}/*", f"{DEST}/*"]
    assert set(st["ReadBackups"]["Action"]) == {"s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectAttributes"}
    assert st["UnwrapDataKeys"]["Resource"] == [KEY, REPLICA] and st["UnwrapDataKeys"]["Condition"] == BACKUP_CONTEXT


def test_restore_reader_decrypts_through_s3_only_in_each_buckets_own_region_with_its_own_key():
    st = {s["Sid"]: s for s in reader_doc()["Statement"]}
    for sid, key, region, bucket in (("ReadThroughS3Primary", KEY, "us-east-1", BUCKET),
                                     ("ReadThroughS3Dr", REPLICA, "us-west-2", DEST)):
        assert (st[sid]["Action"], st[sid]["Resource"]) == (["kms:Decrypt", "kms:GenerateDataKey"], key)
        assert st[sid]["Condition"]["StringEquals"] == {"kms:ViaService": f"s3.{region}.amazonaws.com"}
        assert st[sid]["Condition"]["StringLike"] == {"kms:EncryptionContext:aws:s3:arn": [bucket, f"{bucket}/*"]}


def test_s3_shapes_convert_to_pulumi_argument_names():
    rule = rules.as_pulumi_args(rules.replication_configuration(ROLE, DEST, REPLICA)["Rules"][0])
    assert rule["destination"]["encryption_configuration"] == {"replica_kms_key_id": REPLICA}
    assert rule["source_selection_criteria"] == {"sse_kms_encrypted_objects": {"status": "Enabled"}}
    assert rule["destination"]["metrics"]["event_threshold"] == {"minutes": 15}
    assert rule["id"] == "vault-to-dr"
    lifecycle = rules.as_pulumi_args(rules.lifecycle_rules(vault_rules(config())))
    assert lifecycle[3]["abort_incomplete_multipart_upload"] == {"days_after_initiation": 1}
    assert lifecycle[3]["transitions"][1] == {"days": 90, "storage_class": "GLACIER_IR"}
    assert lifecycle[4]["expiration"] == {"expired_object_delete_marker": True}
