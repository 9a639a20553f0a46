"""Stack configuration: parsed once into frozen dataclasses, every mistake one line.

The same values drive the Pulumi program (``from_pulumi``) and the local sandbox
(``load_stack_file`` on ``Pulumi.dr.yaml``), so this module never imports pulumi at module
level. ``parse_config`` takes the ``pilotlight:`` keys without their namespace; other
namespaces (``aws:region``) are ignored. Every error is a :class:`ConfigError` whose message
names the key as the user types it (``pilotlight:vault.tiers.hourly.retentionDays``), the bad
value and the fix.
"""
from __future__ import annotations

import difflib
import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from stacks.appconfig import ApplicationConfig, SmokeCheckConfig
    from stacks.jobsconfig import JobsConfig

from stacks.vocabulary import SIDES

NAMESPACE = "pilotlight"

# Commercial and GovCloud regions that have RDS PostgreSQL, S3 CRR with RTC and Route 53 health checks.
KNOWN_REGIONS = frozenset(
    """
    us-east-1 us-east-2 us-west-1 us-west-2 ca-central-1 ca-west-1 sa-east-1 mx-central-1
    eu-west-1 eu-west-2 eu-west-3 eu-central-1 eu-central-2 eu-north-1 eu-south-1 eu-south-2
    ap-northeast-1 ap-northeast-2 ap-northeast-3 ap-southeast-1 ap-southeast-2 ap-southeast-3
    ap-southeast-4 ap-southeast-5 ap-southeast-7 ap-south-1 ap-south-2 ap-east-1 ap-east-2
    me-south-1 me-central-1 il-central-1 af-south-1 us-gov-west-1 us-gov-east-1
    """.split()
)

TIER_INTERVALS = MappingProxyType({"hourly": 3600, "daily": 86400, "weekly": 604800, "monthly": 2592000})
DEFAULT_RETENTION_DAYS = MappingProxyType({"hourly": 7, "daily": 30, "weekly": 90, "monthly": 365})
# Only classes a GetObject reads at once: GLACIER and DEEP_ARCHIVE need RestoreObject first,
# which neither the restore role nor the tools have, so verify and restore would fail on them.
ARCHIVE_CLASSES = ("GLACIER_IR",)
UNREADABLE_ARCHIVE_CLASSES = ("GLACIER", "DEEP_ARCHIVE")
OBJECT_LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")
# DATABASE (default): a primary-region alarm on the primary instance itself decides failover, so an
# application-only failure never moves the database name (the others are endpoint checks).
HEALTH_CHECK_TYPES = ("DATABASE", "HTTPS", "HTTP", "TCP", "CLOUDWATCH_METRIC")
# A DATABASE signal alarm evaluates one-minute periods: failureThreshold counts minutes.
DATABASE_SIGNAL_PERIOD_SECONDS = 60
MONITORING_INTERVALS = (0, 1, 5, 10, 15, 30, 60)
MAX_TTL = 300

# Scenario names as the contract spells them, keyed by their camelCase config key.
SCENARIO_KEYS = MappingProxyType(
    {
        "regionalOutage": "regional-outage",
        "databaseLoss": "database-loss",
        "dataCorruption": "data-corruption",
        "ransomware": "ransomware",
        "accidentalDeletion": "accidental-deletion",
    }
)
DEFAULT_OBJECTIVES = MappingProxyType(
    {
        "regional-outage": (900, 300),
        "database-loss": (900, 300),
        "data-corruption": (3600, 3600),
        "ransomware": (14400, 86400),
        "accidental-deletion": (3600, 3600),
    }
)

_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}/$")
_DBNAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_RDS_ARN_RE = re.compile(r"^arn:(aws[a-z-]*):rds:([a-z0-9-]+):(\d{12}):db:([A-Za-z][A-Za-z0-9-]{0,62})$")
_HOST_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_ZONE_ID_RE = re.compile(r"^Z[A-Z0-9]{4,31}$")
_RESOURCE_ID_RE = re.compile(r"^db-[A-Z0-9]{8,40}$")  # DbiResourceId, e.g. db-ABCDEFGHIJKL01234
_KMS_KEY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[\w-]+$")
_SECRET_ARN_RE = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@!-]+$")  # RDS-managed: rds!db-...
_INSTANCE_CLASS_RE = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
_ENGINE_VERSION_RE = re.compile(r"^(\d+)(\.\d+)?$")
MAX_GENERATION = 999


class ConfigError(ValueError):
    """Stack configuration is invalid; the message is one line naming key, value and fix."""


@dataclass(frozen=True)
class Objective:
    """Recovery time and point objectives of one scenario, in seconds."""

    rto_seconds: int
    rpo_seconds: int


