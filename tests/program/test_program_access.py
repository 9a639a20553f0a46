"""Tool roles: a backup writer that cannot delete, a read-only restore reader, both named by the key policy."""
import json
from types import SimpleNamespace

import pulumi
import pytest
from scripts.preview.runtime import run_stack
from stack_values import config

from scripts.contract import parse
from stacks.dr import build

ACCOUNT_ROOT = "arn:aws:iam::123456789012:root"
WRITER_ARN = "arn:aws:iam::123456789012:role/pilotlight-dr-backup-writer"
READER_ARN = "arn:aws:iam::123456789012:role/pilotlight-dr-restore-reader"
PRIMARY_BUCKET = "arn:aws:s3:::pilotlight-dr-vault-us-east-1-123456789012"
DR_BUCKET = "arn:aws:s3:::pilotlight-dr-vault-us-west-2-123456789012"
KEYS = ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey")


def actions(statement):
    a = statement["Action"]
    return [a] if isinstance(a, str) else list(a)


def resources(statement):
    r = statement["Resource"]
    return [r] if isinstance(r, str) else list(r)


def policy(run, name):
    res = run.named(name)
    return res, json.loads(res.inputs["policy"])


@pytest.mark.parametrize(
    "name, physical",
    [("access-backup-writer", "pilotlight-dr-backup-writer"), ("access-restore-reader", "pilotlight-dr-restore-reader")],
)
def test_tool_roles_trust_only_the_account_and_live_under_the_component(example, name, physical):
    role = example.named(name)
    assert role.type == "aws:iam/role:Role" and role.inputs["name"] == physical, role.urn
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    # The account, and the scheduled job tasks of this account (the roles are their task roles).
    assert trust == [
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT_ROOT}, "Action": "sts:AssumeRole"},
        {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}},
    ], role.urn
    assert role.inputs["maxSessionDuration"] == 12 * 3600, role.urn
    assert role.parent.endswith("pilotlight:dr:VaultAccess::access"), role.urn
    assert role.region == "us-east-1", role.urn
    attached = example.named(f"{name}-policy")
    assert attached.inputs["role"] == role.id and attached.parent == role.parent, attached.urn


def test_backup_writer_puts_to_the_primary_vault_only_and_never_deletes(example):
    res, doc = policy(example, "access-backup-writer-policy")
    s3 = [s for s in doc["Statement"] if actions(s)[0].startswith("s3:")]
    assert {r for s in s3 for r in resources(s)} == {PRIMARY_BUCKET, f"{PRIMARY_BUCKET}/*"}, res.urn
    granted = {a for s in doc["Statement"] for a in actions(s)}
    assert {"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListBucketMultipartUploads"} <= granted, res.urn
    assert not [a for a in granted if "Delete" in a or "Retention" in a or "Policy" in a or a.endswith("*")], res.urn
    assert all(s["Effect"] == "Allow" for s in doc["Statement"]), res.urn


