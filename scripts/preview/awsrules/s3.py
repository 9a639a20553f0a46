"""S3 (and the CloudTrail/EventBridge audit of the vault) rules the mock runtime enforces; each cites its source."""
from __future__ import annotations

import json
import re
from typing import Any, Iterable, Sequence

from scripts.preview.awsrules import Resource, request_rule, resource_rule, stack_rule, transition_rule

BUCKET = "aws:s3/bucket:Bucket"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
TRAIL = "aws:cloudtrail/trail:Trail"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
KEY_TYPES = ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Minimum days in the class a transition leaves / enters (S3 user guide, lifecycle-transition-general-considerations).
_IA_CLASSES = ("STANDARD_IA", "ONEZONE_IA")
# S3 object-level calls CloudTrail records only as data events.
_DATA_EVENTS = {"DeleteObject", "DeleteObjects", "PutObject", "PutObjectRetention", "PutObjectLegalHold", "GetObject"}


def _list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _doc(value: Any) -> dict:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


def _by_type(resources: Sequence[Resource], *types: str) -> list[Resource]:
    return [r for r in resources if r.type in types]


@resource_rule("s3-bucket-name", BUCKET,
               cite="https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html; "
                    "terraform-provider-aws internal/service/s3/bucket.go (validBucketName)")
def bucket_name(r: Resource) -> str | None:
    name = r.inputs.get("bucket")
    if not isinstance(name, str):
        return None
    if (not _BUCKET_NAME.match(name) or ".." in name or name.startswith(("xn--", "sthree-"))
            or name.endswith(("-s3alias", "--ol-s3")) or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name)):
        return f"InvalidBucketName: {name!r} (3-63 lowercase letters, digits, dots, hyphens; no reserved prefix/suffix)"
    return None


@resource_rule("s3-lifecycle-expiration-exclusive", LIFECYCLE,
               cite="https://docs.aws.amazon.com/AmazonS3/latest/API/API_LifecycleExpiration.html "
                    "(ExpiredObjectDeleteMarker cannot be specified with Days or Date)")
def expiration_exclusive(r: Resource) -> Iterable[str]:
    for rule in _list(r.inputs.get("rules")):
        exp = rule.get("expiration") or {}
        if exp.get("expiredObjectDeleteMarker") and (exp.get("days") or exp.get("date")):
            yield f"MalformedXML: lifecycle rule {rule.get('id')!r} sets expiredObjectDeleteMarker with days/date"


@resource_rule("s3-lifecycle-transition-days", LIFECYCLE,
               cite="https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-transition-general-considerations.html")
def transition_days(r: Resource) -> Iterable[str]:
    for rule in _list(r.inputs.get("rules")):
        rid = rule.get("id")
        expire = (rule.get("expiration") or {}).get("days")
        ia_day = None
        for t in sorted(_list(rule.get("transitions")), key=lambda t: t.get("days") or 0):
            days, cls = t.get("days") or 0, t.get("storageClass")
            if cls in _IA_CLASSES:
                if days < 30:
                    yield f"InvalidArgument: rule {rid!r}: {cls} transition at day {days} (minimum 30)"
                ia_day = days
            elif ia_day is not None and days < ia_day + 30:
                yield f"InvalidArgument: rule {rid!r}: {cls} at day {days}, under 30 days after the IA transition"
            if expire and days >= expire:
                yield f"InvalidArgument: rule {rid!r}: {cls} transition at day {days} is not before expiration ({expire})"


@stack_rule("s3-object-lock-needs-lock-enabled-bucket",
            cite="https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObjectLockConfiguration.html; "
                 "terraform-provider-aws internal/service/s3/bucket_object_lock_configuration.go")
