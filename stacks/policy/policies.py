"""DR invariants as plain functions over resource inputs, shared by the policy pack and `pilotlight check`.

Every validator takes the resource's inputs — a plain dict as the mock runtime records them, or
the ``ResourceValidationArgs`` pulumi-policy passes (its ``props``) — and returns a list of
violation messages; an empty list means the resource complies. Property names are the
provider's camelCase names (pulumi-aws v7): ``kmsKeyId``, ``replicateSourceDb``,
``applyServerSideEncryptionByDefault``. Each message says what to change.

Two kinds of rules:

- :data:`RESOURCE_RULES` look at one resource (this encryption configuration uses AES256);
- :data:`STACK_RULES` look across resources (this bucket has no public access block at all;
  the stack exports no objectives). They take :class:`Res` records.

Levels: ``mandatory`` blocks `pulumi up` and fails `pilotlight check`; ``advisory`` is reported
and only fails `pilotlight check --strict`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

MANDATORY = "mandatory"
ADVISORY = "advisory"

BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
SSE_TYPES = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
VERSIONING_TYPES = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
LOCK_TYPES = (
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
    "aws:s3/bucketObjectLockConfigurationV2:BucketObjectLockConfigurationV2",
)
PAB_TYPE = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY_TYPE = "aws:s3/bucketPolicy:BucketPolicy"
REPLICATION_TYPE = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
RDS_INSTANCE_TYPE = "aws:rds/instance:Instance"
RECORD_TYPE = "aws:route53/record:Record"
KMS_KEY_TYPES = ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey")
STACK_TYPE = "pulumi:pulumi:Stack"

MAX_FAILOVER_TTL = 60
RTC_MINUTES = 15
SCENARIOS = ("regional-outage", "database-loss", "data-corruption", "ransomware", "accidental-deletion")
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


# --- input access -----------------------------------------------------------------------------


def props_of(resource: Any) -> Mapping[str, Any]:
    """The inputs of a resource: a dict as given, or ``args.props`` from pulumi-policy."""
    props = getattr(resource, "props", resource)
    return props if isinstance(props, Mapping) else {}


def region_of(resource: Any) -> str | None:
    """The resource's region: its own ``region`` input (pulumi-aws v7) or its provider's."""
    own = props_of(resource).get("region")
    if own:
        return str(own)
    provider = getattr(resource, "provider", None)
    provider_props = getattr(provider, "props", None) or {}
    return provider_props.get("region") or None


def _items(value: Any) -> list[Any]:
    """A list-or-single nested block as a list (the provider accepts both shapes in places)."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return list(value)
    return []


def _get(value: Any, *path: str) -> Any:
    """A nested input, taking the first element wherever a single-item list stands for a block."""
    for key in path:
        blocks = _items(value)
        if not blocks:
            return None
        value = blocks[0].get(key)
    return value


def _enabled(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "enabled")


def _strings(value: Any) -> set[str]:
    """An IAM ``Action``/``Resource`` field: one string or a list of them."""
    return {value} if isinstance(value, str) else {v for v in _items(value) if isinstance(v, str)}


def _is_customer_key(key_id: Any) -> bool:
    """A key reference that is not empty and not an AWS-managed alias (``alias/aws/...``)."""
    return isinstance(key_id, str) and bool(key_id.strip()) and "alias/aws/" not in key_id


