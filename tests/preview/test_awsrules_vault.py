"""AWS's own rules for the vault, its keys, roles and audit: each raises on the combination AWS refuses."""
from __future__ import annotations

import json
import pytest

from scripts.preview import awsrules
from scripts.preview.awsrules import AwsRuleError, Resource
from scripts.preview.runtime import run_stack as run_program
from tests.program.stack_values import config, example_values

pytestmark = pytest.mark.filterwarnings("ignore:.*has been deprecated in favor of:DeprecationWarning")


def res(type_, inputs, name="r", **kw):
    return Resource(type=type_, name=name, urn=kw.pop("urn", f"urn:{name}"), inputs=inputs, **kw)


def raises(rule_id, resource):
    with pytest.raises(AwsRuleError) as err:
        awsrules.check_resource(resource)
    assert err.value.rule.id == rule_id, err.value
    assert err.value.rule.cite


def stack_raises(rule_id, resources):
    with pytest.raises(AwsRuleError) as err:
        awsrules.check_stack(resources)
    assert err.value.rule.id == rule_id, err.value


LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"


def test_expired_object_delete_marker_next_to_days_is_malformed():
    raises("s3-lifecycle-expiration-exclusive", res(LIFECYCLE, {"bucket": "b", "rules": [
        {"id": "x", "status": "Enabled", "expiration": {"days": 7, "expiredObjectDeleteMarker": True}}]}))
    awsrules.check_resource(res(LIFECYCLE, {"bucket": "b", "rules": [
        {"id": "x", "status": "Enabled", "expiration": {"expiredObjectDeleteMarker": True}}]}))


@pytest.mark.parametrize("transitions, expire", [
    ([{"days": 10, "storageClass": "STANDARD_IA"}], 365),
    ([{"days": 30, "storageClass": "STANDARD_IA"}, {"days": 40, "storageClass": "GLACIER_IR"}], 365),
    ([{"days": 30, "storageClass": "STANDARD_IA"}], 30),
])
def test_lifecycle_transitions_s3_refuses(transitions, expire):
    raises("s3-lifecycle-transition-days", res(LIFECYCLE, {"bucket": "b", "rules": [
        {"id": "t", "status": "Enabled", "expiration": {"days": expire}, "transitions": transitions}]}))


@pytest.mark.parametrize("name", ["UPPER-case", "xn--abc", "a..b", "ab", "name-s3alias", "192.168.1.1"])
def test_invalid_bucket_names(name):
    raises("s3-bucket-name", res("aws:s3/bucket:Bucket", {"bucket": name}))


def test_object_lock_configuration_needs_a_bucket_created_with_object_lock():
    stack_raises("s3-object-lock-needs-lock-enabled-bucket", [
        res("aws:s3/bucket:Bucket", {"bucket": "b"}, name="b"),
        res("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", {"bucket": "b"}, name="l")])


def test_two_buckets_of_one_name():
    stack_raises("s3-bucket-name-taken", [res("aws:s3/bucket:Bucket", {"bucket": "b"}, name="x"),
                                          res("aws:s3/bucket:Bucket", {"bucket": "b"}, name="y")])


def test_kms_lockout_safety_check():
    key = "aws:kms/key:Key"
    no_put = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"},
                             "Action": ["kms:Describe*"], "Resource": "*"}]}
    raises("kms-policy-lockout-safety-check", res(key, {"policy": json.dumps(no_put)}))
    deny_put = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "kms:*",
                               "Resource": "*"},
                              {"Sid": "NoPolicyChanges", "Effect": "Deny", "Principal": {"AWS": "*"},
                               "Action": "kms:PutKeyPolicy", "Resource": "*"}]}
    raises("kms-policy-lockout-safety-check", res(key, {"policy": json.dumps(deny_put)}))
    awsrules.check_resource(res(key, {"policy": json.dumps(deny_put), "bypassPolicyLockoutSafetyCheck": True}))


def test_kms_deletion_window_and_iam_session_limits():
    raises("kms-deletion-window", res("aws:kms/key:Key", {"deletionWindowInDays": 45}))
    raises("iam-role-max-session", res("aws:iam/role:Role", {"name": "r", "maxSessionDuration": 86400}))
    raises("iam-role-name", res("aws:iam/role:Role", {"name": "x" * 65}))


def test_cloudtrail_needs_its_bucket_policy():
    stack_raises("cloudtrail-bucket-policy", [
        res("aws:cloudtrail/trail:Trail", {"s3BucketName": "logs"}, name="t"),
        res("aws:s3/bucketPolicy:BucketPolicy", {"bucket": "logs", "policy": json.dumps({"Statement": []})}, name="p")])


