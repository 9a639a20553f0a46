"""Backup vault: both buckets hardened and locked, lifecycle tiers, replication primary -> DR (and back while DR serves)."""
import json

import pytest
from scripts.preview.runtime import run_stack
from stack_values import config, example_values

S3 = "aws:s3/"
SIDES = {"us-east-1": "primary", "us-west-2": "dr"}


def per_region(run, kind):
    """The vault's resources of ``kind`` by region (the audit trail's log bucket is not part of the vault)."""
    found = {r.region: r for r in run.resources.values() if r.type.startswith(S3) and r.type.endswith(f":{kind}")
             and "VaultAudit" not in r.urn}
    assert set(found) == {"us-east-1", "us-west-2"}, f"{kind}: {sorted(found)}"
    return found


def test_buckets_one_per_region_with_object_lock_and_protected(example):
    for region, bucket in per_region(example, "Bucket").items():
        assert bucket.inputs["bucket"] == f"pilotlight-dr-vault-{region}-123456789012", bucket.urn
        assert bucket.inputs["objectLockEnabled"] is True, bucket.urn
        assert bucket.inputs["forceDestroy"] is False, bucket.urn
        assert bucket.protect, bucket.urn


def test_versioning_public_access_ownership(example):
    for region, v in per_region(example, "BucketVersioning").items():
        assert v.inputs["versioningConfiguration"] == {"status": "Enabled"}, v.urn
        assert v.inputs["bucket"] == f"pilotlight-dr-vault-{region}-123456789012", v.urn
    for pab in per_region(example, "BucketPublicAccessBlock").values():
        flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        assert all(pab.inputs[f] is True for f in flags), pab.urn
    for own in per_region(example, "BucketOwnershipControls").values():
        assert own.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}, own.urn


def test_sse_kms_with_bucket_keys_and_the_regions_own_key(example):
    keys = {side: example.document["keys"][side]["arn"] for side in ("primary", "dr")}
    for region, enc in per_region(example, "BucketServerSideEncryptionConfiguration").items():
        (rule,) = enc.inputs["rules"]
        assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": keys[SIDES[region]]}, enc.urn
        assert rule["bucketKeyEnabled"] is True, enc.urn


def test_bucket_policy_denies_non_tls_and_foreign_encryption(example):
    keys = {side: example.document["keys"][side]["arn"] for side in ("primary", "dr")}
    for region, pol in per_region(example, "BucketPolicy").items():
        doc = json.loads(pol.inputs["policy"])
        arn = f"arn:aws:s3:::pilotlight-dr-vault-{region}-123456789012"
        st = {s["Sid"]: s for s in doc["Statement"]}
        assert st["DenyInsecureTransport"]["Resource"] == [arn, f"{arn}/*"], pol.urn
        assert st["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, pol.urn
        assert st["DenyNonKmsEncryption"]["Condition"]["StringNotEquals"] == {"s3:x-amz-server-side-encryption": "aws:kms"}
        assert st["DenyOtherKmsKey"]["Condition"]["StringNotEquals"] == {
            "s3:x-amz-server-side-encryption-aws-kms-key-id": keys[SIDES[region]]
        }, pol.urn
        assert st["DenyOtherKmsKey"]["Condition"]["Null"] == {
            "s3:x-amz-server-side-encryption-aws-kms-key-id": "false"
        }, pol.urn
        assert all(s["Effect"] == "Deny" for s in st.values()), pol.urn
        # Write-once: a put (or multipart completion) without If-None-Match is refused.
        assert st["DenyOverwrites"]["Condition"] == {"Null": {"s3:if-none-match": "true"},
                                                     "Bool": {"s3:ObjectCreationOperation": "true"}}, pol.urn


def test_object_lock_governance_7_days_by_default(example):
    for lock in per_region(example, "BucketObjectLockConfiguration").values():
        assert lock.inputs["objectLockEnabled"] == "Enabled", lock.urn
        assert lock.inputs["rule"] == {"defaultRetention": {"mode": "GOVERNANCE", "days": 7}}, lock.urn


def test_object_lock_compliance_only_when_configured():
    values = example_values()
    values["vault"]["objectLock"] = {"mode": "COMPLIANCE", "days": 30}
    run = run_stack(config(values))
    for lock in per_region(run, "BucketObjectLockConfiguration").values():
        assert lock.inputs["rule"] == {"defaultRetention": {"mode": "COMPLIANCE", "days": 30}}, lock.urn
    assert run.document["vault"]["objectLock"] == {"mode": "COMPLIANCE", "days": 30}


def test_lifecycle_tiers_from_the_runbooks_on_both_buckets(example):
    for lc in per_region(example, "BucketLifecycleConfiguration").values():
        rules = {r["id"]: r for r in lc.inputs["rules"]}
        # Delete markers with nothing left behind them are cleared by a rule of their own.
        assert rules.pop("expired-delete-markers")["expiration"] == {"expiredObjectDeleteMarker": True}, lc.urn
        assert {k: (r["filter"]["prefix"], r["expiration"]["days"]) for k, r in rules.items()} == {
            "tier-hourly": ("hourly/", 7),
            "tier-daily": ("daily/", 30),
            "tier-weekly": ("weekly/", 90),
            "tier-monthly": ("monthly/", 365),
        }, lc.urn
        assert rules["tier-weekly"]["transitions"] == [{"days": 30, "storageClass": "STANDARD_IA"}], lc.urn
        assert rules["tier-monthly"]["transitions"] == [
            {"days": 30, "storageClass": "STANDARD_IA"},
            {"days": 90, "storageClass": "GLACIER_IR"},
        ], lc.urn
        for rule in rules.values():
            assert rule["status"] == "Enabled"
            # A deleted backup stays recoverable as long as its tier promises (not 30 days for all).
            assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": rule["expiration"]["days"]}, lc.urn
            assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}, lc.urn