@dataclass(frozen=True)
class DatabaseConfig:
    """One existing production database the stack protects (referenced, never managed)."""

    name: str
    db_name: str
    primary_arn: str
    primary_host: str
    port: int
    record_name: str
    instance_class: str
    engine_version: str = "15"
    """PostgreSQL version of the primary (``15`` or ``15.7``); the standby's parameter group must match it."""
    generation: int = 0
    """Failback generation: each failback makes a new standby (and a new primary), see docs/program.md."""
    user: str = "pilotlight"
    """The PostgreSQL role the tools log in as."""
    credentials_secret_arn: str | None = None
    """Secrets Manager secret holding the password (an RDS-managed master secret works); read at run time."""
    iam_auth: bool = False
    """Log in with an RDS IAM auth token (boto3 ``generate_db_auth_token``) instead of a password."""
    resource_id: str | None = None
    """The primary's DbiResourceId (``db-...``, needed with ``iam_auth``): ``rds-db:connect`` names it."""
    credentials_secret_key_arn: str | None = None
    """Customer KMS key of the secret, if not Secrets Manager's own: the tasks may decrypt with it."""
    application: "ApplicationConfig | None" = None
    """How to stop and start the application around a restore or cutover (stacks/appconfig.py)."""
    smoke_checks: "tuple[SmokeCheckConfig, ...]" = ()
    """What must hold after a restore, cutover or drill (stacks/appconfig.py)."""

    @property
    def primary_identifier(self) -> str:
        return self.primary_arn.rsplit(":", 1)[1]

    @property
    def engine_major(self) -> str:
        return self.engine_version.split(".", 1)[0]


@dataclass(frozen=True)
class StandbyConfig:
    """The DR-region network and settings shared by every standby instance."""

    vpc_id: str
    subnet_ids: tuple[str, ...]
    allowed_cidrs: tuple[str, ...]
    allowed_security_group_ids: tuple[str, ...]
    backup_retention_days: int
    performance_insights: bool
    monitoring_interval_seconds: int
    parameter_group_family: str
    deletion_protection: bool
    multi_az_when_promoted: bool = True
    max_allocated_storage_gb: int = 0


@dataclass(frozen=True)
class HealthCheckConfig:
    type: str
    fqdn: str
    path: str
    port: int
    interval_seconds: int
    failure_threshold: int
    alarm_name: str | None = None

    @property
    def detection_seconds(self) -> int:
        """Worst-case time for Route 53 to declare the primary unhealthy."""
        if self.type == "DATABASE":
            return DATABASE_SIGNAL_PERIOD_SECONDS * self.failure_threshold
        return self.interval_seconds * self.failure_threshold


@dataclass(frozen=True)
class DnsConfig:
    zone_id: str
    zone_name: str
    ttl: int
    health_check: HealthCheckConfig
    routing_control: bool


@dataclass(frozen=True)
class TierConfig:
    name: str
    prefix: str
    interval_seconds: int
    retention_days: int
    noncurrent_days: int
    """Days a deleted or expired backup version is kept: at least ``retention_days``."""
    archive_after_days: int | None = None
    archive_class: str | None = None


@dataclass(frozen=True)
class VaultConfig:
    object_lock_mode: str
    object_lock_days: int
    tiers: Mapping[str, TierConfig]
    infrequent_access_after_days: int
    abort_multipart_days: int
    bucket_suffix: str
    """Appended to every vault bucket name so it is unique in S3's global namespace (stacks.naming)."""
    break_glass_arn: str | None = None
    """The one principal allowed destructive vault-key actions; None: the role the stack creates."""


@dataclass(frozen=True)
class AlarmsConfig:
    email: str | None
    backup_age_slack_seconds: int


@dataclass(frozen=True)
class Contact:
    """Who is called in an incident, in escalation order (``pilotlight:contacts``, first called first).

    ``reach`` says how (a pager, a phone, a channel); ``escalate_after_seconds``: how long to wait
    for an answer before calling the next one (None: the last, or no time set).
    """

    name: str
    role: str
    reach: str
    escalate_after_seconds: int | None = None


@dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    primary_region: str
    dr_region: str
    active: str
    databases: tuple[DatabaseConfig, ...]
    standby: StandbyConfig
    dns: DnsConfig
    vault: VaultConfig
    alarms: AlarmsConfig
    objectives: Mapping[str, Objective]
    jobs: "JobsConfig | None" = None
    """The scheduled jobs (stacks/jobsconfig.py); always set by ``parse_config``."""
    contacts: tuple[Contact, ...] = ()

    def region(self, side: str) -> str:
        return self.primary_region if side == "primary" else self.dr_region

    @property
    def passive(self) -> str:
        return "dr" if self.active == "primary" else "primary"

    @property
    def pg_major(self) -> int:
        """PostgreSQL major version the stack declares (``standby.parameterGroupFamily``)."""
        return int(self.standby.parameter_group_family.removeprefix("postgres"))

    @property
    def account_id(self) -> str:
        """The AWS account, taken from the primary database ARNs (all must agree)."""
        return _RDS_ARN_RE.match(self.databases[0].primary_arn).group(3)

    @property
    def partition(self) -> str:
        return _RDS_ARN_RE.match(self.databases[0].primary_arn).group(1)


# ---------------------------------------------------------------- helpers


def _key(path: str) -> str:
    return f"{NAMESPACE}:{path}"


def _fail(path: str, value: Any, fix: str) -> ConfigError:
    shown = json.dumps(value) if not isinstance(value, str) else repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ConfigError(f"{_key(path)} = {shown}: {fix}")


def parse_duration(text: Any, key: str) -> int:
    """``"30s"``, ``"15m"``, ``"1h"``, ``"7d"`` (or a bare non-negative int of seconds) -> seconds."""
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    match = _DURATION_RE.match(text) if isinstance(text, str) else None
    if not match:
        raise _fail(key, text, "use a duration with a unit, like 30s, 15m, 1h or 7d")
    return int(match.group(1)) * _UNITS[match.group(2)]


