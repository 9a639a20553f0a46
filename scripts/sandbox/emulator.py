"""Provision the AWS emulator (moto) from the same stack config and pure rules the Pulumi program uses.

Names come from :mod:`stacks.naming`; every bucket document (versioning, encryption, public
access block, ownership, Object Lock, lifecycle) is :func:`components.rules.bucket_documents`
of :func:`stacks.documents.vault_rules`, and the key, topic and replication documents are the
same ``components.rules`` functions the program declares, so the sandbox's vault, keys and
topics are the program's (tests/sandbox/test_emulator_parity.py compares them). The two RDS instances
(production and its cross-region replica) are described by :func:`rds_instances` for the
emulated RDS API (:mod:`scripts.sandbox.rds`), on the real local clusters. What the program
creates but the sandbox does not need (alarms) is left out. Order matters where AWS says so:
versioning (implied by Object Lock at creation) on both buckets before replication.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import boto3

from components import rules
from scripts.aws import botocore_config
from scripts.sandbox.state import EMULATOR_CREDENTIALS
from stacks import naming
from stacks.config import StackConfig
from stacks.documents import vault_rules
from stacks.vocabulary import SIDES
from stacks.outputs import restore_target

ENDPOINT_TTL = 60


def _clients(moto_url: str, region: str):
    session = boto3.session.Session()

    def make(service: str):
        return session.client(service, region_name=region, endpoint_url=moto_url, config=botocore_config(),
                              **EMULATOR_CREDENTIALS)
    return make


def endpoint_host(cfg: StackConfig, identifier: str, side: str) -> str:
    """A database endpoint's host name inside the sandbox zone (resolves to 127.0.0.1 there)."""
    return f"{identifier}.{cfg.region(side)}.{cfg.dns.zone_name}"


def provision(cfg: StackConfig, moto_url: str, ports: dict[str, int]) -> tuple[dict[str, Any], dict[str, Any], list]:
    """Create keys, vault buckets, topic, zone, records and health checks.

    Returns the ``outputs_document`` keyword arguments, the replication configuration applied
    (the replicator needs it: moto's GetBucketReplication drops some of it, see replicator.py)
    and the RDS instances to register with the emulated RDS API.
    """
    aws = {side: _clients(moto_url, cfg.region(side)) for side in SIDES}
    keys = _keys(cfg, aws)
    role_arn = _replication_role(cfg, aws["primary"]("iam"), keys)
    buckets = {side: _bucket(cfg, aws[side]("s3"), side, keys[side]["arn"]) for side in SIDES}
    # Replication needs versioning on both sides first (Object Lock at creation turned it on).
    replication = rules.replication_configuration(role_arn, buckets["dr"]["arn"], keys["dr"]["arn"])
    aws["primary"]("s3").put_bucket_replication(Bucket=buckets["primary"]["bucket"], ReplicationConfiguration=replication)
    topics = {side: _topic(cfg, aws[side], side) for side in SIDES}
    zone_id, databases = _dns(cfg, aws["primary"]("route53"), ports)
    _restore_targets(cfg, aws["dr"]("ec2"), databases, keys["dr"]["arn"])
    outputs = {"keys": keys, "buckets": buckets, "zone_id": zone_id, "databases": databases,
               "topic_arn": topics[cfg.active]}
    return outputs, replication, rds_instances(cfg, databases, keys, ports)


def _keys(cfg: StackConfig, aws) -> dict[str, dict[str, str]]:
    """A multi-region key in the primary region and its replica in the DR region, same alias in both."""
    alias = naming.key_alias(cfg)
    role = naming.role_arn(cfg, naming.replication_role_name(cfg))
    policy = {side: json.dumps(rules.key_policy(partition=cfg.partition, account_id=cfg.account_id,
                                                region=cfg.region(side), replication_role_arn=role,
                                                break_glass_arn=naming.break_glass_arn(cfg)))
              for side in SIDES}
    primary = aws["primary"]("kms").create_key(
        MultiRegion=True, Description=f"{naming.base(cfg)} backup vault", Policy=policy["primary"],
        KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT")["KeyMetadata"]
    replica = aws["primary"]("kms").replicate_key(
        KeyId=primary["KeyId"], ReplicaRegion=cfg.dr_region, Policy=policy["dr"],
        Description=f"{naming.base(cfg)} backup vault (replica)")["ReplicaKeyMetadata"]
    aws["primary"]("kms").create_alias(AliasName=alias, TargetKeyId=primary["KeyId"])
    try:
        aws["dr"]("kms").create_alias(AliasName=alias, TargetKeyId=replica["KeyId"])
    except aws["dr"]("kms").exceptions.AlreadyExistsException:
        pass  # moto shares a multi-region key's aliases with its replicas; on AWS each region needs its own
    return {"primary": {"arn": primary["Arn"], "alias": alias}, "dr": {"arn": replica["Arn"], "alias": alias}}


def _replication_role(cfg: StackConfig, iam, keys: dict[str, dict[str, str]]) -> str:
    name = naming.replication_role_name(cfg)
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(
        rules.replication_trust_policy(cfg.account_id)))["Role"]["Arn"]
    bucket_arn = {side: f"arn:{cfg.partition}:s3:::{naming.vault_bucket_name(cfg, side)}" for side in SIDES}
    iam.put_role_policy(RoleName=name, PolicyName="replication", PolicyDocument=json.dumps(
        rules.replication_role_policy(source_bucket_arn=bucket_arn["primary"], destination_bucket_arn=bucket_arn["dr"],
                                      source_key_arn=keys["primary"]["arn"], replica_key_arn=keys["dr"]["arn"],
                                      source_region=cfg.primary_region, destination_region=cfg.dr_region)))
    return arn


