"""The sandbox applies the very documents the program declares (no second copy of any rule)."""
from __future__ import annotations

import json
import pytest

from components import rules
from scripts.sandbox import emulator
from scripts.preview.runtime import run_stack as run_program
from tests.program.stack_values import config

pytestmark = pytest.mark.filterwarnings("ignore:.*has been deprecated in favor of:DeprecationWarning")
CALL_TO_TYPE = {
    "put_bucket_versioning": ("BucketVersioning", "versioningConfiguration", "VersioningConfiguration"),
    "put_bucket_encryption": ("BucketServerSideEncryptionConfiguration", "rules", "ServerSideEncryptionConfiguration"),
    "put_bucket_ownership_controls": ("BucketOwnershipControls", "rule", "OwnershipControls"),
    "put_bucket_lifecycle_configuration": ("BucketLifecycleConfiguration", "rules", "LifecycleConfiguration"),
}


def camel(value):
    """pulumi-aws snake_case args as the mock monitor records them (camelCase)."""
    if isinstance(value, dict):
        return {k.split("_")[0] + "".join(p.title() for p in k.split("_")[1:]): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


@pytest.fixture(scope="module")
def program():
    return run_program(config())


@pytest.mark.parametrize("side", ["primary", "dr"])
def test_emulator_bucket_documents_equal_the_programs(program, side):
    cfg = config()
    key_arn = program.document["keys"][side]["arn"]
    calls = dict(emulator.bucket_calls(cfg, side, key_arn))
    region = cfg.region(side)
    declared = {r.type.rsplit(":", 1)[-1]: r for r in program.resources.values()
                if r.region == region and "BackupVault" in r.urn and r.type.startswith("aws:s3/")}
    assert {c["Bucket"] for c in calls.values()} == {declared["Bucket"].inputs["bucket"]}
    for call, (typ, field, arg) in CALL_TO_TYPE.items():
        applied = calls[call][arg]
        shape = applied.get("Rules", applied) if field in ("rules", "rule") else applied
        if field == "rule":
            shape = shape[0]
        assert camel(rules.as_pulumi_args(shape)) == declared[typ].inputs[field], (call, declared[typ].urn)
    lock = calls["put_object_lock_configuration"]["ObjectLockConfiguration"]
    assert camel(rules.as_pulumi_args(lock))["rule"] == declared["BucketObjectLockConfiguration"].inputs["rule"]
    block = calls["put_public_access_block"]["PublicAccessBlockConfiguration"]
    assert all(declared["BucketPublicAccessBlock"].inputs[k] is v for k, v in camel(rules.as_pulumi_args(block)).items())


@pytest.mark.parametrize("side", ["primary", "dr"])
def test_emulator_alarm_key_policy_equals_the_programs(program, side):
    cfg = config()
    (key,) = [k for k in program.of_type("aws:kms/key:Key") if "Alarms" in k.urn and k.region == cfg.region(side)]
    assert emulator.topic_documents(cfg, side)["key_policy"] == json.loads(key.inputs["policy"]), key.urn