def replication(run):
    (rep,) = [r for r in run.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig") if r.name == "vault-replication"]
    return rep


def test_replication_primary_to_dr_with_rtc_metrics_and_replica_key(example):
    rep = replication(example)
    assert rep.region == "us-east-1", rep.urn
    assert rep.inputs["bucket"] == "pilotlight-dr-vault-us-east-1-123456789012", rep.urn
    assert rep.inputs["role"] == "arn:aws:iam::123456789012:role/pilotlight-dr-vault-replication", rep.urn
    (rule,) = rep.inputs["rules"]
    assert rule["status"] == "Enabled" and rule["filter"] == {"prefix": ""}, rep.urn
    # A delete in the primary region never reaches the DR copy.
    assert rule["deleteMarkerReplication"] == {"status": "Disabled"}, rep.urn
    assert rule["sourceSelectionCriteria"] == {"sseKmsEncryptedObjects": {"status": "Enabled"}}, rep.urn
    dest = rule["destination"]
    assert dest["bucket"] == "arn:aws:s3:::pilotlight-dr-vault-us-west-2-123456789012", rep.urn
    assert dest["encryptionConfiguration"] == {"replicaKmsKeyId": example.document["keys"]["dr"]["arn"]}, rep.urn
    assert dest["replicationTime"] == {"status": "Enabled", "time": {"minutes": 15}}, rep.urn
    assert dest["metrics"] == {"status": "Enabled", "eventThreshold": {"minutes": 15}}, rep.urn


def test_replication_depends_on_versioning_of_both_buckets_and_the_role_policy(example):
    deps = set(replication(example).dependencies)
    versionings = {r.urn for r in per_region(example, "BucketVersioning").values()}
    role_policy = example.named("vault-replication-policy")
    assert versionings <= deps and role_policy.urn in deps


@pytest.mark.parametrize("kind", ["BucketObjectLockConfiguration", "BucketLifecycleConfiguration"])
def test_lock_and_lifecycle_wait_for_versioning(example, kind):
    versioning = per_region(example, "BucketVersioning")
    for region, res in per_region(example, kind).items():
        assert versioning[region].urn in res.dependencies, res.urn


def test_replication_role_trusts_only_s3_and_is_least_privilege(example):
    (role,) = [r for r in example.of_type("aws:iam/role:Role") if r.name == "vault-replication-role"]
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "s3.amazonaws.com"}], role.urn
    policy = example.named("vault-replication-policy")
    doc = json.loads(policy.inputs["policy"])
    resources = [s["Resource"] for s in doc["Statement"]]
    assert "*" not in resources, policy.urn
    kms = [s for s in doc["Statement"] if s["Sid"] in ("DecryptSource", "EncryptReplicas")]
    assert [s["Resource"] for s in kms] == [example.document["keys"]["primary"]["arn"], example.document["keys"]["dr"]["arn"]]
    assert all("kms:ViaService" in s["Condition"]["StringEquals"] for s in kms), policy.urn


def test_with_active_primary_only_the_primary_bucket_replicates(example):
    assert [r.inputs["bucket"] for r in example.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")] == [
        "pilotlight-dr-vault-us-east-1-123456789012"]
    assert not [r for r in example.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == "vault-replication-back-policy"]


def test_with_active_dr_the_dr_vault_replicates_back_to_primary_with_the_primary_key(failed_over):
    configs = {r.inputs["bucket"]: r for r in failed_over.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")}
    assert set(configs) == {"pilotlight-dr-vault-us-east-1-123456789012", "pilotlight-dr-vault-us-west-2-123456789012"}
    back = configs["pilotlight-dr-vault-us-west-2-123456789012"]
    assert back.region == "us-west-2", back.urn  # the DR bucket's own region (the DR provider)
    assert back.inputs["role"] == "arn:aws:iam::123456789012:role/pilotlight-dr-vault-replication", back.urn
    (rule,) = back.inputs["rules"]
    assert rule["id"] == "vault-to-primary" and rule["deleteMarkerReplication"] == {"status": "Disabled"}, back.urn
    dest = rule["destination"]
    assert dest["bucket"] == "arn:aws:s3:::pilotlight-dr-vault-us-east-1-123456789012", back.urn
    assert dest["encryptionConfiguration"] == {"replicaKmsKeyId": failed_over.document["keys"]["primary"]["arn"]}
    policy = failed_over.named("vault-replication-back-policy")
    assert {policy.urn, *{v.urn for v in per_region(failed_over, "BucketVersioning").values()}} <= set(back.dependencies)
    st = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert st["ReadSourceVersions"]["Resource"] == "arn:aws:s3:::pilotlight-dr-vault-us-west-2-123456789012/*"
    assert st["WriteReplicas"]["Resource"] == "arn:aws:s3:::pilotlight-dr-vault-us-east-1-123456789012/*"
    assert st["DecryptSource"]["Resource"] == failed_over.document["keys"]["dr"]["arn"]
    assert st["DecryptSource"]["Condition"]["StringEquals"] == {"kms:ViaService": "s3.us-west-2.amazonaws.com"}
    assert st["EncryptReplicas"]["Resource"] == failed_over.document["keys"]["primary"]["arn"]
