"""Security of what the program declares, under Pulumi mocks (moto ignores IAM and aws:SecureTransport,
so the policies themselves are inspected). Only what tests/program does not already assert is here:

- keys and vault buckets are both protected and retained on delete (tests/program checks bucket protect);
- key policies keep the account root as administrator and give every other principal use-only actions,
  each under a condition;
- the replication role's S3 actions are exactly the documented minimal set, and no policy the program
  declares lets anyone bypass governance retention, delete object versions or change a bucket policy;
- the standby is encrypted with the DR-region key;
- the backup writer cannot delete and the restore role the tools run as is read-only (components/access.py).
"""
from __future__ import annotations

import json

import pytest

from scripts.preview.runtime import run_stack
from tests.program.stack_values import config

pytestmark = pytest.mark.filterwarnings("ignore:.*has been deprecated in favor of:DeprecationWarning")

KEYS = ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey")
USE_ONLY = {"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey", "kms:GenerateDataKey*",
            "kms:DescribeKey", "kms:CreateGrant", "kms:ListGrants"}
REPLICATION_S3 = {"s3:GetReplicationConfiguration", "s3:ListBucket", "s3:GetObjectVersionForReplication",
                  "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging", "s3:GetObjectRetention",
                  "s3:GetObjectLegalHold", "s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"}
NEVER = ("s3:*", "s3:BypassGovernanceRetention", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
         "s3:DeleteObjectVersion", "s3:PutObjectRetention", "s3:PutBucketObjectLockConfiguration", "s3:DeleteBucket")


@pytest.fixture(scope="module")
def program():
    return run_stack(config())


def actions(statement: dict) -> list[str]:
    a = statement.get("Action", [])
    return [a] if isinstance(a, str) else list(a)


def iam_policies(program) -> dict[str, dict]:
    return {r.urn: json.loads(r.inputs["policy"]) for r in program.of_type("aws:iam/rolePolicy:RolePolicy")}


def test_keys_and_buckets_are_protected_and_retained_on_delete(program):
    guarded = [r for r in program.resources.values() if r.type in (*KEYS, "aws:s3/bucket:Bucket")
               and "Alarms" not in r.urn]  # the alarm topics' keys hold no backup
    assert len(guarded) == 7  # vault key + replica, two vault buckets, the audit log bucket, the jobs key per region
    for r in guarded:
        assert r.protect and r.retain_on_delete, r.urn


def test_key_policies_keep_the_root_as_admin_and_give_everyone_else_use_only_under_a_condition(program):
    for r in program.resources.values():
        if r.type not in KEYS or "VaultKeys" not in r.urn:
            continue
        statements = json.loads(r.inputs["policy"])["Statement"]
        admin = [s for s in statements if s.get("Sid") == "AccountAdministers"]
        assert len(admin) == 1 and admin[0]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}, r.urn
        assert "Condition" not in admin[0], r.urn  # the root never loses the key (no lock-out)
        assert "kms:Put*" in actions(admin[0]), r.urn  # PutKeyPolicy stays: KMS's lockout safety check
        for s in statements:
            if s is admin[0] or s["Effect"] == "Deny":
                continue
            assert s["Effect"] == "Allow" and set(actions(s)) <= USE_ONLY, (r.urn, s["Sid"])
            assert s.get("Condition"), (r.urn, s["Sid"])  # scoped: via a service, a principal or an account


def test_replication_role_has_exactly_the_minimal_s3_actions(program):
    (role,) = [r for r in program.of_type("aws:iam/role:Role") if r.name == "vault-replication-role"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert [(s["Effect"], s["Principal"], actions(s)) for s in trust] == [
        ("Allow", {"Service": "s3.amazonaws.com"}, ["sts:AssumeRole"])], role.urn
    (doc,) = [d for urn, d in iam_policies(program).items() if urn.endswith("::vault-replication-policy")]
    s3 = {a for s in doc["Statement"] for a in actions(s) if a.startswith("s3:")}
    assert s3 == REPLICATION_S3
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["WriteReplicas"]["Resource"] == "arn:aws:s3:::pilotlight-dr-vault-us-west-2-123456789012/*"
    assert all(s["Resource"].startswith("arn:aws:s3:::pilotlight-dr-vault-us-east-1-123456789012")
               for s in doc["Statement"] if s["Sid"].startswith("Read"))


def test_no_declared_policy_can_bypass_retention_delete_versions_or_change_bucket_policy(program):
    for urn, doc in iam_policies(program).items():
        granted = {a for s in doc["Statement"] if s["Effect"] == "Allow" for a in actions(s)}
        assert not granted & set(NEVER), urn
        assert "*" not in granted, urn
    for pol in program.of_type("aws:s3/bucketPolicy:BucketPolicy"):
        for s in json.loads(pol.inputs["policy"])["Statement"]:
            # The only Allow in any bucket policy: CloudTrail writing its own log bucket.
            assert s["Effect"] == "Deny" or s["Principal"] == {"Service": "cloudtrail.amazonaws.com"}, pol.urn


def test_standby_is_encrypted_with_the_dr_region_key(program):
    (db,) = program.of_type("aws:rds/instance:Instance")
    assert db.inputs["storageEncrypted"] is True, db.urn
    assert db.inputs["kmsKeyId"] == program.document["keys"]["dr"]["arn"], db.urn


def test_backup_writer_cannot_delete_and_restore_role_only_reads_backups(program):
    roles = {r.name: r for r in program.of_type("aws:iam/role:Role")}
    writer = next(r for n, r in roles.items() if "writer" in n or "backup-role" in n)
    reader = next(r for n, r in roles.items() if "restore" in n)
    docs = iam_policies(program)
    writer_actions = {a for urn, d in docs.items() if writer.urn.split("::")[-1] in urn
                      for s in d["Statement"] for a in actions(s)}
    assert "s3:PutObject" in writer_actions and not writer_actions & {"s3:DeleteObject", *NEVER}
    reader_statements = [s for urn, d in docs.items() if reader.urn.split("::")[-1] in urn for s in d["Statement"]]
    writes = {r for s in reader_statements for a in actions(s) if not a.startswith(("s3:Get", "s3:List", "kms:"))
              for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])}
    assert writes and all(r.endswith("/evidence/*") for r in writes), writes  # restore-test records only
    assert {a for s in reader_statements for a in actions(s) if a.startswith("kms:")} == {"kms:Decrypt", "kms:GenerateDataKey"}
