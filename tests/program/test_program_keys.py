"""Keys: a multi-region key in the primary region, its replica in DR, rotation, aliases, scoped policy."""
import json

KEY_TYPES = ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey")


def vault_keys(run, typ="aws:kms/key:Key"):
    return [r for r in run.of_type(typ) if "VaultKeys" in r.urn]


def test_multi_region_key_with_rotation_in_primary_region(example):
    (key,) = vault_keys(example)
    assert key.region == "us-east-1", key.urn
    assert key.inputs["multiRegion"] is True, key.urn
    assert key.inputs["enableKeyRotation"] is True, key.urn
    assert key.inputs["deletionWindowInDays"] == 30, key.urn


def test_replica_key_in_dr_region_replicates_the_primary(example):
    (replica,) = example.of_type("aws:kms/replicaKey:ReplicaKey")
    assert replica.region == "us-west-2", replica.urn
    assert replica.inputs["primaryKeyArn"].startswith("arn:aws:kms:us-east-1:"), replica.urn
    assert example.document["keys"]["dr"]["arn"].startswith("arn:aws:kms:us-west-2:")


def test_alias_in_both_regions(example):
    aliases = {a.region: a.inputs["name"] for a in vault_keys(example, "aws:kms/alias:Alias")}
    assert aliases == {"us-east-1": "alias/pilotlight-dr-vault", "us-west-2": "alias/pilotlight-dr-vault"}


def test_key_policies_grant_each_user_only_through_its_service_in_that_region(example):
    for res in example.resources.values():
        if res.type not in KEY_TYPES or "VaultKeys" not in res.urn:
            continue
        policy = json.loads(res.inputs["policy"])
        st = {s["Sid"]: s for s in policy["Statement"]}
        region = res.region
        assert st["VaultUseThroughS3"]["Condition"]["StringEquals"]["kms:ViaService"] == f"s3.{region}.amazonaws.com", res.urn
        assert st["StandbyUseThroughRds"]["Condition"]["StringEquals"]["kms:ViaService"] == f"rds.{region}.amazonaws.com", res.urn
        assert st["ReplicationRoleThroughS3"]["Condition"]["ArnEquals"] == {
            "aws:PrincipalArn": "arn:aws:iam::123456789012:role/pilotlight-dr-vault-replication"
        }, res.urn
        # No kms:* anywhere: the account administers, and each use statement is the only way to that use.
        assert not [sid for sid, s in st.items() if "kms:*" in s["Action"]], res.urn
        admin = st["AccountAdministers"]["Action"]
        assert not {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncrypt*"} & set(admin), res.urn
        deny = st["DenyDestructiveKeyActions"]
        assert deny["Effect"] == "Deny" and {"kms:ScheduleKeyDeletion", "kms:DisableKey"} <= set(deny["Action"]), res.urn
        assert deny["Condition"] == {"ArnNotEquals": {
            "aws:PrincipalArn": "arn:aws:iam::123456789012:role/pilotlight-dr-key-break-glass"}}, res.urn
        assert "AlarmNotifications" not in st, res.urn  # the alarm topics have a key of their own


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
    }
    seen = 0
    for res in example.resources.values():
        if res.type in keyed:
            arn = keyed[res.type](res.inputs)
            assert arn.startswith(f"arn:aws:kms:{res.region}:123456789012:key/"), res.urn
            assert "alias/aws/" not in arn, res.urn
            seen += 1
    assert seen == 2 + 1 + 1 + 1  # vault buckets, standby, its backups' replication, the audit log bucket
    (enc,) = [r for r in example.of_type(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
        if r.region == "us-east-1" and "BackupVault" in r.urn]
    assert enc.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert enc.inputs["rules"][0]["bucketKeyEnabled"] is True


def test_alarm_topics_use_their_own_key_in_their_region_not_the_vault_key(example):
    vault = {example.document["keys"][side]["arn"] for side in ("primary", "dr")}
    alarm_keys = {k.region: k for k in example.of_type("aws:kms/key:Key") if "Alarms" in k.urn}
    assert set(alarm_keys) == {"us-east-1", "us-west-2"}
    for topic in example.of_type("aws:sns/topic:Topic"):
        key = topic.inputs["kmsMasterKeyId"]
        assert key not in vault and key.startswith(f"arn:aws:kms:{topic.region}:123456789012:key/"), topic.urn
        policy = json.loads(alarm_keys[topic.region].inputs["policy"])
        publish = {s["Sid"]: s for s in policy["Statement"]}["AlarmServicesPublish"]
        assert set(publish["Principal"]["Service"]) == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}


def test_break_glass_role_requires_mfa_and_may_only_disable_delete_or_restore_the_keys(example):
    role = example.named("access-key-break-glass")
    assert role.inputs["name"] == "pilotlight-dr-key-break-glass", role.urn
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}, role.urn
    (grant,) = json.loads(example.named("access-key-break-glass-policy").inputs["policy"])["Statement"]
    assert set(grant["Action"]) == {"kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:DeleteImportedKeyMaterial",
                                    "kms:CancelKeyDeletion", "kms:EnableKey"}
    assert set(grant["Resource"]) == {example.document["keys"][s]["arn"] for s in ("primary", "dr")}