def lock_needs_enabled_bucket(resources: Sequence[Resource]) -> Iterable[str]:
    by_name = {r.inputs.get("bucket"): r for r in _by_type(resources, BUCKET)}
    for lock in _by_type(resources, LOCK):
        bucket = by_name.get(lock.inputs.get("bucket"))
        if bucket is not None and bucket.inputs.get("objectLockEnabled") is not True:
            yield f"InvalidBucketState: {lock.urn}: Object Lock configuration on a bucket created without Object Lock"


@stack_rule("s3-bucket-name-taken",
            cite="https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html (BucketAlreadyExists, "
                 "BucketAlreadyOwnedByYou: one namespace for all accounts of a partition)")
def bucket_names_distinct(resources: Sequence[Resource]) -> Iterable[str]:
    seen: dict[str, str] = {}
    for b in _by_type(resources, BUCKET):
        name = b.inputs.get("bucket")
        if isinstance(name, str) and name in seen:
            yield f"BucketAlreadyOwnedByYou: {name!r} is declared by {seen[name]} and {b.urn}"
        seen.setdefault(name, b.urn)


@transition_rule("s3-protected-bucket-rename",
                 cite="terraform-provider-aws internal/service/s3/bucket.go (bucket: ForceNew) and Pulumi's "
                      "protect option (a protected resource cannot be replaced)")
def protected_bucket_rename(before: Sequence[Resource], after: Sequence[Resource]) -> Iterable[str]:
    old = {r.urn: r for r in _by_type(before, BUCKET)}
    for new in _by_type(after, BUCKET):
        prev = old.get(new.urn)
        if prev is not None and prev.protect and prev.inputs.get("bucket") != new.inputs.get("bucket"):
            yield (f"{new.urn}: renaming protected bucket {prev.inputs.get('bucket')!r} -> {new.inputs.get('bucket')!r} "
                   "is a replacement, which Pulumi refuses for a protected resource (keep the name: "
                   "pilotlight:vault.bucketSuffix none)")


@stack_rule("cloudtrail-bucket-policy",
            cite="https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html "
                 "(InsufficientS3BucketPolicyException)")
def trail_bucket_policy(resources: Sequence[Resource]) -> Iterable[str]:
    policies = {p.inputs.get("bucket"): _doc(p.inputs.get("policy")) for p in _by_type(resources, POLICY)}
    for trail in _by_type(resources, TRAIL):
        doc = policies.get(trail.inputs.get("s3BucketName"), {})
        granted = {a for s in _list(doc.get("Statement")) if s.get("Effect") == "Allow"
                   and "cloudtrail.amazonaws.com" in _list((s.get("Principal") or {}).get("Service"))
                   for a in _list(s.get("Action"))}
        if not {"s3:GetBucketAcl", "s3:PutObject"} <= granted:
            yield f"InsufficientS3BucketPolicyException: {trail.urn}: the log bucket policy must let CloudTrail GetBucketAcl and PutObject"


def _service_allowed(doc: dict, service: str, actions: Iterable[str]) -> bool:
    need = set(actions)
    for s in _list(doc.get("Statement")):
        if s.get("Effect") != "Allow":
            continue
        principal = s.get("Principal")
        services = _list(principal.get("Service")) if isinstance(principal, dict) else []
        if service in services or principal == "*" or (isinstance(principal, dict) and "*" in _list(principal.get("AWS"))):
            for a in _list(s.get("Action")):
                need -= {x for x in need if a in ("*", "kms:*", "sns:*") or a == x
                         or (a.endswith("*") and x.startswith(a[:-1]))}
    return not need


@stack_rule("eventbridge-needs-a-trail",
            cite="https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail.html "
                 "(AWS API Call via CloudTrail needs a logging trail; data events only for selected resources)")