def test_backup_writer_kms_matches_the_envelope_and_the_metric_namespace(example):
    res, doc = policy(example, "access-backup-writer-policy")
    keys = example.document["keys"]
    st = {s["Sid"]: s for s in doc["Statement"]}
    assert (st["NewDataKey"]["Action"], st["NewDataKey"]["Resource"]) == ("kms:GenerateDataKey", keys["primary"]["arn"])
    assert (st["WrapDataKeyForDr"]["Action"], st["WrapDataKeyForDr"]["Resource"]) == ("kms:Encrypt", keys["dr"]["arn"])
    for sid in ("NewDataKey", "WrapDataKeyForDr"):
        assert "kms:EncryptionContext:pilotlight:backup-id" in st[sid]["Condition"]["Null"], (res.urn, sid)
    sse = st["VaultEncryptionThroughS3"]
    assert sse["Resource"] == keys["primary"]["arn"], res.urn
    assert sse["Condition"]["StringEquals"] == {"kms:ViaService": "s3.us-east-1.amazonaws.com"}, res.urn
    namespace = example.document["alarms"]["metricNamespace"]
    assert st["PublishBackupAge"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": namespace}}, res.urn


def test_restore_reader_reads_both_vaults_with_both_keys_and_writes_only_evidence(example):
    res, doc = policy(example, "access-restore-reader-policy")
    reads = [s for s in doc["Statement"] if s["Sid"] != "WriteRestoreTestEvidence"]
    granted = {a for s in reads for a in actions(s)}
    assert all(a.startswith(("s3:Get", "s3:List", "kms:Decrypt", "kms:GenerateDataKey")) for a in granted), granted
    s3 = {r for s in reads if actions(s)[0].startswith("s3:") for r in resources(s)}
    assert s3 == {PRIMARY_BUCKET, f"{PRIMARY_BUCKET}/*", DR_BUCKET, f"{DR_BUCKET}/*"}, res.urn
    (write,) = [s for s in doc["Statement"] if s["Sid"] == "WriteRestoreTestEvidence"]
    assert set(resources(write)) == {f"{PRIMARY_BUCKET}/evidence/*", f"{DR_BUCKET}/evidence/*"}, res.urn
    assert actions(write) == ["s3:PutObject"], res.urn
    keys = {side: k["arn"] for side, k in example.document["keys"].items()}
    kms = [s for s in reads if actions(s)[0] == "kms:Decrypt"]
    assert {r for s in kms for r in resources(s)} == set(keys.values()), res.urn
    assert all(s.get("Condition") for s in kms), res.urn
    direct = [s for s in kms if "StringEquals" not in s["Condition"]]
    assert [actions(s) for s in direct] == [["kms:Decrypt"]], res.urn  # data keys: unwrap only
    through_s3 = {s["Resource"]: s["Condition"]["StringEquals"]["kms:ViaService"] for s in kms
                  if "StringEquals" in s["Condition"]}
    assert through_s3 == {keys["primary"]: "s3.us-east-1.amazonaws.com", keys["dr"]: "s3.us-west-2.amazonaws.com"}


def test_key_policies_in_both_regions_name_the_roles_that_were_created(example):
    created = {example.named(n).inputs["name"] for n in ("access-backup-writer", "access-restore-reader")}
    assert {arn.rsplit("/", 1)[1] for arn in (WRITER_ARN, READER_ARN)} == created
    for res in example.resources.values():
        if res.type not in KEYS or "VaultKeys" not in res.urn:
            continue
        st = {s["Sid"]: s for s in json.loads(res.inputs["policy"])["Statement"]}
        writer, reader = st["BackupWriterEnvelopeKeys"], st["RestoreReaderEnvelopeKeys"]
        assert writer["Condition"]["ArnEquals"] == {"aws:PrincipalArn": WRITER_ARN}, res.urn
        assert set(writer["Action"]) == {"kms:GenerateDataKey", "kms:Encrypt"}, res.urn
        assert reader["Condition"]["ArnEquals"] == {"aws:PrincipalArn": READER_ARN}, res.urn
        assert reader["Action"] == ["kms:Decrypt"], res.urn
        for s in (writer, reader):
            assert s["Condition"]["ForAllValues:StringEquals"] == {
                "kms:EncryptionContextKeys": ["pilotlight:backup-id", "pilotlight:database"]}, res.urn


def test_access_roles_are_exported_beside_the_contract_not_inside_it(monkeypatch):
    exports = {}
    monkeypatch.setattr(pulumi, "export", lambda key, value: exports.__setitem__(key, value))
    cfg = config()

    def program():
        stack = build(cfg)
        return SimpleNamespace(document=dict(exports), contract=stack.document)

    run = run_stack(cfg, program=program)
    assert run.document["accessRoles"] == {"backupWriter": WRITER_ARN, "restoreReader": READER_ARN}
    contract_keys = set(run.document) - {"accessRoles"}
    assert contract_keys == set(run.stack.contract)
    parse(run.document)  # the contract parser ignores the extra key