class _Section:
    """A config mapping at ``path`` that rejects keys it does not know, with a did-you-mean."""

    def __init__(self, raw: Any, path: str, known: tuple[str, ...]):
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise _fail(path, raw, "must be an object (key: value pairs)")
        for key in raw:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
                where = f"{path}.{key}" if path else str(key)
                raise ConfigError(f"{_key(where)}: unknown key; {hint}")
        self.raw, self.path = raw, path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def text(self, key: str, default: str | None = None, *, fix: str = "set a non-empty string") -> str:
        value = self.raw.get(key, default)
        if value is None and default is None:
            raise ConfigError(f"{_key(self.at(key))} is missing: {fix}")
        if not isinstance(value, str) or not value.strip():
            raise _fail(self.at(key), value, fix)
        return value.strip()

    def integer(self, key: str, default: int | None, lo: int, hi: int, fix: str = "") -> int:
        value = self.raw.get(key, default)
        if value is None:
            raise ConfigError(f"{_key(self.at(key))} is missing: set an integer from {lo} to {hi}")
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise _fail(self.at(key), value, fix or f"use an integer from {lo} to {hi}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise _fail(self.at(key), value, "use true or false")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise _fail(self.at(key), value, "use a list of strings, e.g. [a, b]")
        return tuple(value)

    def duration(self, key: str, default: str) -> int:
        return parse_duration(self.raw.get(key, default), self.at(key))

    def section(self, key: str, known: tuple[str, ...]) -> "_Section":
        return _Section(self.raw.get(key), self.at(key), known)


# ---------------------------------------------------------------- sections


def _region(top: _Section, key: str) -> str:
    region = top.text(key, fix="set an AWS region such as us-east-1")
    if region not in KNOWN_REGIONS:
        close = difflib.get_close_matches(region, sorted(KNOWN_REGIONS), n=1)
        hint = f"did you mean {close[0]}?" if close else "use an AWS region such as us-west-2"
        raise _fail(key, region, f"unknown AWS region; {hint}")
    return region


def _databases(raw: Any, primary_region: str, zone_name: str, dr_region: str) -> tuple[DatabaseConfig, ...]:
    from stacks.appconfig import parse_application, parse_smoke_checks  # imports this module's section helpers

    if not isinstance(raw, list) or not raw:
        raise _fail("databases", raw, "list at least one database: [{name, primaryArn, primaryHost, ...}]")
    known = ("name", "dbName", "primaryArn", "primaryHost", "port", "recordName", "instanceClass", "engineVersion",
             "generation", "user", "credentialsSecretArn", "credentialsSecretKmsKeyArn", "iamAuth", "resourceId",
             "application", "smokeChecks")
    dbs: list[DatabaseConfig] = []
    accounts: set[str] = set()
    for i, item in enumerate(raw):
        s = _Section(item, f"databases[{i}]", known)
        name = s.text("name", fix="set a short lowercase name like orders")
        if not _NAME_RE.match(name) or len(name) > 24:
            raise _fail(s.at("name"), name, "use 1-24 lowercase letters, digits and single hyphens, starting with a letter")
        arn = s.text("primaryArn", fix="set the primary RDS instance ARN, arn:aws:rds:<region>:<account>:db:<id>")
        match = _RDS_ARN_RE.match(arn)
        if not match:
            raise _fail(s.at("primaryArn"), arn, "use an RDS instance ARN, arn:aws:rds:<region>:<account>:db:<id>")
        if match.group(2) != primary_region:
            raise _fail(s.at("primaryArn"), arn, f"the primary instance must be in primaryRegion {primary_region}")
        accounts.add(match.group(3))
        host = s.text("primaryHost", fix="set the primary instance endpoint host name")
        if not _HOST_RE.match(host):
            raise _fail(s.at("primaryHost"), host, "use a host name like orders.abc123.us-east-1.rds.amazonaws.com")
        db_name = s.text("dbName", name.replace("-", "_"))
        if not _DBNAME_RE.match(db_name):
            raise _fail(s.at("dbName"), db_name, "use a PostgreSQL identifier (letters, digits, underscore)")
        record = s.text("recordName", f"db.{name}.{zone_name}").rstrip(".").lower()
        if not record.endswith("." + zone_name) or not _HOST_RE.match(record):
            raise _fail(s.at("recordName"), record, f"use a name below the hosted zone {zone_name} (a CNAME cannot sit at the apex)")
        instance_class = s.text("instanceClass", "db.r6g.large")
        if not _INSTANCE_CLASS_RE.match(instance_class):
            raise _fail(s.at("instanceClass"), instance_class, "use an RDS instance class like db.r6g.large")
        version = s.raw.get("engineVersion", "15")
        version = str(version) if isinstance(version, (int, float)) and not isinstance(version, bool) else version
        if not isinstance(version, str) or not _ENGINE_VERSION_RE.match(version):
            raise _fail(s.at("engineVersion"), version, "use the primary's PostgreSQL version, like 15 or 15.7")
        user = s.text("user", "pilotlight")
        if not _DBNAME_RE.match(user):
            raise _fail(s.at("user"), user, "use a PostgreSQL role name (letters, digits, underscore)")
        secret = s.raw.get("credentialsSecretArn") or None
        if secret is not None and (not isinstance(secret, str) or not _SECRET_ARN_RE.match(secret)):
            raise _fail(s.at("credentialsSecretArn"), secret, "use a Secrets Manager ARN, arn:aws:secretsmanager:<region>:<account>:secret:<name>")
        if secret is not None and secret.split(":")[3] != primary_region:
            raise _fail(s.at("credentialsSecretArn"), secret, f"use the secret in primaryRegion {primary_region} (replicate "
                        "it to drRegion: the DR side reads the replica)")
        secret_key = s.raw.get("credentialsSecretKmsKeyArn") or None
        if secret_key is not None and (not secret or not isinstance(secret_key, str) or not _KMS_KEY_ARN_RE.match(secret_key)):
            raise _fail(s.at("credentialsSecretKmsKeyArn"), secret_key, "use the KMS key ARN of credentialsSecretArn's "
                        "secret, arn:aws:kms:<region>:<account>:key/<id> (only with credentialsSecretArn)")
        iam_auth = s.flag("iamAuth", False)
        if iam_auth and secret:
            raise _fail(s.at("iamAuth"), iam_auth, "choose one: iamAuth or credentialsSecretArn")
        resource_id = s.raw.get("resourceId") or None
        if iam_auth and (not isinstance(resource_id, str) or not _RESOURCE_ID_RE.match(resource_id)):
            raise _fail(s.at("resourceId"), resource_id, "iamAuth needs the primary's DbiResourceId, db-<uppercase letters and digits> "
                        "(aws rds describe-db-instances --query 'DBInstances[0].DbiResourceId')")
        dbs.append(
            DatabaseConfig(
                name=name,
                db_name=db_name,
                primary_arn=arn,
                primary_host=host,
                port=s.integer("port", 5432, 1, 65535),
                record_name=record,
                instance_class=instance_class,
                engine_version=version,
                generation=s.integer(
                    "generation", 0, 0, MAX_GENERATION,
                    "use the generation `pilotlight failback` printed (0 until the first failback)"),
                user=user,
                credentials_secret_arn=secret,
                iam_auth=iam_auth,
                resource_id=resource_id if iam_auth else None,
                credentials_secret_key_arn=secret_key,
                application=parse_application(s.raw.get("application"), s.at("application"), (primary_region, dr_region)),
                smoke_checks=parse_smoke_checks(s.raw.get("smokeChecks"), s.at("smokeChecks")),
            )
        )
    for attr, label in (("name", "name"), ("record_name", "recordName"), ("primary_arn", "primaryArn")):
        seen: set[str] = set()
        for i, db in enumerate(dbs):
            value = getattr(db, attr)
            if value in seen:
                raise _fail(f"databases[{i}].{label}", value, f"duplicate {label}; every database needs its own")
            seen.add(value)
    if len(accounts) > 1:
        raise _fail("databases", sorted(accounts), "all primary databases must be in one AWS account")
    return tuple(dbs)


def _standby(top: _Section, databases: tuple[DatabaseConfig, ...]) -> StandbyConfig:
    s = top.section(
        "standby",
        (
            "vpcId",
            "subnetIds",
            "allowedCidrs",
            "allowedSecurityGroupIds",
            "backupRetentionDays",
            "performanceInsights",
            "monitoringIntervalSeconds",
            "parameterGroupFamily",
            "deletionProtection",
            "multiAzWhenPromoted",
            "maxAllocatedStorageGb",
        ),
    )
    vpc = s.text("vpcId", fix="set the DR-region VPC id (vpc-...)")
    if not vpc.startswith("vpc-"):
        raise _fail(s.at("vpcId"), vpc, "use a VPC id like vpc-0abc...")
    subnets = s.texts("subnetIds")
    if len(subnets) < 2 or not all(x.startswith("subnet-") for x in subnets):
        raise _fail(s.at("subnetIds"), list(subnets), "list at least two subnet ids (subnet-...) in different AZs")
    cidrs = s.texts("allowedCidrs")
    for cidr in cidrs:
        try:
            net = ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            raise _fail(s.at("allowedCidrs"), cidr, "use CIDR blocks like 10.20.0.0/16") from None
        if net.prefixlen == 0:
            raise _fail(s.at("allowedCidrs"), cidr, "never open the standby to the whole internet; list your app CIDRs")
    groups = s.texts("allowedSecurityGroupIds")
    if not all(g.startswith("sg-") for g in groups):
        raise _fail(s.at("allowedSecurityGroupIds"), list(groups), "use security group ids like sg-0abc...")
    monitoring = s.integer("monitoringIntervalSeconds", 0, 0, 60)
    if monitoring not in MONITORING_INTERVALS:
        raise _fail(s.at("monitoringIntervalSeconds"), monitoring, "use one of 0, 1, 5, 10, 15, 30, 60")
    family = s.text("parameterGroupFamily", "postgres15")
    if not re.fullmatch(r"postgres\d+", family):
        raise _fail(s.at("parameterGroupFamily"), family, "use the primary's family, like postgres15")
    for i, db in enumerate(databases):
        # A replica runs its source's major version; RDS refuses a parameter group of another family.
        if family != f"postgres{db.engine_major}":
            raise _fail(s.at("parameterGroupFamily"), family,
                        f"databases[{i}].engineVersion is {db.engine_version}: use postgres{db.engine_major} "
                        f"(one family for every database; protect other major versions in another stack)")
    max_storage = s.integer("maxAllocatedStorageGb", 0, 0, 65536,
                            "use 0 (storage autoscaling off) or the ceiling in GiB, up to 65536")
    return StandbyConfig(
        vpc_id=vpc,
        subnet_ids=subnets,
        allowed_cidrs=cidrs,
        allowed_security_group_ids=groups,
        backup_retention_days=s.integer(
            "backupRetentionDays", 7, 1, 35,
            "use 1 to 35: applied when the standby is promoted (RDS keeps no automated backups of a "
            "PostgreSQL read replica), so the promoted database has point-in-time recovery"
        ),
        performance_insights=s.flag("performanceInsights", False),
        monitoring_interval_seconds=monitoring,
        parameter_group_family=family,
        deletion_protection=s.flag("deletionProtection", True),
        multi_az_when_promoted=s.flag("multiAzWhenPromoted", True),
        max_allocated_storage_gb=max_storage,
    )


def _dns(top: _Section) -> DnsConfig:
    s = top.section("dns", ("zoneId", "zoneName", "ttl", "healthCheck", "routingControl"))
    zone_id = s.text("zoneId", fix="set the existing Route 53 hosted zone id (Z...)")
    if not _ZONE_ID_RE.match(zone_id):
        raise _fail(s.at("zoneId"), zone_id, "use a hosted zone id like Z0123456789ABC")
    zone_name = s.text("zoneName", fix="set the hosted zone's domain, like example.com").rstrip(".").lower()
    if not _HOST_RE.match(zone_name):
        raise _fail(s.at("zoneName"), zone_name, "use a domain name like example.com")
    ttl = s.raw.get("ttl", 30)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1 or ttl > MAX_TTL:
        raise _fail(s.at("ttl"), ttl, f"use 1 to {MAX_TTL} seconds (60 or less recommended) so failover is seen quickly")
    h = s.section(
        "healthCheck", ("type", "fqdn", "path", "port", "intervalSeconds", "failureThreshold", "alarmName")
    )
    kind = h.text("type", "DATABASE").upper()
    if kind not in HEALTH_CHECK_TYPES:
        raise _fail(h.at("type"), kind, f"use one of {', '.join(HEALTH_CHECK_TYPES)}")
    alarm_name = h.raw.get("alarmName") or None
    if kind == "DATABASE":
        fqdn, path = "", ""
    elif kind == "CLOUDWATCH_METRIC":
        if not isinstance(alarm_name, str):
            raise ConfigError(f"{_key(h.at('alarmName'))} is missing: CLOUDWATCH_METRIC checks need the primary-region alarm name")
        fqdn, path = "", ""
    else:
        fqdn = h.text("fqdn", fix="set the public host name Route 53 probes, like api-us-east-1.example.com").rstrip(".")
        if not _HOST_RE.match(fqdn):
            raise _fail(h.at("fqdn"), fqdn, "use a host name like api-us-east-1.example.com")
        path = h.text("path", "/health") if kind != "TCP" else ""
        if path and not path.startswith("/"):
            raise _fail(h.at("path"), path, "start the path with /, like /health")
    interval = h.integer("intervalSeconds", 10, 10, 30)
    if interval not in (10, 30):
        raise _fail(h.at("intervalSeconds"), interval, "Route 53 supports 10 or 30")
    default_port = 80 if kind == "HTTP" else 443
    return DnsConfig(
        zone_id=zone_id,
        zone_name=zone_name,
        ttl=ttl,
        health_check=HealthCheckConfig(
            type=kind,
            fqdn=fqdn,
            path=path,
            port=h.integer("port", default_port, 1, 65535),
            interval_seconds=interval,
            failure_threshold=h.integer("failureThreshold", 3, 1, 10),
            alarm_name=alarm_name,
        ),
        routing_control=s.flag("routingControl", False),
    )


def _vault(top: _Section) -> VaultConfig:
    s = top.section(
        "vault",
        ("objectLock", "tiers", "infrequentAccessAfterDays", "noncurrentVersionDays", "abortMultipartDays",
         "bucketSuffix", "breakGlassPrincipalArn"),
    )
    if s.has("noncurrentVersionDays"):
        raise ConfigError(
            f"{_key(s.at('noncurrentVersionDays'))}: replaced by vault.tiers.<tier>.noncurrentDays (default: the "
            "tier's retentionDays; a shorter value would let a deleted backup vanish before its tier's promise); remove it")
    lock = s.section("objectLock", ("mode", "days"))
    mode = lock.text("mode", "GOVERNANCE").upper()
    if mode not in OBJECT_LOCK_MODES:
        raise _fail(lock.at("mode"), mode, "use GOVERNANCE (default) or COMPLIANCE (cannot be undone)")
    ia_days = s.integer("infrequentAccessAfterDays", 30, 30, 36500, "use 30 or more (S3 minimum for STANDARD_IA)")
    tiers_section = s.section("tiers", tuple(TIER_INTERVALS))
    tiers = {}
    for name, interval in TIER_INTERVALS.items():
        t = tiers_section.section(name, ("prefix", "retentionDays", "noncurrentDays", "archiveAfterDays", "archiveClass"))
        prefix = t.text("prefix", f"{name}/")
        if not _PREFIX_RE.match(prefix):  # object keys are built from it: no '..', no '/' inside
            raise _fail(t.at("prefix"), prefix, f"use lowercase letters, digits, '_' or '-' and one '/' at the end "
                                                f"(at most 64 characters), like {name}/")
        retention = t.integer("retentionDays", DEFAULT_RETENTION_DAYS[name], 1, 36500)
        if retention * 86400 < interval:
            raise _fail(
                t.at("retentionDays"),
                retention,
                f"shorter than the {name} interval ({interval // 86400 or 1} d): keep at least one {name} backup",
            )
        noncurrent = t.integer("noncurrentDays", retention, 1, 36500)
        if noncurrent < retention:
            raise _fail(t.at("noncurrentDays"), noncurrent,
                        f"must be at least retentionDays ({retention}): a deleted {name} backup must stay recoverable "
                        "for as long as the tier promises")
        archive_days = archive_class = None
        if name == "monthly" and not t.has("archiveAfterDays"):
            archive_days, archive_class = 90, "GLACIER_IR"
        if t.has("archiveAfterDays"):
            archive_days = t.integer("archiveAfterDays", None, 1, 36500)
        if archive_days is not None:
            archive_class = t.text("archiveClass", archive_class or "GLACIER_IR").upper()
            if archive_class in UNREADABLE_ARCHIVE_CLASSES:
                raise _fail(t.at("archiveClass"), archive_class,
                            "needs a RestoreObject request before every read, which pilotlight verify/restore do not "
                            "make; use GLACIER_IR (instant retrieval)")
            if archive_class not in ARCHIVE_CLASSES:
                raise _fail(t.at("archiveClass"), archive_class, f"use one of {', '.join(ARCHIVE_CLASSES)}")
            if archive_days >= retention:
                raise _fail(t.at("archiveAfterDays"), archive_days, f"must be less than retentionDays ({retention})")
            if retention > ia_days and archive_days < ia_days + 30:
                raise _fail(
                    t.at("archiveAfterDays"),
                    archive_days,
                    f"objects must stay 30 days in STANDARD_IA (after day {ia_days}): use {ia_days + 30} or more",
                )
        elif t.has("archiveClass"):
            raise ConfigError(f"{_key(t.at('archiveAfterDays'))} is missing: archiveClass needs archiveAfterDays")
        tiers[name] = TierConfig(name, prefix, interval, retention, noncurrent, archive_days, archive_class)
    prefixes = [t.prefix for t in tiers.values()]
    if len(set(prefixes)) != len(prefixes):
        raise _fail(tiers_section.path, prefixes, "every tier needs its own prefix")
    suffix = s.raw.get("bucketSuffix", "account")
    if not isinstance(suffix, str) or not re.fullmatch(r"account|[a-z0-9]{4,16}|none", suffix):
        raise _fail(s.at("bucketSuffix"), suffix,
                    "use 'account' (default: the account id), 4-16 lowercase letters/digits, or 'none' (only for a "
                    "stack whose buckets already exist under the old names: Object-Locked buckets cannot be renamed)")
    break_glass = s.raw.get("breakGlassPrincipalArn") or None
    if break_glass is not None and (not isinstance(break_glass, str)
                                    or not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+", break_glass)):
        raise _fail(s.at("breakGlassPrincipalArn"), break_glass,
                    "use an IAM role or user ARN, arn:aws:iam::<account>:role/<name>, or leave it out for the stack's own")
    return VaultConfig(
        object_lock_mode=mode,
        object_lock_days=lock.integer("days", 7, 1, 36500),
        tiers=MappingProxyType(tiers),
        infrequent_access_after_days=ia_days,
        abort_multipart_days=s.integer("abortMultipartDays", 1, 1, 365),
        bucket_suffix=suffix,
        break_glass_arn=break_glass,
    )


def _alarms(top: _Section) -> AlarmsConfig:
    s = top.section("alarms", ("email", "backupAgeSlack"))
    email = s.raw.get("email") or None
    if email is not None and (not isinstance(email, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email)):
        raise _fail(s.at("email"), email, "use an email address, or leave it empty")
    return AlarmsConfig(email=email, backup_age_slack_seconds=s.duration("backupAgeSlack", "2h"))


def _objectives(top: _Section) -> Mapping[str, Objective]:
    s = top.section("objectives", tuple(SCENARIO_KEYS))
    out = {}
    for key, scenario in SCENARIO_KEYS.items():
        o = s.section(key, ("rto", "rpo"))
        rto, rpo = DEFAULT_OBJECTIVES[scenario]
        out[scenario] = Objective(
            rto_seconds=parse_duration(o.raw.get("rto", rto), o.at("rto")),
            rpo_seconds=parse_duration(o.raw.get("rpo", rpo), o.at("rpo")),
        )
    return MappingProxyType(out)


def _contacts(raw: Any) -> tuple[Contact, ...]:
    """``pilotlight:contacts``: a list in escalation order, each ``{name, role, reach[, escalateAfter]}``."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail("contacts", raw, "use a list in escalation order: - {name: ..., role: ..., reach: ...}")
    out, names = [], set()
    for i, item in enumerate(raw):
        c = _Section(item, f"contacts[{i}]", ("name", "role", "reach", "escalateAfter"))
        name = c.text("name", fix="set the person's or rota's name")
        if name in names:
            raise _fail(c.at("name"), name, "each contact once: the list order is the escalation order")
        names.add(name)
        out.append(Contact(name=name, role=c.text("role", fix="say what they do in an incident, e.g. on-call DBA"),
                           reach=c.text("reach", fix="say how to reach them, e.g. 'pager: +1 555 0100'"),
                           escalate_after_seconds=c.duration("escalateAfter", "0s") or None))
    return tuple(out)


TOP_KEYS = (
    "primaryRegion",
    "drRegion",
    "active",
    "databases",
    "standby",
    "dns",
    "vault",
    "alarms",
    "objectives",
    "jobs",
    "contacts",
)


def parse_config(values: Mapping[str, Any], *, project: str, stack: str) -> StackConfig:
    """Validate ``pilotlight`` config values (keys without the namespace) into a StackConfig.

    The stack handles no password at all (``dbPassword`` is refused with the reason).
    """
    values = {k: v for k, v in values.items() if ":" not in k}
    if "dbPassword" in values:
        # Failover must never rotate credentials: a promoted standby keeps the primary's master password.
        raise ConfigError(
            f"{_key('dbPassword')}: no longer used (a promoted standby keeps the primary's master password, "
            f"failover never changes credentials); remove it: `pulumi config rm {_key('dbPassword')}`"
        )
    top = _Section(values, "", TOP_KEYS)
    primary = _region(top, "primaryRegion")
    dr = _region(top, "drRegion")
    if dr == primary:
        raise _fail("drRegion", dr, f"must differ from primaryRegion ({primary}); pick another region, e.g. us-west-2")
    active = top.text("active", "primary")
    if active not in SIDES:
        raise _fail("active", active, "use primary (normal) or dr (after failover)")
    dns = _dns(top)
    databases = _databases(values.get("databases"), primary, dns.zone_name, dr)
    from stacks.jobsconfig import parse_jobs  # imports this module's section helpers

    return StackConfig(
        project=project,
        stack=stack,
        primary_region=primary,
        dr_region=dr,
        active=active,
        databases=databases,
        standby=_standby(top, databases),
        dns=dns,
        vault=_vault(top),
        alarms=_alarms(top),
        objectives=_objectives(top),
        jobs=parse_jobs(values.get("jobs")),
        contacts=_contacts(values.get("contacts")),
    )


def read_stack_file(path: str | Path) -> tuple[str, str, Mapping[str, Any]]:
    """Project name, stack name and the raw ``config:`` mapping of ``Pulumi.<stack>.yaml``.

    The project name comes from the ``Pulumi.yaml`` beside it. Shared with ``pilotlight check``,
    which hands the raw mapping to the program under mocks.
    """
    import yaml

    path = Path(path)
    match = re.fullmatch(r"Pulumi\.(.+)\.ya?ml", path.name)
    if not match:
        raise ConfigError(f"{path}: stack config files are named Pulumi.<stack>.yaml")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
        project_doc = yaml.safe_load((path.parent / "Pulumi.yaml").read_text()) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"{exc.filename}: not found; run from the project directory") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    config = doc.get("config") or {}
    if not isinstance(config, Mapping):
        raise ConfigError(f"{path}: 'config' must be a mapping of key: value")
    return str(project_doc.get("name", NAMESPACE)), match.group(1), config


def load_stack_file(path: str | Path) -> StackConfig:
    """Read ``Pulumi.<stack>.yaml`` into a StackConfig.

    Secure values (``{secure: ...}``) cannot be decrypted without the Pulumi CLI; they are skipped.
    """
    project, stack, config = read_stack_file(path)
    values = {}
    prefix = f"{NAMESPACE}:"
    for key, value in config.items():
        if str(key).startswith(prefix) and not (isinstance(value, Mapping) and "secure" in value):
            values[str(key)[len(prefix):]] = value
    return parse_config(values, project=project, stack=stack)


def from_pulumi() -> StackConfig:
    """Read the running program's config (structured values arrive as JSON strings)."""
    import pulumi

    cfg = pulumi.Config(NAMESPACE)
    values: dict[str, Any] = {}
    if pulumi.runtime.get_config(f"{NAMESPACE}:dbPassword") is not None:
        parse_config({"dbPassword": None}, project="", stack="")
    for key in TOP_KEYS:
        raw = cfg.get(key)
        if raw is None:
            continue
        try:
            values[key] = json.loads(raw) if raw[:1] in "[{" else _scalar(raw)
        except json.JSONDecodeError:
            raise _fail(key, raw, "structured values must be valid JSON (use `pulumi config set --path`)") from None
    _reject_unknown_runtime_keys()
    return parse_config(values, project=pulumi.get_project(), stack=pulumi.get_stack())


def _scalar(raw: str) -> Any:
    """Pulumi hands scalars over as strings; give numbers and booleans their types back."""
    if raw in ("true", "false"):
        return raw == "true"
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    return raw


def _reject_unknown_runtime_keys() -> None:
    from pulumi.runtime import config as runtime_config

    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    prefix = f"{NAMESPACE}:"
    _Section({k[len(prefix):]: True for k in keys if k.startswith(prefix)}, "", TOP_KEYS)