def topic_documents(cfg: StackConfig, side: str) -> dict[str, Any]:
    """The alarm topic's key policy (its own key, as components/alarms.py declares it)."""
    return {"key_policy": rules.alarm_key_policy(partition=cfg.partition, account_id=cfg.account_id,
                                                 region=cfg.region(side), break_glass_arn=naming.break_glass_arn(cfg),
                                                 trail_arn=trail_arn(cfg) if side == "primary" else None)}


def trail_arn(cfg: StackConfig) -> str:
    """The program's audit trail ARN (the sandbox has no CloudTrail, but the key admits the same trail)."""
    return rules.trail_arn_of(cfg.partition, cfg.primary_region, cfg.account_id, naming.trail_name(cfg))


def _topic(cfg: StackConfig, aws, side: str) -> str:
    """The alarm topic of one side, encrypted with its own alarm key (never the vault key)."""
    kms = aws("kms")
    key = kms.create_key(Description=f"{naming.base(cfg)} alarm topics",
                         Policy=json.dumps(topic_documents(cfg, side)["key_policy"]))["KeyMetadata"]
    kms.create_alias(AliasName=naming.alarm_key_alias(cfg), TargetKeyId=key["KeyId"])
    sns = aws("sns")
    arn = sns.create_topic(Name=naming.topic_name(cfg, side), Attributes={"KmsMasterKeyId": key["Arn"]})["TopicArn"]
    sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy",
                             AttributeValue=json.dumps(rules.topic_policy(arn, cfg.account_id)))
    return arn


def bucket_calls(cfg: StackConfig, side: str, key_arn: str) -> list[tuple[str, dict[str, Any]]]:
    """The boto3 calls that configure one vault bucket, from the program's own documents, in S3's order.

    No bucket policy in the emulator: moto enforces bucket-policy Deny statements but ignores their
    conditions (moto's docs: "Conditions are not taken into account"), so every conditional Deny of
    rules.bucket_policy would deny every request. The policy is unit-tested as a pure function instead.
    """
    name = naming.vault_bucket_name(cfg, side)
    docs = rules.bucket_documents(vault_rules(cfg), bucket_arn=f"arn:{cfg.partition}:s3:::{name}", key_arn=key_arn)
    return [
        ("put_bucket_versioning", {"Bucket": name, "VersioningConfiguration": docs["versioning"]}),
        ("put_bucket_encryption", {"Bucket": name, "ServerSideEncryptionConfiguration": docs["encryption"]}),
        ("put_public_access_block", {"Bucket": name, "PublicAccessBlockConfiguration": docs["public_access_block"]}),
        ("put_bucket_ownership_controls", {"Bucket": name, "OwnershipControls": docs["ownership"]}),
        ("put_object_lock_configuration", {"Bucket": name, "ObjectLockConfiguration": docs["object_lock"]}),
        ("put_bucket_lifecycle_configuration", {"Bucket": name, "LifecycleConfiguration": docs["lifecycle"]}),
    ]


def _bucket(cfg: StackConfig, s3, side: str, key_arn: str) -> dict[str, str]:
    """The vault bucket of one side: Object Lock (so versioning) at creation, then the program's documents."""
    name = naming.vault_bucket_name(cfg, side)
    arn = f"arn:{cfg.partition}:s3:::{name}"
    create: dict[str, Any] = {"Bucket": name, "ObjectLockEnabledForBucket": True}
    if cfg.region(side) != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": cfg.region(side)}
    s3.create_bucket(**create)
    for method, kwargs in bucket_calls(cfg, side, key_arn):
        getattr(s3, method)(**kwargs)
    return {"bucket": name, "arn": arn}