def _region_of_arn(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if arn.startswith("arn:") and len(parts) > 4 and parts[3] else None


# --- resource rules ---------------------------------------------------------------------------


def vault_encryption(resource: Any) -> list[str]:
    """Server-side encryption of a vault bucket uses SSE-KMS with a customer-managed key."""
    props = props_of(resource)
    rules = _items(props.get("rules"))
    if not rules:
        return ["bucket encryption has no rule; add one with apply_server_side_encryption_by_default="
                "{sse_algorithm: 'aws:kms', kms_master_key_id: <the vault key ARN>}"]
    out = []
    for rule in rules:
        default = _get(rule, "applyServerSideEncryptionByDefault") or {}
        algorithm = default.get("sseAlgorithm")
        if algorithm not in ("aws:kms", "aws:kms:dsse"):
            out.append(f"bucket encryption uses sse_algorithm={algorithm!r}; set sse_algorithm='aws:kms' "
                       "and kms_master_key_id to the stack's customer-managed vault key ARN")
        elif not _is_customer_key(default.get("kmsMasterKeyId")):
            out.append("bucket encryption uses the AWS-managed S3 key; set kms_master_key_id to the "
                       "stack's customer-managed vault key ARN (rotation and key policy are yours)")
    return out


def vault_bucket_key(resource: Any) -> list[str]:
    """Advisory: S3 bucket keys cut KMS request costs by orders of magnitude on a busy vault."""
    rules = _items(props_of(resource).get("rules"))
    if rules and not all(rule.get("bucketKeyEnabled") is True for rule in rules):
        return ["bucket encryption without an S3 bucket key; set bucket_key_enabled=True to cut KMS calls"]
    return []


def vault_object_lock_enabled(resource: Any) -> list[str]:
    """A vault bucket is created with Object Lock: it cannot be turned on for an existing bucket."""
    if props_of(resource).get("objectLockEnabled") is not True:
        return ["vault bucket without Object Lock; set object_lock_enabled=True (only possible when the "
                "bucket is created: plan a replacement and copy the backups)"]
    return []


def vault_object_lock_retention(resource: Any) -> list[str]:
    """The lock configuration sets a default retention so every backup is immutable for a while."""
    props = props_of(resource)
    out = []
    enabled = props.get("objectLockEnabled")
    if enabled is not None and not _enabled(enabled):
        out.append("object lock configuration is not Enabled; set object_lock_enabled='Enabled'")
    retention = _get(props.get("rule"), "defaultRetention") or {}
    mode = retention.get("mode")
    if mode not in ("GOVERNANCE", "COMPLIANCE"):
        out.append(f"object lock default retention mode is {mode!r}; set rule.default_retention.mode to "
                   "GOVERNANCE (or COMPLIANCE, which cannot be undone) via pilotlight:vault.objectLock.mode")
    days, years = retention.get("days") or 0, retention.get("years") or 0
    if not (days > 0 or years > 0):
        out.append("object lock default retention has no period; set rule.default_retention.days > 0 "
                   "via pilotlight:vault.objectLock.days")
    return out


def vault_versioning(resource: Any) -> list[str]:
    """Versioning is what replication and Object Lock stand on."""
    status = _get(props_of(resource).get("versioningConfiguration"), "status")
    if status != "Enabled":
        return [f"vault bucket versioning is {status!r}; set versioning_configuration.status='Enabled' "
                "(replication and Object Lock need it)"]
    return []


def vault_public_access_blocked(resource: Any) -> list[str]:
    """All four public-access blocks on: a backup vault is never public."""
    props = props_of(resource)
    off = [flag for flag in PUBLIC_ACCESS_FLAGS if props.get(flag) is not True]
    if off:
        return [f"public access block leaves {', '.join(off)} off; set all four "
                "(block_public_acls, block_public_policy, ignore_public_acls, restrict_public_buckets) to True"]
    return []


def _statements(policy: Any) -> list[Mapping[str, Any]]:
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except json.JSONDecodeError:
            return []
    return [s for s in _items((policy or {}).get("Statement")) if isinstance(s, Mapping)]


def _denies_insecure_transport(statement: Mapping[str, Any]) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    condition = statement.get("Condition") or {}
    secure = (condition.get("Bool") or {}).get("aws:SecureTransport")
    actions = _strings(statement.get("Action"))
    return str(secure).lower() == "false" and bool(actions & {"s3:*", "*"})


def _denies_unencrypted_puts(statement: Mapping[str, Any]) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    actions = _strings(statement.get("Action"))
    conditions = [c for c in (statement.get("Condition") or {}).values() if isinstance(c, Mapping)]
    header = any("s3:x-amz-server-side-encryption" in c for c in conditions)
    return bool(actions & {"s3:PutObject", "s3:*"}) and header


def vault_tls_only(resource: Any) -> list[str]:
    """The bucket policy denies every request that does not use TLS."""
    statements = _statements(props_of(resource).get("policy"))
    if not any(_denies_insecure_transport(s) for s in statements):
        return ["bucket policy does not deny non-TLS requests; add a Deny of s3:* on the bucket and "
                "bucket/* with Condition {Bool: {aws:SecureTransport: 'false'}}"]
    return []


def vault_denies_unencrypted_puts(resource: Any) -> list[str]:
    """Advisory: refuse uploads that ask for a different encryption than SSE-KMS."""
    statements = _statements(props_of(resource).get("policy"))
    if not any(_denies_unencrypted_puts(s) for s in statements):
        return ["bucket policy accepts puts without SSE-KMS; add a Deny of s3:PutObject when "
                "s3:x-amz-server-side-encryption is not 'aws:kms'"]
    return []


def vault_replication(resource: Any) -> list[str]:
    """Cross-region replication is on, with RTC (15 min), metrics, the replica key and delete markers."""
    rules = [r for r in _items(props_of(resource).get("rules")) if isinstance(r, Mapping)]
    enabled = [r for r in rules if r.get("status") == "Enabled"]
    if not enabled:
        return ["replication has no Enabled rule; add a rule with status='Enabled' to the DR-region vault"]
    out = []
    for rule in enabled:
        name = rule.get("id") or "(unnamed)"
        destination = _get(rule, "destination") or {}
        rtc = _get(destination, "replicationTime") or {}
        if rtc.get("status") != "Enabled" or _get(rtc, "time", "minutes") != RTC_MINUTES:
            out.append(f"replication rule {name}: Replication Time Control is off; set destination."
                       f"replication_time={{status: 'Enabled', time: {{minutes: {RTC_MINUTES}}}}}")
        if _get(destination, "metrics", "status") != "Enabled":
            out.append(f"replication rule {name}: metrics are off (RTC needs them); set destination.metrics="
                       f"{{status: 'Enabled', event_threshold: {{minutes: {RTC_MINUTES}}}}}")
        if not _is_customer_key(_get(destination, "encryptionConfiguration", "replicaKmsKeyId")):
            out.append(f"replication rule {name}: no replica key; set destination.encryption_configuration."
                       "replica_kms_key_id to the DR-region replica key ARN")
        if _get(rule, "sourceSelectionCriteria", "sseKmsEncryptedObjects", "status") != "Enabled":
            out.append(f"replication rule {name}: SSE-KMS objects are skipped; set source_selection_criteria."
                       "sse_kms_encrypted_objects.status='Enabled' (every backup is SSE-KMS)")
        if _get(rule, "deleteMarkerReplication", "status") != "Disabled":
            out.append(f"replication rule {name}: delete markers replicate, so a delete in the primary region "
                       "hides the DR copy too; set delete_marker_replication.status='Disabled'")
    return out


_REGION_END = re.compile(r"-(us|eu|ap|ca|sa|me|af|il|mx)(-gov)?-[a-z]+-\d$")
_ACCOUNT_PART = re.compile(r"(^|-)\d{12}(-|$)")
LEGACY_NAME_TAG = "pilotlight:legacy-bucket-name"


def bucket_name_unique(resource: Any) -> list[str]:
    """A bucket name is global across every AWS account: project + stack + region alone is not unique.

    Satisfied by the account id in the name, or any suffix after the region; a bucket that keeps
    its pre-suffix name (it exists, Object-Locked buckets cannot be renamed) is tagged so.
    """
    props = props_of(resource)
    name = props.get("bucket")
    tags = props.get("tags") if isinstance(props.get("tags"), Mapping) else {}
    if not isinstance(name, str) or not name or tags.get(LEGACY_NAME_TAG) == "true":
        return []  # no name: Pulumi auto-names with a random suffix
    if _ACCOUNT_PART.search(name) or not _REGION_END.search(name):
        return []
    return [f"bucket name {name!r} is project+stack+region only, which another account may already own "
            "(BucketAlreadyExists); add the account id or a stable suffix (pilotlight:vault.bucketSuffix)"]


_DESTRUCTIVE_KEY_ACTIONS = ("kms:ScheduleKeyDeletion", "kms:DisableKey")


def _covers_action(statement: Mapping[str, Any], action: str) -> bool:
    for pattern in _strings(statement.get("Action")):
        if pattern == "*" or pattern == action or (pattern.endswith("*") and action.startswith(pattern[:-1])):
            return True
    return False


def key_destruction_denied(resource: Any) -> list[str]:
    """The vault key's policy denies ScheduleKeyDeletion/DisableKey to all but a named break-glass principal.

    Object Lock keeps ciphertext, not the key: a deleted or disabled key makes every backup unreadable.
    """
    statements = _statements(props_of(resource).get("policy"))
    if not statements:
        return []  # no policy: the pack cannot judge a default key policy here; the program always sets one
    def excludes_only_named_principals(statement: Mapping[str, Any]) -> bool:
        condition = statement.get("Condition") or {}
        return all(op in ("ArnNotEquals", "ArnNotLike", "StringNotEquals") and set(c) == {"aws:PrincipalArn"}
                   for op, c in condition.items() if isinstance(c, Mapping))

    missing = [action for action in _DESTRUCTIVE_KEY_ACTIONS
               if not any(st.get("Effect") == "Deny" and _covers_action(st, action) and excludes_only_named_principals(st)
                          for st in statements)]
    if missing:
        return [f"key policy does not deny {', '.join(missing)}; add a Deny of them for every principal except a named "
                "break-glass role (Condition ArnNotEquals aws:PrincipalArn)"]
    return []


def standby_encrypted(resource: Any) -> list[str]:
    """The standby is encrypted with a customer key in its own (DR) region."""
    props = props_of(resource)
    out = []
    key = props.get("kmsKeyId")
    replica = bool(props.get("replicateSourceDb"))
    if not _is_customer_key(key):
        out.append("standby database has no kms_key_id; set it to the DR-region replica key ARN "
                   "(a cross-region encrypted replica needs a key in its own region)")
    elif isinstance(key, str) and key.startswith("arn:"):
        region, key_region = region_of(resource), _region_of_arn(key)
        if region and key_region and region != key_region:
            out.append(f"standby database in {region} uses a key from {key_region}; set kms_key_id to the "
                       f"replica key in {region}")
    encrypted = props.get("storageEncrypted")
    if encrypted is False or (encrypted is None and not replica):
        out.append("standby database storage is not encrypted; set storage_encrypted=True")
    return out


def standby_deletion_protected(resource: Any) -> list[str]:
    """Deletion protection: the standby is the last copy when the primary region is gone."""
    if props_of(resource).get("deletionProtection") is not True:
        return ["standby database without deletion protection; set deletion_protection=True"]
    return []


def standby_backups(resource: Any) -> list[str]:
    """Advisory: automated backups on the standby keep point-in-time recovery after a promotion."""
    retention = props_of(resource).get("backupRetentionPeriod") or 0
    if retention <= 0:
        return ["standby database keeps no automated backups; set backup_retention_period >= 1 "
                "(pilotlight:standby.backupRetentionDays)"]
    return []


def failover_ttl(resource: Any) -> list[str]:
    """Failover records answer with a TTL of at most 60 s, so clients follow a failover quickly."""
    props = props_of(resource)
    if not _items(props.get("failoverRoutingPolicies")) or _items(props.get("aliases")):
        return []
    ttl = props.get("ttl")
    if not isinstance(ttl, (int, float)) or ttl > MAX_FAILOVER_TTL:
        shown = f"{ttl:g}" if isinstance(ttl, (int, float)) else repr(ttl)
        return [f"failover record TTL is {shown}; set ttl <= {MAX_FAILOVER_TTL} (pilotlight:dns.ttl) so "
                "resolvers follow a failover within the regional-outage RTO"]
    return []


def failover_health_check(resource: Any) -> list[str]:
    """The PRIMARY failover record has a health check, or Route 53 never fails over."""
    props = props_of(resource)
    kinds = {_get(p, "type") for p in _items(props.get("failoverRoutingPolicies"))}
    if "PRIMARY" in kinds and not props.get("healthCheckId"):
        return ["PRIMARY failover record has no health check; set health_check_id to the primary's health check"]
    return []


def key_rotation(resource: Any) -> list[str]:
    """Advisory: customer keys rotate yearly (replica keys inherit the primary key's rotation)."""
    props = props_of(resource)
    if "primaryKeyArn" in props:
        return []
    if props.get("enableKeyRotation") is not True:
        return ["KMS key without rotation; set enable_key_rotation=True"]
    return []


# --- stack rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Res:
    """One resource of a stack: what cross-resource rules look at.

    ``deps`` maps an input property to the URNs it came from (pulumi-policy's
    ``property_dependencies``); when absent, sub-resources are matched to their bucket by name.
    """

    type: str
    urn: str
    props: Mapping[str, Any]
    deps: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _bucket_refs(bucket: Res) -> set[str]:
    refs = {bucket.urn}
    for key in ("bucket", "id"):
        value = bucket.props.get(key)
        if isinstance(value, str) and value:
            refs.add(value)
    return refs


def _covers(sub: Res, refs: set[str]) -> bool:
    if refs & set(sub.deps.get("bucket", ())):
        return True
    value = sub.props.get("bucket")
    return isinstance(value, str) and value in refs


def _buckets(resources: Iterable[Res]) -> list[Res]:
    return [r for r in resources if r.type in BUCKET_TYPES]


def _coverage(resources: Sequence[Res], types: Sequence[str], what: str, fix: str) -> list[tuple[str, str]]:
    subs = [r for r in resources if r.type in types]
    out = []
    for bucket in _buckets(resources):
        refs = _bucket_refs(bucket)
        inline = any(t == SSE_TYPES[0] for t in types) and bucket.props.get("serverSideEncryptionConfiguration")
        if not inline and not any(_covers(sub, refs) for sub in subs):
            out.append((bucket.urn, f"vault bucket has no {what}; {fix}"))
    return out


def buckets_encrypted(resources: Sequence[Res]) -> list[tuple[str, str]]:
    return _coverage(resources, SSE_TYPES, "server-side encryption configuration",
                     "add aws.s3.BucketServerSideEncryptionConfiguration with SSE-KMS and the vault key")


def buckets_versioned(resources: Sequence[Res]) -> list[tuple[str, str]]:
    return _coverage(resources, VERSIONING_TYPES, "versioning", "add aws.s3.BucketVersioning with status Enabled")


def buckets_locked(resources: Sequence[Res]) -> list[tuple[str, str]]:
    return _coverage(resources, LOCK_TYPES, "Object Lock default retention",
                     "add aws.s3.BucketObjectLockConfiguration with a default retention")


def buckets_private(resources: Sequence[Res]) -> list[tuple[str, str]]:
    return _coverage(resources, (PAB_TYPE,), "public access block",
                     "add aws.s3.BucketPublicAccessBlock with all four flags True")


def buckets_tls_only(resources: Sequence[Res]) -> list[tuple[str, str]]:
    return _coverage(resources, (BUCKET_POLICY_TYPE,), "bucket policy",
                     "add aws.s3.BucketPolicy denying requests without aws:SecureTransport")


def replication_present(resources: Sequence[Res]) -> list[tuple[str, str]]:
    """Some bucket replicates to another: the DR region holds a copy of every backup."""
    buckets = _buckets(resources)
    if buckets and not any(r.type == REPLICATION_TYPE for r in resources):
        return [(buckets[0].urn, "no cross-region replication; add aws.s3.BucketReplicationConfig from the "
                                 "primary vault to the DR vault with RTC on")]
    return []


def objectives_present(resources: Sequence[Res]) -> list[tuple[str, str]]:
    """The stack exports an RTO and RPO for every scenario the tools measure (contract ``objectives``)."""
    stacks = [r for r in resources if r.type == STACK_TYPE]
    if not stacks:
        return []
    objectives = stacks[0].props.get("objectives")
    objectives = objectives if isinstance(objectives, Mapping) else {}
    missing = []
    for scenario in SCENARIOS:
        entry = objectives.get(scenario)
        entry = entry if isinstance(entry, Mapping) else {}
        if not all(isinstance(entry.get(k), (int, float)) and entry.get(k) > 0 for k in ("rtoSeconds", "rpoSeconds")):
            missing.append(scenario)
    if missing:
        return [(stacks[0].urn, f"objectives missing or not positive for {', '.join(missing)}; declare "
                                "rto and rpo for each under pilotlight:objectives and export them")]
    return []


# --- the tables the pack and `check` are built from ---------------------------------------------


@dataclass(frozen=True)
class ResourceRule:
    name: str
    description: str
    level: str
    types: tuple[str, ...]
    validate: Callable[[Any], list[str]]


@dataclass(frozen=True)
class StackRule:
    name: str
    description: str
    level: str
    validate: Callable[[Sequence[Res]], list[tuple[str, str]]]


RESOURCE_RULES: tuple[ResourceRule, ...] = (
    ResourceRule("vault-sse-customer-key", "Backups are encrypted with SSE-KMS and a customer-managed key.",
                 MANDATORY, SSE_TYPES, vault_encryption),
    ResourceRule("vault-bucket-key", "Vault encryption uses an S3 bucket key.", ADVISORY, SSE_TYPES, vault_bucket_key),
    ResourceRule("vault-object-lock", "Vault buckets are created with Object Lock.",
                 MANDATORY, BUCKET_TYPES, vault_object_lock_enabled),
    ResourceRule("vault-object-lock-retention", "Object Lock has a default retention mode and period.",
                 MANDATORY, LOCK_TYPES, vault_object_lock_retention),
    ResourceRule("vault-versioning", "Vault buckets are versioned.", MANDATORY, VERSIONING_TYPES, vault_versioning),
    ResourceRule("vault-public-access-blocked", "All four S3 public access blocks are on.",
                 MANDATORY, (PAB_TYPE,), vault_public_access_blocked),
    ResourceRule("vault-tls-only", "The bucket policy denies non-TLS requests.",
                 MANDATORY, (BUCKET_POLICY_TYPE,), vault_tls_only),
    ResourceRule("vault-deny-unencrypted-puts", "The bucket policy denies uploads without SSE-KMS.",
                 ADVISORY, (BUCKET_POLICY_TYPE,), vault_denies_unencrypted_puts),
    ResourceRule("vault-replication-rtc",
                 "Cross-region replication with RTC, metrics, replica key, and delete markers NOT replicated.",
                 MANDATORY, (REPLICATION_TYPE,), vault_replication),
    ResourceRule("bucket-name-globally-unique", "Bucket names carry the account id or a stable suffix.",
                 MANDATORY, BUCKET_TYPES, bucket_name_unique),
    ResourceRule("vault-key-destruction-denied",
                 "Key policies deny ScheduleKeyDeletion/DisableKey except to a named break-glass principal.",
                 MANDATORY, ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey"), key_destruction_denied),
    ResourceRule("standby-encrypted-dr-key", "The standby is encrypted with a customer key of its own region.",
                 MANDATORY, (RDS_INSTANCE_TYPE,), standby_encrypted),
    ResourceRule("standby-deletion-protected", "The standby has deletion protection.",
                 MANDATORY, (RDS_INSTANCE_TYPE,), standby_deletion_protected),
    ResourceRule("standby-automated-backups", "The standby keeps automated backups.",
                 ADVISORY, (RDS_INSTANCE_TYPE,), standby_backups),
    ResourceRule("failover-ttl", f"Failover records have a TTL of at most {MAX_FAILOVER_TTL} s.",
                 MANDATORY, (RECORD_TYPE,), failover_ttl),
    ResourceRule("failover-health-check", "The PRIMARY failover record has a health check.",
                 MANDATORY, (RECORD_TYPE,), failover_health_check),
    ResourceRule("kms-rotation", "Customer keys rotate.", ADVISORY, KMS_KEY_TYPES, key_rotation),
)

STACK_RULES: tuple[StackRule, ...] = (
    StackRule("vault-buckets-encrypted", "Every vault bucket has SSE-KMS configured.", MANDATORY, buckets_encrypted),
    StackRule("vault-buckets-versioned", "Every vault bucket is versioned.", MANDATORY, buckets_versioned),
    StackRule("vault-buckets-locked", "Every vault bucket has an Object Lock retention.", MANDATORY, buckets_locked),
    StackRule("vault-buckets-private", "Every vault bucket has a public access block.", MANDATORY, buckets_private),
    StackRule("vault-buckets-tls-only", "Every vault bucket has a TLS-only policy.", MANDATORY, buckets_tls_only),
    StackRule("vault-replication-present", "The vault replicates to the DR region.", MANDATORY, replication_present),
    StackRule("objectives-present", "The stack exports RTO/RPO objectives for every scenario.",
              MANDATORY, objectives_present),
)


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str
    urn: str
    message: str


def evaluate(resources: Sequence[Res], regions: Mapping[str, str] | None = None) -> list[Violation]:
    """Every rule over a whole stack, as `pilotlight check` runs them (``regions``: URN -> region)."""
    regions = regions or {}
    found = []
    for res in resources:
        for rule in RESOURCE_RULES:
            if res.type in rule.types:
                region = regions.get(res.urn)
                subject = {**res.props, "region": region} if region and not res.props.get("region") else res.props
                found.extend(Violation(rule.name, rule.level, res.urn, m) for m in rule.validate(subject))
    for stack_rule in STACK_RULES:
        found.extend(Violation(stack_rule.name, stack_rule.level, u, m) for u, m in stack_rule.validate(resources))
    return found


# --- pulumi-policy wrapping ---------------------------------------------------------------------


def pack_policies() -> list[Any]:
    """The rules as pulumi-policy objects (imported lazily: `check` needs only the functions)."""
    from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

    levels = {MANDATORY: EnforcementLevel.MANDATORY, ADVISORY: EnforcementLevel.ADVISORY}

    def resource_validation(rule: ResourceRule) -> Callable[[Any, Any], None]:
        def validate(args: Any, report: Callable[[str, str | None], None]) -> None:
            if args.resource_type in rule.types:
                for message in rule.validate(args):
                    report(message, None)

        return validate

    def stack_validation(rule: StackRule) -> Callable[[Any, Any], None]:
        def validate(args: Any, report: Callable[[str, str | None], None]) -> None:
            for urn, message in rule.validate([as_res(r) for r in args.resources]):
                report(message, urn)

        return validate

    return [
        ResourceValidationPolicy(r.name, r.description, resource_validation(r), levels[r.level]) for r in RESOURCE_RULES
    ] + [StackValidationPolicy(r.name, r.description, stack_validation(r), levels[r.level]) for r in STACK_RULES]


def as_res(resource: Any) -> Res:
    """A pulumi-policy ``PolicyResource`` as a :class:`Res`."""
    deps = {key: tuple(d.urn for d in found) for key, found in (resource.property_dependencies or {}).items()}
    return Res(resource.resource_type, resource.urn, resource.props, deps)