def test_eventbridge_rules_on_cloudtrail_calls_need_a_trail_and_data_selectors():
    pattern = {"source": ["aws.s3"], "detail-type": ["AWS API Call via CloudTrail"],
               "detail": {"eventName": ["DeleteObject"], "requestParameters": {"bucketName": ["vault"]}}}
    rule = res("aws:cloudwatch/eventRule:EventRule", {"eventPattern": json.dumps(pattern)}, name="e")
    stack_raises("eventbridge-needs-a-trail", [rule])
    management_only = res("aws:cloudtrail/trail:Trail", {"s3BucketName": "logs", "eventSelectors": [
        {"readWriteType": "WriteOnly", "includeManagementEvents": True}]}, name="t")
    logs = res("aws:s3/bucketPolicy:BucketPolicy", {"bucket": "logs", "policy": json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": ["s3:GetBucketAcl", "s3:PutObject"], "Resource": "*"}]})}, name="p")
    with pytest.raises(AwsRuleError, match="data events no trail selects"):
        awsrules.check_stack([rule, management_only, logs])


def test_encrypted_topic_must_admit_eventbridge_in_key_and_topic_policy():
    key = res("aws:kms/key:Key", {"policy": json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "kms:*", "Resource": "*"}]})},
        name="k", urn="urn:k")
    topic = res("aws:sns/topic:Topic", {"name": "t"}, name="t", urn="urn:t", dependencies=("urn:k",))
    target = res("aws:cloudwatch/eventTarget:EventTarget", {"rule": "r"}, name="g", dependencies=("urn:t",))
    with pytest.raises(AwsRuleError, match="events.amazonaws.com cannot use the topic's KMS key"):
        awsrules.check_stack([key, topic, target])


def _views(run):
    return [Resource(type=r.type, name=r.name, urn=r.urn, inputs=r.inputs, region=r.region, parent=r.parent,
                     protect=r.protect, retain_on_delete=r.retain_on_delete, ignore_changes=tuple(r.ignore_changes),
                     dependencies=tuple(r.dependencies))
            for r in run.resources.values() if r.type.startswith("aws:")]


def test_existing_stack_renaming_its_locked_buckets_is_refused_unless_it_keeps_the_old_names():
    """Item 6: an existing stack (old, suffix-less names) updated to the account-suffixed names."""
    legacy = example_values()
    legacy["vault"]["bucketSuffix"] = "none"
    before = _views(run_program(config(legacy)))
    problems = awsrules.transition_problems(before, _views(run_program(config())))
    assert [p for p in problems if "s3-protected-bucket-rename" in p and "vault-primary" in p], problems
    assert not [p for p in awsrules.transition_problems(before, _views(run_program(config(legacy))))
                if "s3-protected-bucket-rename" in p]


def test_bucket_names_of_two_accounts_differ():
    """Item 6: the old names were project+stack+region, the same in every account."""
    from stacks import naming

    other = example_values()
    for db in other["databases"]:
        db["primaryArn"] = db["primaryArn"].replace("123456789012", "210987654321")
    assert naming.vault_bucket_name(config(), "primary") != naming.vault_bucket_name(config(other), "primary")
    assert naming.vault_bucket_name(config(other), "dr").endswith("-210987654321")


def _replication_stack(*, dest_versioned=True, dest_locked=True, role_actions=None):
    src, dst = "arn:aws:s3:::src", "arn:aws:s3:::dst"
    actions = role_actions or ["s3:GetObjectVersionForReplication", "s3:GetObjectRetention", "s3:GetObjectLegalHold"]
    policy = {"Statement": [{"Effect": "Allow", "Action": actions, "Resource": f"{src}/*"},
                            {"Effect": "Allow", "Action": ["s3:ReplicateObject"], "Resource": f"{dst}/*"}]}
    versioning = [res("aws:s3/bucketVersioning:BucketVersioning", {"bucket": b, "versioningConfiguration": {
        "status": "Enabled"}}, name=f"v-{b}") for b in (["src", "dst"] if dest_versioned else ["src"])]
    return [
        res("aws:s3/bucket:Bucket", {"bucket": "src", "objectLockEnabled": True}, name="src"),
        res("aws:s3/bucket:Bucket", {"bucket": "dst", "objectLockEnabled": dest_locked}, name="dst"),
        *versioning,
        res("aws:iam/role:Role", {"name": "repl"}, name="role", urn="urn:role"),
        res("aws:iam/rolePolicy:RolePolicy", {"role": "role-id-under-mocks", "policy": json.dumps(policy)},
            name="pol", dependencies=("urn:role",)),
        res("aws:s3/bucketReplicationConfig:BucketReplicationConfig", {"bucket": "src", "role": "arn:aws:iam::1:role/repl",
            "rules": [{"id": "r", "destination": {"bucket": dst, "encryptionConfiguration": {"replicaKmsKeyId": "k"}},
                       "sourceSelectionCriteria": {"sseKmsEncryptedObjects": {"status": "Enabled"}}}]}, name="rep"),
    ]


def test_replication_needs_versioning_a_locked_destination_and_the_roles_permissions():
    awsrules.check_stack(_replication_stack())
    with pytest.raises(AwsRuleError, match="DstBucketUnversioned") as err:
        awsrules.check_stack(_replication_stack(dest_versioned=False))
    assert err.value.rule.id == "s3-replication-prerequisites" and "replication-requirements" in err.value.rule.cite
    with pytest.raises(AwsRuleError, match="DstBucketObjectLockConfigMissing"):
        awsrules.check_stack(_replication_stack(dest_locked=False))
    with pytest.raises(AwsRuleError, match="lacks s3:GetObjectRetention"):
        awsrules.check_stack(_replication_stack(role_actions=["s3:GetObjectVersionForReplication"]))