def automated_backups_arn(cfg: StackConfig, primary_arn: str) -> str:
    """The ARN of the primary's automated backups replicated to the DR region (``ab-`` + a stable id)."""
    digest = hashlib.sha256(primary_arn.encode()).hexdigest()[:26]
    return f"arn:{cfg.partition}:rds:{cfg.dr_region}:{cfg.account_id}:auto-backup:ab-{digest}"


def _restore_targets(cfg: StackConfig, ec2, databases: list[dict[str, Any]], dr_key_arn: str) -> None:
    """Where a DR-region point-in-time restore lands, named as the program names it; the security
    group is a real one in moto's default VPC (the emulated RDS records what it is given)."""
    group = ec2.create_security_group(GroupName=naming.security_group_name(cfg),
                                      Description="Pilotlight standby databases (sandbox)")["GroupId"]
    for item in databases:
        item["restore"] = {"dr": restore_target(
            subnet_group_name=naming.subnet_group_name(cfg), security_group_ids=[group],
            parameter_group_name=naming.parameter_group_name(cfg), kms_key_id=dr_key_arn,
            instance_class=item["config"].instance_class,
            automated_backups_arn=automated_backups_arn(cfg, item["config"].primary_arn),
            engine_version=item["config"].engine_version)}


def _dns(cfg: StackConfig, route53, ports: dict[str, int]) -> tuple[str, list[dict[str, Any]]]:
    """The zone, an A record per endpoint (127.0.0.1), a TCP health check per endpoint, failover CNAMEs.

    On AWS the zone exists already (``dns.zoneId``); in the emulator we create it, so its id differs.
    """
    zone_id = route53.create_hosted_zone(Name=cfg.dns.zone_name, CallerReference=str(uuid.uuid4()),
                                         HostedZoneConfig={"Comment": f"{naming.base(cfg)} sandbox"})["HostedZone"]["Id"]
    zone_id = zone_id.rsplit("/", 1)[-1]
    roles = {"primary": "PRIMARY", "dr": "SECONDARY"}  # static: the switch picks the side, never a role swap
    changes, databases = [], []
    for db in cfg.databases:
        standby_id = naming.standby_identifier(cfg, db)
        endpoints = {
            "primary": {"identifier": db.primary_identifier, "arn": db.primary_arn,
                        "host": endpoint_host(cfg, db.primary_identifier, "primary")},
            "dr": {"identifier": standby_id, "host": endpoint_host(cfg, standby_id, "dr"),
                   "arn": f"arn:{cfg.partition}:rds:{cfg.dr_region}:{cfg.account_id}:db:{standby_id}"},
        }
        signal = route53.create_health_check(CallerReference=str(uuid.uuid4()), HealthCheckConfig={
            "Type": "TCP", "IPAddress": "127.0.0.1", "Port": ports["primary"], "RequestInterval": 10,
            "FailureThreshold": cfg.dns.health_check.failure_threshold})["HealthCheck"]["Id"]
        threshold = switch_thresholds(1)
        switch = route53.create_health_check(CallerReference=str(uuid.uuid4()), HealthCheckConfig={
            "Type": "CALCULATED", "ChildHealthChecks": [signal],
            "HealthThreshold": threshold[cfg.active]})["HealthCheck"]["Id"]
        for check, what in ((signal, f"{db.name}-primary"), (switch, f"{db.name}-switch")):
            route53.change_tags_for_resource(ResourceType="healthcheck", ResourceId=check, AddTags=[
                {"Key": "Name", "Value": naming.health_check_name(cfg, what)}])
        for side in SIDES:
            changes.append(_upsert({"Name": endpoints[side]["host"], "Type": "A", "TTL": ENDPOINT_TTL,
                                    "ResourceRecords": [{"Value": "127.0.0.1"}]}))
            record = {"Name": db.record_name, "Type": "CNAME", "TTL": cfg.dns.ttl,
                      "SetIdentifier": naming.set_identifier(side), "Failover": roles[side],
                      "ResourceRecords": [{"Value": endpoints[side]["host"]}]}
            if side == "primary":
                record["HealthCheckId"] = switch
            changes.append(_upsert(record))
        databases.append({"config": db, "primary": endpoints["primary"], "standby": endpoints["dr"],
                          "dns": {"recordName": db.record_name, "healthCheckId": signal,
                                  "primaryTarget": endpoints["primary"]["host"], "drTarget": endpoints["dr"]["host"],
                                  "switch": {"healthCheckId": switch, "threshold": threshold}}})
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={
        "Comment": "pilotlight sandbox failover records", "Changes": changes})
    return zone_id, databases


