"""Vault audit: deletes and lifecycle/lock/policy changes of the vault, and destructive key calls, raise an alarm."""
import json

PRIMARY, DR = "us-east-1", "us-west-2"


def test_trail_is_multi_region_logging_and_selects_the_vault_buckets_data_events(example):
    (trail,) = example.of_type("aws:cloudtrail/trail:Trail")
    assert trail.region == PRIMARY and trail.inputs["isMultiRegionTrail"] is True, trail.urn
    assert trail.inputs["enableLogging"] is True and trail.inputs["enableLogFileValidation"] is True, trail.urn
    (selector,) = trail.inputs["eventSelectors"]
    assert selector["includeManagementEvents"] is True and selector["readWriteType"] == "WriteOnly", trail.urn
    (data,) = selector["dataResources"]
    assert data["type"] == "AWS::S3::Object", trail.urn
    assert sorted(data["values"]) == sorted(f"arn:aws:s3:::{n}/" for n in (
        "pilotlight-dr-vault-us-east-1-123456789012", "pilotlight-dr-vault-us-west-2-123456789012")), trail.urn
    logs = example.named("audit-logs")
    assert trail.inputs["s3BucketName"] == logs.inputs["bucket"] and logs.protect, logs.urn


def test_each_region_alarms_on_its_own_bucket_and_key_into_its_own_topic(example):
    topics = {t.region: t for t in example.of_type("aws:sns/topic:Topic")}
    targets = {t.name: t for t in example.of_type("aws:cloudwatch/eventTarget:EventTarget")}
    keys = {PRIMARY: example.document["keys"]["primary"]["arn"], DR: example.document["keys"]["dr"]["arn"]}
    for rule in example.of_type("aws:cloudwatch/eventRule:EventRule"):
        pattern = json.loads(rule.inputs["eventPattern"])
        assert pattern["detail-type"] == ["AWS API Call via CloudTrail"], rule.urn
        names = set(pattern["detail"]["eventName"])
        if pattern["source"] == ["aws.s3"]:
            assert {"DeleteObject", "DeleteObjects", "PutBucketLifecycle", "PutObjectLockConfiguration",
                    "PutBucketPolicy", "DeleteBucketPolicy", "PutBucketReplication"} <= names, rule.urn
            (bucket,) = pattern["detail"]["requestParameters"]["bucketName"]
            assert f"-{rule.region}-" in bucket, rule.urn  # CloudTrail delivers a call in its own region
        else:
            assert pattern["source"] == ["aws.kms"], rule.urn
            assert {"ScheduleKeyDeletion", "DisableKey", "PutKeyPolicy"} <= names, rule.urn
            assert pattern["detail"]["resources"]["ARN"] == [keys[rule.region]], rule.urn
        target = targets[f"{rule.name}-notify"]
        assert target.region == rule.region and target.inputs["arn"].startswith(
            f"arn:aws:sns:{rule.region}:123456789012:"), target.urn
        assert topics[rule.region].inputs["name"] in target.inputs["arn"], target.urn
    assert len(example.of_type("aws:cloudwatch/eventRule:EventRule")) == 4