def events_need_trail(resources: Sequence[Resource]) -> Iterable[str]:
    trails = [t for t in _by_type(resources, TRAIL) if t.inputs.get("enableLogging", True)]
    for rule in _by_type(resources, EVENT_RULE):
        pattern = _doc(rule.inputs.get("eventPattern"))
        if "AWS API Call via CloudTrail" not in _list(pattern.get("detail-type")):
            continue
        if not trails:
            yield f"{rule.urn}: matches CloudTrail API calls, but no logging trail delivers any (the rule never fires)"
            continue
        names = set(_list((pattern.get("detail") or {}).get("eventName"))) & _DATA_EVENTS
        buckets = _list(((pattern.get("detail") or {}).get("requestParameters") or {}).get("bucketName"))
        if names and buckets:
            selected = {v for t in trails for sel in _list(t.inputs.get("eventSelectors"))
                        for d in _list(sel.get("dataResources")) if d.get("type") == "AWS::S3::Object"
                        for v in _list(d.get("values"))}
            for bucket in buckets:
                if not any(isinstance(v, str) and (v.rstrip("/").endswith(f":::{bucket}") or v == "arn:aws:s3")
                           for v in selected):
                    yield f"{rule.urn}: {sorted(names)} on {bucket} are data events no trail selects (never delivered)"


@stack_rule("sns-encrypted-topic-publishers",
            cite="https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services "
                 "(AWS services publishing to an encrypted topic need kms:GenerateDataKey*/Decrypt in its key policy)")
def encrypted_topic_publishers(resources: Sequence[Resource]) -> Iterable[str]:
    """Who publishes where is read from dependencies: a target or alarm depends on the topic it names."""
    by_urn = {r.urn: r for r in resources}
    for topic in _by_type(resources, TOPIC):
        services = set()
        for r in resources:
            if topic.urn in r.dependencies:
                if r.type == EVENT_TARGET:
                    services.add("events.amazonaws.com")
                elif r.type == "aws:cloudwatch/metricAlarm:MetricAlarm":
                    services.add("cloudwatch.amazonaws.com")
        keys = [by_urn[u] for u in topic.dependencies if u in by_urn and by_urn[u].type in KEY_TYPES]
        policies = [r for r in resources if r.type == TOPIC_POLICY and topic.urn in r.dependencies]
        for service in sorted(services):
            for key in keys:
                if not _service_allowed(_doc(key.inputs.get("policy")), service, ("kms:GenerateDataKey", "kms:Decrypt")):
                    yield f"{topic.urn}: {service} cannot use the topic's KMS key; its notifications are dropped"
            if service == "events.amazonaws.com" and not any(
                    _service_allowed(_doc(p.inputs.get("policy")), service, ("sns:Publish",)) for p in policies):
                yield f"{topic.urn}: no topic policy lets EventBridge publish (the target's invocations fail)"


_CHECKSUMS = ("ContentMD5", "ChecksumAlgorithm", "ChecksumCRC32", "ChecksumCRC32C", "ChecksumCRC64NVME",
              "ChecksumSHA1", "ChecksumSHA256")


@request_rule("s3-object-lock-put-needs-checksum", "s3:PutObject",
              cite="https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html (the Content-MD5 or "
                   "x-amz-sdk-checksum-algorithm header is required for any request to upload an object with a "
                   "retention period configured using Amazon S3 Object Lock); kopia/kopia#711 and "
                   "aws/aws-sdk-php#1694 (InvalidRequest on a bucket with default retention)")
def lock_put_checksum(params: dict, target: dict) -> str | None:
    """The tools ask for the checksum themselves: botocore's default one is configuration
    (``request_checksum_calculation=when_required`` turns it off)."""
    if target.get("object_lock") and not any(params.get(k) for k in _CHECKSUMS):
        return (f"InvalidRequest: PutObject of {params.get('Key')!r} into an Object Lock bucket carries neither "
                "Content-MD5 nor a checksum (pass ChecksumAlgorithm)")
    return None


REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def _granted(docs: Iterable[dict], action: str, resource: str) -> bool:
    """Whether an Allow statement of ``docs`` grants ``action`` on ``resource`` (exact or ``/*`` patterns)."""
    for doc in docs:
        for s in _list(doc.get("Statement")):
            if s.get("Effect") != "Allow" or action not in _list(s.get("Action")):
                continue
            for r in _list(s.get("Resource")):
                if r == resource or (r.endswith("*") and resource.startswith(r[:-1])):
                    return True
    return False


@stack_rule("s3-replication-prerequisites",
            cite="https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-requirements.html (versioning "
                 "on source and destination; the role's s3:GetObjectVersionForReplication on the source and "
                 "s3:ReplicateObject on the destination); "
                 "https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-failure-codes.html "
                 "(DstBucketUnversioned, DstBucketObjectLockConfigMissing: an Object Lock source needs an Object "
                 "Lock destination); https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html "
                 "(replicating locked objects: s3:GetObjectRetention and s3:GetObjectLegalHold on the source); "
                 "https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-config-for-kms-objects.html "
                 "(SseKmsEncryptedObjects needs a ReplicaKmsKeyID); terraform-provider-aws "
                 "internal/service/s3/bucket_replication_configuration.go")
def replication_prerequisites(resources: Sequence[Resource]) -> Iterable[str]:
    buckets = {b.inputs.get("bucket"): b for b in _by_type(resources, BUCKET)}
    versioned = {v.inputs.get("bucket") for v in _by_type(resources, VERSIONING)
                 if (v.inputs.get("versioningConfiguration") or {}).get("status") == "Enabled"}
    # A role policy names its role by id (unknown under mocks): the role is the one it depends on.
    role_names = {r.urn: r.inputs.get("name") for r in _by_type(resources, "aws:iam/role:Role")}
    policies: dict[str, list[dict]] = {}
    for p in _by_type(resources, ROLE_POLICY):
        for name in filter(None, (role_names.get(u) for u in p.dependencies)):
            policies.setdefault(str(name), []).append(_doc(p.inputs.get("policy")))
    for config in _by_type(resources, REPLICATION):
        source = config.inputs.get("bucket")
        role_docs = policies.get(str(config.inputs.get("role") or "").rsplit("/", 1)[-1], [])
        if source in buckets and source not in versioned:
            yield f"InvalidRequest: {config.urn}: source bucket {source!r} is not versioned"
        for rule in _list(config.inputs.get("rules")):
            dest = str((rule.get("destination") or {}).get("bucket") or "")
            name = dest.rsplit(":", 1)[-1]
            if name in buckets and name not in versioned:
                yield f"DstBucketUnversioned: {config.urn}: destination {name!r} is not versioned"
            if (source in buckets and buckets[source].inputs.get("objectLockEnabled") and name in buckets
                    and not buckets[name].inputs.get("objectLockEnabled")):
                yield f"DstBucketObjectLockConfigMissing: {config.urn}: {source!r} is locked, {name!r} is not"
            kms = ((rule.get("sourceSelectionCriteria") or {}).get("sseKmsEncryptedObjects") or {}).get("status")
            if kms == "Enabled" and not ((rule.get("destination") or {}).get("encryptionConfiguration") or {}).get(
                    "replicaKmsKeyId"):
                yield f"InvalidRequest: {config.urn}: rule {rule.get('id')!r} replicates SSE-KMS objects without a ReplicaKmsKeyID"
            if not role_docs or source not in buckets:
                continue
            src = f"arn:aws:s3:::{source}/x"
            needed = [("s3:GetObjectVersionForReplication", src), ("s3:ReplicateObject", f"{dest}/x")]
            if buckets[source].inputs.get("objectLockEnabled"):
                needed += [("s3:GetObjectRetention", src), ("s3:GetObjectLegalHold", src)]
            for action, resource in needed:
                if not _granted(role_docs, action, resource):
                    yield (f"AccessDenied: {config.urn}: the replication role lacks {action} on "
                           f"{resource.rsplit('/', 1)[0]}/* (objects fail to replicate)")
