"""Keys: a multi-region key in the primary region, its replica in DR, rotation, aliases, scoped policy."""
import json

KEY_TYPES = ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey")
VAULT_KEYS = "pilotlight:dr:VaultKeys"


def test_multi_region_key_with_rotation_in_primary_region(example):
    (key,) = example.of_type("aws:kms/key:Key", under=VAULT_KEYS)
    assert key.region == "us-east-1", key.urn
    assert key.inputs["multiRegion"] is True, key.urn
    assert key.inputs["enableKeyRotation"] is True, key.urn
    assert key.inputs["deletionWindowInDays"] == 30, key.urn


def test_replica_key_in_dr_region_replicates_the_primary(example):
    (replica,) = example.of_type("aws:kms/replicaKey:ReplicaKey", under=VAULT_KEYS)
    assert replica.region == "us-west-2", replica.urn
    assert replica.inputs["primaryKeyArn"].startswith("arn:aws:kms:us-east-1:"), replica.urn
    assert example.document["keys"]["dr"]["arn"].startswith("arn:aws:kms:us-west-2:")


def test_alias_in_both_regions(example):
    aliases = {a.region: a.inputs["name"] for a in example.of_type("aws:kms/alias:Alias")}
    assert aliases == {"us-east-1": "alias/pilotlight-dr-vault", "us-west-2": "alias/pilotlight-dr-vault"}


def test_key_policies_grant_each_user_only_through_its_service_in_that_region(example):
    for res in example.resources.values():
        if res.type not in KEY_TYPES or f"{VAULT_KEYS}::" not in res.parent:
            continue
        policy = json.loads(res.inputs["policy"])
        st = {s["Sid"]: s for s in policy["Statement"]}
        region = res.region
        assert st["VaultUseThroughS3"]["Condition"]["StringEquals"]["kms:ViaService"] == f"s3.{region}.amazonaws.com", res.urn
        assert st["StandbyUseThroughRds"]["Condition"]["StringEquals"]["kms:ViaService"] == f"rds.{region}.amazonaws.com", res.urn
        assert st["ReplicationRoleThroughS3"]["Condition"]["ArnEquals"] == {
            "aws:PrincipalArn": "arn:aws:iam::123456789012:role/pilotlight-dr-vault-replication"
        }, res.urn
        wildcard = [sid for sid, s in st.items() if s["Action"] == "kms:*"]
        assert wildcard == ["AccountAdministers"], res.urn


def test_replication_role_named_in_key_policy_is_the_one_created(example):
    (role,) = [r for r in example.of_type("aws:iam/role:Role") if r.name == "vault-replication-role"]
    assert role.inputs["name"] == "pilotlight-dr-vault-replication", role.urn


def test_nothing_uses_an_aws_managed_key(example):
    """Every encryption setting names our key, in the resource's own region."""
    keyed = {
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration":
            lambda i: i["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"],
        "aws:rds/instance:Instance": lambda i: i["kmsKeyId"],
        "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication": lambda i: i["kmsKeyId"],
        "aws:sns/topic:Topic": lambda i: i["kmsMasterKeyId"],
    }
    seen = 0
    for res in example.resources.values():
        if res.type in keyed:
            arn = keyed[res.type](res.inputs)
            assert arn.startswith(f"arn:aws:kms:{res.region}:123456789012:key/mrk-"), res.urn
            assert "alias/aws/" not in arn, res.urn
            seen += 1
    assert seen == 2 + 1 + 1 + 2
    (enc,) = [r for r in example.of_type(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration") if r.region == "us-east-1"]
    assert enc.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert enc.inputs["rules"][0]["bucketKeyEnabled"] is True
