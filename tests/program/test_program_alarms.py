"""Alarms: KMS-encrypted topics, replica lag above the RPO, replication health, backup age per tier."""
import json
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def alarms(run):
    return {a.inputs["name"]: a for a in run.of_type(ALARM)}


def test_topics_are_kms_encrypted_one_per_region(example):
    topics = {t.region: t for t in example.of_type("aws:sns/topic:Topic")}
    keys = {k.region: k for k in example.of_type("aws:kms/key:Key") if "Alarms" in k.urn}
    for region in ("us-east-1", "us-west-2"):
        assert topics[region].inputs["kmsMasterKeyId"] == f"arn:aws:kms:{region}:123456789012:key/{keys[region].id}"
    policies = {p.region: json.loads(p.inputs["policy"]) for p in example.of_type("aws:sns/topicPolicy:TopicPolicy")}
    for region, doc in policies.items():
        (events,) = [s for s in doc["Statement"] if s["Sid"] == "AlarmServicesPublish"]
        assert "events.amazonaws.com" in events["Principal"]["Service"], region
    assert example.document["alarms"]["topicArn"] == "arn:aws:sns:us-east-1:123456789012:pilotlight-dr-alarms"


def test_replica_lag_alarm_at_the_rpo_in_the_dr_region(example):
    lag = alarms(example)["pilotlight-dr-orders-replica-lag"]
    assert lag.region == "us-west-2", lag.urn
    assert (lag.inputs["namespace"], lag.inputs["metricName"]) == ("AWS/RDS", "ReplicaLag"), lag.urn
    assert lag.inputs["dimensions"] == {"DBInstanceIdentifier": "pilotlight-dr-orders-standby"}, lag.urn
    assert lag.inputs["threshold"] == 60 and lag.inputs["comparisonOperator"] == "GreaterThanThreshold", lag.urn
    assert lag.inputs["treatMissingData"] == "breaching", lag.urn
    assert lag.inputs["alarmActions"] == ["arn:aws:sns:us-west-2:123456789012:pilotlight-dr-alarms-dr"], lag.urn


def test_s3_replication_alarms_in_the_source_region(example):
    found = alarms(example)
    latency = found["pilotlight-dr-vault-replication-latency"]
    failed = found["pilotlight-dr-vault-replication-failed"]
    dims = {"SourceBucket": "pilotlight-dr-vault-us-east-1-123456789012", "DestinationBucket": "pilotlight-dr-vault-us-west-2-123456789012", "RuleId": "vault-to-dr"}
    for alarm in (latency, failed):
        assert alarm.region == "us-east-1" and alarm.inputs["namespace"] == "AWS/S3", alarm.urn
        assert alarm.inputs["dimensions"] == dims, alarm.urn
    assert (latency.inputs["metricName"], latency.inputs["threshold"]) == ("ReplicationLatency", 900)
    assert (failed.inputs["metricName"], failed.inputs["threshold"]) == ("OperationsFailedReplication", 0)


def test_backup_age_alarm_per_tier_at_interval_plus_slack(example):
    found = alarms(example)
    expected = {"hourly": 3 * 3600, "daily": 26 * 3600, "weekly": 7 * 86400 + 7200, "monthly": 30 * 86400 + 7200}
    for tier, threshold in expected.items():
        alarm = found[f"pilotlight-dr-orders-backup-age-{tier}"]
        assert alarm.region == "us-east-1", alarm.urn
        assert (alarm.inputs["namespace"], alarm.inputs["metricName"]) == ("Pilotlight", "NewestBackupAgeSeconds")
        assert alarm.inputs["dimensions"] == {"Database": "orders", "Tier": tier}, alarm.urn
        assert alarm.inputs["threshold"] == threshold, alarm.urn
        assert alarm.inputs["treatMissingData"] == "breaching", alarm.urn
        assert (alarm.inputs["period"], alarm.inputs["evaluationPeriods"], alarm.inputs["datapointsToAlarm"]) == (3600, 2, 2)
    doc = example.document["alarms"]
    assert (doc["metricNamespace"], doc["backupAgeMetric"]) == ("Pilotlight", "NewestBackupAgeSeconds")


def test_alarms_follow_the_failover(failed_over):
    found = alarms(failed_over)
    assert "pilotlight-dr-orders-replica-lag" not in found  # the standby is no longer a replica
    for tier in ("hourly", "daily", "weekly", "monthly"):
        alarm = found[f"pilotlight-dr-orders-backup-age-{tier}"]
        assert alarm.region == "us-west-2", alarm.urn
        assert alarm.inputs["alarmActions"] == ["arn:aws:sns:us-west-2:123456789012:pilotlight-dr-alarms-dr"], alarm.urn
    assert failed_over.document["alarms"]["topicArn"] == "arn:aws:sns:us-west-2:123456789012:pilotlight-dr-alarms-dr"
