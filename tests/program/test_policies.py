"""The policy pack's rule functions, each satisfied and violated, on plain resource inputs."""
from __future__ import annotations

import copy
import json

import pytest
from pulumi_policy import PolicyResource, PolicyResourceOptions, ResourceValidationArgs, StackValidationArgs

from stacks.policy import policies as p

KEY_DR = "arn:aws:kms:us-west-2:123456789012:key/mrk-1234"
KEY_PRIMARY = "arn:aws:kms:us-east-1:123456789012:key/mrk-1234"

SSE = {
    "bucket": "pilotlight-dr-vault-us-east-1-123456789012",
    "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_PRIMARY},
               "bucketKeyEnabled": True}],
}
BUCKET = {"bucket": "pilotlight-dr-vault-us-east-1-123456789012", "objectLockEnabled": True}
LOCK = {"bucket": "pilotlight-dr-vault-us-east-1-123456789012", "objectLockEnabled": "Enabled",
        "rule": {"defaultRetention": {"mode": "GOVERNANCE", "days": 7}}}
VERSIONING = {"bucket": "pilotlight-dr-vault-us-east-1-123456789012", "versioningConfiguration": {"status": "Enabled"}}
PAB = {"bucket": "pilotlight-dr-vault-us-east-1-123456789012", **{flag: True for flag in p.PUBLIC_ACCESS_FLAGS}}
POLICY = {
    "bucket": "pilotlight-dr-vault-us-east-1-123456789012",
    "policy": json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "DenyUnencryptedPuts", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::b/*",
         "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}},
    ]}),
}
REPLICATION = {
    "bucket": "pilotlight-dr-vault-us-east-1-123456789012",
    "role": "arn:aws:iam::123456789012:role/r",
    "rules": [{
        "id": "to-dr", "status": "Enabled", "filter": {}, "priority": 1,
        "deleteMarkerReplication": {"status": "Disabled"},
        "sourceSelectionCriteria": {"sseKmsEncryptedObjects": {"status": "Enabled"}},
        "destination": {
            "bucket": "arn:aws:s3:::pilotlight-dr-vault-us-west-2-123456789012",
            "encryptionConfiguration": {"replicaKmsKeyId": KEY_DR},
            "replicationTime": {"status": "Enabled", "time": {"minutes": 15}},
            "metrics": {"status": "Enabled", "eventThreshold": {"minutes": 15}},
        },
    }],
}
STANDBY = {
    "identifier": "pilotlight-dr-orders-standby", "region": "us-west-2",
    "replicateSourceDb": "arn:aws:rds:us-east-1:123456789012:db:orders-prod",
    "kmsKeyId": KEY_DR, "storageEncrypted": True, "deletionProtection": True, "backupRetentionPeriod": 7,
}
RECORD = {"zoneId": "Z0123456789EXAMPLE", "name": "db.orders.example.com", "type": "CNAME", "ttl": 30,
          "records": ["orders-prod.example"], "setIdentifier": "primary", "healthCheckId": "hc-1",
          "failoverRoutingPolicies": [{"type": "PRIMARY"}]}
KEY = {"multiRegion": True, "enableKeyRotation": True}
ADMIN = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}
DENY = {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": ["kms:ScheduleKeyDeletion", "kms:DisableKey"],
        "Resource": "*", "Condition": {"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/glass"}}}
VAULT_KEY = {"multiRegion": True, "enableKeyRotation": True, "policy": json.dumps({"Statement": [ADMIN, DENY]})}


def mutate(props, path, value):
    """A deep copy of ``props`` with one nested value replaced (or removed when value is ...)."""
    out = copy.deepcopy(props)
    cur = out
    for key in path[:-1]:
        cur = cur[key]
    if value is ...:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return out


CASES = [
    # (rule function, compliant inputs, (path, bad value), expected words in the message)
    (p.vault_encryption, SSE, (("rules", 0, "applyServerSideEncryptionByDefault", "sseAlgorithm"), "AES256"), "aws:kms"),
    (p.vault_encryption, SSE, (("rules", 0, "applyServerSideEncryptionByDefault", "kmsMasterKeyId"), ...),
     "customer-managed"),
    (p.vault_encryption, SSE, (("rules", 0, "applyServerSideEncryptionByDefault", "kmsMasterKeyId"), "alias/aws/s3"),
     "AWS-managed"),
    (p.vault_encryption, SSE, (("rules",), []), "no rule"),
    (p.vault_bucket_key, SSE, (("rules", 0, "bucketKeyEnabled"), False), "bucket_key_enabled"),
    (p.vault_object_lock_enabled, BUCKET, (("objectLockEnabled",), ...), "object_lock_enabled=True"),
    (p.vault_object_lock_retention, LOCK, (("rule", "defaultRetention", "mode"), "NONE"), "GOVERNANCE"),
    (p.vault_object_lock_retention, LOCK, (("rule", "defaultRetention", "days"), 0), "days > 0"),
    (p.vault_versioning, VERSIONING, (("versioningConfiguration", "status"), "Suspended"), "Enabled"),
    (p.vault_public_access_blocked, PAB, (("restrictPublicBuckets",), False), "restrictPublicBuckets"),
    (p.vault_tls_only, POLICY, (("policy",), json.dumps({"Statement": []})), "aws:SecureTransport"),
    (p.vault_denies_unencrypted_puts, POLICY, (("policy",), json.dumps({"Statement": []})), "s3:PutObject"),
    (p.vault_replication, REPLICATION, (("rules", 0, "status"), "Disabled"), "no Enabled rule"),
    (p.vault_replication, REPLICATION, (("rules", 0, "destination", "replicationTime"), ...), "Replication Time Control"),
    (p.vault_replication, REPLICATION, (("rules", 0, "destination", "replicationTime", "time", "minutes"), 60),
     "Replication Time Control"),
    (p.vault_replication, REPLICATION, (("rules", 0, "destination", "metrics", "status"), "Disabled"), "metrics"),
    (p.vault_replication, REPLICATION, (("rules", 0, "destination", "encryptionConfiguration"), ...),
     "replica_kms_key_id"),
    (p.vault_replication, REPLICATION, (("rules", 0, "sourceSelectionCriteria"), ...), "sse_kms_encrypted_objects"),
    # Delete markers must NOT replicate: a delete in the primary region would hide the DR copy.
    (p.vault_replication, REPLICATION, (("rules", 0, "deleteMarkerReplication", "status"), "Enabled"),
     "delete_marker_replication.status='Disabled'"),
    (p.bucket_name_unique, BUCKET, (("bucket",), "pilotlight-dr-vault-us-east-1"), "BucketAlreadyExists"),
    (p.key_destruction_denied, VAULT_KEY, (("policy",), json.dumps({"Statement": [ADMIN]})), "kms:ScheduleKeyDeletion"),
    (p.key_destruction_denied, VAULT_KEY, (("policy",), json.dumps({"Statement": [ADMIN, {
        **DENY, "Condition": {"StringEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/x"}}}]})),
     "break-glass"),
    (p.standby_encrypted, STANDBY, (("kmsKeyId",), ...), "kms_key_id"),
    (p.standby_encrypted, STANDBY, (("kmsKeyId",), KEY_PRIMARY), "us-east-1"),
    (p.standby_encrypted, STANDBY, (("storageEncrypted",), False), "storage_encrypted=True"),
    (p.standby_deletion_protected, STANDBY, (("deletionProtection",), False), "deletion_protection=True"),
    (p.standby_backups, STANDBY, (("backupRetentionPeriod",), 0), "backup_retention_period"),
    (p.failover_ttl, RECORD, (("ttl",), 300), "ttl <= 60"),
    (p.failover_health_check, RECORD, (("healthCheckId",), ...), "health_check_id"),
    (p.key_rotation, KEY, (("enableKeyRotation",), False), "enable_key_rotation"),
]


@pytest.mark.parametrize("fn, good, change, words", CASES, ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_rule_satisfied_then_violated(fn, good, change, words):
    assert fn(good) == [], f"{fn.__name__} rejected compliant inputs"
    messages = fn(mutate(good, *change))
    assert messages, f"{fn.__name__} accepted {change}"
    assert any(words in m for m in messages), messages


def test_promoted_standby_without_storage_flag_must_set_it():
    promoted = mutate(mutate(STANDBY, ("replicateSourceDb",), ...), ("storageEncrypted",), ...)
    assert any("storage_encrypted" in m for m in p.standby_encrypted(promoted))
    replica = mutate(STANDBY, ("storageEncrypted",), ...)
    assert p.standby_encrypted(replica) == []  # a replica's encryption comes from kms_key_id


def test_alias_failover_records_have_no_ttl_to_check():
    alias = mutate(mutate(RECORD, ("ttl",), ...), ("aliases",), [{"name": "x", "zoneId": "Z1"}])
    assert p.failover_ttl(alias) == []
    plain = mutate(mutate(RECORD, ("failoverRoutingPolicies",), ...), ("ttl",), 3600)
    assert p.failover_ttl(plain) == []  # not a failover record


def args_for(type_, props, provider_region=None):
    """The object pulumi-policy hands a resource validation."""
    from pulumi_policy import PolicyProviderResource

    provider = None
    if provider_region:
        provider = PolicyProviderResource("pulumi:providers:aws", {"region": provider_region},
                                          "urn:pulumi:dr::pilotlight::pulumi:providers:aws::dr", "dr")
    return ResourceValidationArgs(type_, props, f"urn:pulumi:dr::pilotlight::{type_}::x", "x",
                                  PolicyResourceOptions(False, [], False, [], None, []),
                                  provider)


def test_functions_accept_pulumi_policy_args_and_use_the_provider_region():
    standby = mutate(STANDBY, ("region",), ...)
    assert p.standby_encrypted(args_for(p.RDS_INSTANCE_TYPE, standby, "us-west-2")) == []
    wrong = p.standby_encrypted(args_for(p.RDS_INSTANCE_TYPE, standby, "eu-west-1"))
    assert wrong and "eu-west-1" in wrong[0]


def test_pack_policies_report_through_pulumi_policy():
    policies = {policy.name: policy for policy in p.pack_policies()}
    assert set(policies) == {r.name for r in p.RESOURCE_RULES} | {r.name for r in p.STACK_RULES}
    reported = []
    bad = mutate(SSE, ("rules", 0, "applyServerSideEncryptionByDefault", "sseAlgorithm"), "AES256")
    policies["vault-sse-customer-key"].validate(args_for(p.SSE_TYPES[0], bad), lambda m, u=None: reported.append(m))
    assert reported and "aws:kms" in reported[0]
    reported.clear()
    policies["vault-sse-customer-key"].validate(args_for(p.RECORD_TYPE, RECORD), lambda m, u=None: reported.append(m))
    assert reported == []  # other types are not this rule's business


def stack(*items):
    return [p.Res(t, f"urn:{t}:{i}", props) for i, (t, props) in enumerate(items)]


GOOD_STACK = [
    (p.BUCKET_TYPES[0], BUCKET), (p.SSE_TYPES[0], SSE), (p.VERSIONING_TYPES[0], VERSIONING),
    (p.LOCK_TYPES[0], LOCK), (p.PAB_TYPE, PAB), (p.BUCKET_POLICY_TYPE, POLICY), (p.REPLICATION_TYPE, REPLICATION),
    (p.STACK_TYPE, {"objectives": {s: {"rtoSeconds": 900, "rpoSeconds": 60} for s in p.SCENARIOS}}),
]


def test_stack_rules_accept_a_complete_vault():
    assert p.evaluate(stack(*GOOD_STACK)) == []


@pytest.mark.parametrize("drop, rule", [
    (p.SSE_TYPES[0], "vault-buckets-encrypted"),
    (p.VERSIONING_TYPES[0], "vault-buckets-versioned"),
    (p.LOCK_TYPES[0], "vault-buckets-locked"),
    (p.PAB_TYPE, "vault-buckets-private"),
    (p.BUCKET_POLICY_TYPE, "vault-buckets-tls-only"),
    (p.REPLICATION_TYPE, "vault-replication-present"),
])
def test_stack_rules_catch_a_missing_piece(drop, rule):
    found = p.evaluate(stack(*[item for item in GOOD_STACK if item[0] != drop]))
    assert [v.policy for v in found] == [rule]
    assert found[0].urn.startswith(f"urn:{p.BUCKET_TYPES[0]}") or rule == "vault-replication-present"


def test_sub_resources_match_their_bucket_by_dependency_when_names_are_unknown():
    bucket = p.Res(p.BUCKET_TYPES[0], "urn:b", {"objectLockEnabled": True})
    pab = p.Res(p.PAB_TYPE, "urn:pab", PAB | {"bucket": "unknown-yet"}, {"bucket": ("urn:b",)})
    assert p.buckets_private([bucket, pab]) == []
    assert p.buckets_private([bucket, p.Res(p.PAB_TYPE, "urn:pab", PAB | {"bucket": "other"})])


def test_objectives_must_cover_every_scenario():
    partial = {"objectives": {"regional-outage": {"rtoSeconds": 900, "rpoSeconds": 60}}}
    found = p.objectives_present(stack((p.STACK_TYPE, partial)))
    assert found and "ransomware" in found[0][1] and "pilotlight:objectives" in found[0][1]


def test_stack_policy_through_pulumi_policy_objects():
    resources = [PolicyResource(t, props, f"urn:{i}", "n", None, None, None, [], {})
                 for i, (t, props) in enumerate(GOOD_STACK) if t != p.PAB_TYPE]
    policies = {policy.name: policy for policy in p.pack_policies()}
    reported = []
    policies["vault-buckets-private"].validate(StackValidationArgs(resources), lambda m, u=None: reported.append((u, m)))
    assert reported == [("urn:0", reported[0][1])] and "public access block" in reported[0][1]


def test_the_pack_answers_the_analyzer_protocol_as_pulumi_launches_it():
    """`pulumi preview --policy-pack stacks/policy` starts __main__.py and talks gRPC to it; so do we."""
    import subprocess
    import sys
    from pathlib import Path

    import grpc
    from google.protobuf import empty_pb2, struct_pb2
    from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

    pack = Path(__file__).resolve().parents[2] / "stacks" / "policy"
    proc = subprocess.Popen([sys.executable, "-u", "__main__.py"], cwd=pack, stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        stub = analyzer_pb2_grpc.AnalyzerStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=10)
        levels = {policy.name: policy.enforcementLevel for policy in info.policies}
        assert info.name == "pilotlight-dr"
        assert levels["vault-sse-customer-key"] == analyzer_pb2.MANDATORY
        assert levels["kms-rotation"] == analyzer_pb2.ADVISORY

        props = struct_pb2.Struct()
        props.update(mutate(SSE, ("rules", 0, "applyServerSideEncryptionByDefault", "sseAlgorithm"), "AES256"))
        response = stub.Analyze(analyzer_pb2.AnalyzeRequest(type=p.SSE_TYPES[0], properties=props, urn="urn:x",
                                                            name="x"), timeout=10)
        found = {d.policyName: d.message for d in response.diagnostics}
        assert set(found) == {"vault-sse-customer-key"} and "sse_algorithm='aws:kms'" in found["vault-sse-customer-key"]

        outputs = struct_pb2.Struct()
        outputs.update({"objectives": {"ransomware": {"rtoSeconds": 14400, "rpoSeconds": 86400}}})
        stack = analyzer_pb2.AnalyzerResource(type=p.STACK_TYPE, properties=outputs, urn="urn:stack", name="s")
        response = stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[stack]), timeout=10)
        (diagnostic,) = response.diagnostics
        assert diagnostic.policyName == "objectives-present" and diagnostic.urn == "urn:stack"
        assert "regional-outage" in diagnostic.message and "ransomware" not in diagnostic.message.split(";")[0]
    finally:
        proc.kill()
        proc.wait()


def test_legacy_bucket_names_pass_only_when_tagged_as_such():
    legacy = {"bucket": "pilotlight-dr-vault-us-east-1", "objectLockEnabled": True,
              "tags": {"pilotlight:legacy-bucket-name": "true"}}
    assert p.bucket_name_unique(legacy) == []
    assert p.bucket_name_unique({"bucket": "pilotlight-dr-vault-us-east-1-team42"}) == []