def failback_section(cfg: StackConfig, name: str, generation: int = 0) -> dict[str, Any]:
    """The contract's ``failback`` of a database at ``generation`` (identifiers as the program names them)."""
    base = naming.base(cfg)
    return {"generation": generation, "primaryIdentifier": f"{base}-{name}-primary-g{generation + 1}",
            "standbyIdentifier": f"{base}-{name}-standby-g{generation + 1}"}


def switch_thresholds(children: int) -> dict[str, int]:
    """The switch's HealthThreshold per active side: all children (normal), or one more (always unhealthy)."""
    return {"primary": children, "dr": children + 1}


def rds_instances(cfg: StackConfig, databases: list[dict[str, Any]], keys: dict[str, dict[str, str]],
                  ports: dict[str, int]) -> list[dict[str, Any]]:
    """The instances as the program declares them: production, and its encrypted cross-region replica.

    Production is referenced by the program, not created, so its KMS key is the stack's primary-region
    key here; the replica is encrypted with the DR-region key, in the stack's subnet and parameter groups.
    """
    out = []
    for item in databases:
        db, primary, standby = item["config"], item["primary"], item["standby"]
        common = {"DBInstanceClass": db.instance_class, "MultiAZ": False, "BackupRetentionPeriod": 7}
        replica_of = cfg.dr_region != cfg.primary_region
        out.append({**common, "DBInstanceIdentifier": primary["identifier"], "DBInstanceArn": primary["arn"],
                    "Region": cfg.primary_region, "cluster": "primary", "KmsKeyId": keys["primary"]["arn"],
                    "Endpoint": {"Address": primary["host"], "Port": ports["primary"]},
                    "DBSubnetGroup": {"DBSubnetGroupName": "default"}, "DeletionProtection": True,
                    "DBParameterGroups": [{"DBParameterGroupName": "default.postgres15",
                                           "ParameterApplyStatus": "in-sync"}],
                    "ReadReplicaDBInstanceIdentifiers": [standby["arn"] if replica_of else standby["identifier"]]})
        out.append({**common, "DBInstanceIdentifier": standby["identifier"], "DBInstanceArn": standby["arn"],
                    "Region": cfg.dr_region, "cluster": "dr", "KmsKeyId": keys["dr"]["arn"],
                    "Endpoint": {"Address": standby["host"], "Port": ports["dr"]},
                    "DBSubnetGroup": {"DBSubnetGroupName": naming.subnet_group_name(cfg)},
                    "DeletionProtection": cfg.standby.deletion_protection,
                    "DBParameterGroups": [{"DBParameterGroupName": naming.parameter_group_name(cfg),
                                           "ParameterApplyStatus": "in-sync"}],
                    "ReadReplicaSourceDBInstanceIdentifier": primary["arn"] if replica_of else primary["identifier"]})
    return out


def _upsert(record: dict[str, Any]) -> dict[str, Any]:
    return {"Action": "UPSERT", "ResourceRecordSet": record}


def database_secrets(cfg: StackConfig, moto_url: str, username: str, password: str,
                     ports: dict[str, int]) -> dict[str, dict[str, str]]:
    """For each database whose config names ``credentialsSecretArn``: that secret, as RDS manages a master secret.

    Created in the primary region with a replica in the DR region (moto names replicas as AWS does:
    the same ARN, the other region). The ARN is moto's (it appends its own random suffix), so the
    contract names what exists. The value holds the sandbox superuser, like an RDS-managed master
    secret holds the master user; the tools read it at run time (scripts/postgres/credentials.py).
    """
    out = {}
    client = _clients(moto_url, cfg.primary_region)("secretsmanager")
    for db in cfg.databases:
        if not db.credentials_secret_arn:
            continue
        value = {"engine": "postgres", "username": username, "password": password,
                 "host": endpoint_host(cfg, db.primary_identifier, "primary"), "port": ports["primary"], "dbname": db.db_name}
        arn = client.create_secret(Name=naming.secret_name(db.credentials_secret_arn), SecretString=json.dumps(value),
                                   AddReplicaRegions=[{"Region": cfg.dr_region}],
                                   Description=f"{naming.base(cfg)} {db.name} login (sandbox)")["ARN"]
        out[db.name] = {"primary": arn, "dr": naming.arn_in_region(arn, cfg.dr_region)}
    return out
