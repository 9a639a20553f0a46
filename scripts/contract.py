"""The stack outputs contract: what the Pulumi program exports and the companion tools read.

The tools never look at Pulumi internals. They read this document, either from a file
(``--outputs FILE``; the sandbox writes one) or from ``pulumi stack output --json --stack NAME``.
The same document describes a real stack and the local sandbox; the sandbox adds a
``sandbox`` section (emulator endpoints, DNS server, local clusters) that real stacks never have.

Version 1 (``contractVersion: 1``), every top-level key is one ``pulumi.export``::

    contractVersion  int      1
    project, stack   str
    active           str      "primary" | "dr": the side the stack config says serves traffic
    regions          {primary: str, dr: str}
    keys             {primary: {arn, alias}, dr: {arn, alias}}     KMS multi-region key and its replica
    vault            {primary: {bucket, arn}, dr: {bucket, arn},
                      objectLock: {mode, days},
                      tiers: {hourly|daily|weekly|monthly: {prefix, intervalSeconds, slackSeconds, retentionDays}}}
    dns              {zoneId, zoneName, ttl}
    databases        [{name, dbName, port,
                       primary: {identifier, arn, host[, port]},
                       standby: {identifier, arn, host[, port]},
                       dns: {recordName, healthCheckId, primaryTarget, drTarget,
                              [switch: {healthCheckId, threshold: {primary, dr}}],
                              [signalAlarm: {name, region}]},
                        [failback: {generation, primaryIdentifier, standbyIdentifier, standbyUrn}],
                        [promotion: {backupRetentionDays, multiAz}],
                        [restore: {primary|dr: {subnetGroupName, securityGroupIds, parameterGroupName,
                                                kmsKeyId, instanceClass, automatedBackupsArn?, engineVersion?}}],
                        [application: {kind: ecs|kubernetes|systemd|command, timeoutSeconds,
                                       cluster, service, region | deployment, namespace, context? | unit |
                                       stop: [argv], start: [argv]}],
                        [smokeChecks: [{name, kind: sql|freshness|url, timeoutSeconds,
                                        sql, expect | sql, maxAgeSeconds | url, expectStatus}]],
                        [credentials: {user, iamAuth, [secretArn: {primary, dr}]}]}]
                      ``credentials``: how the tools log in to that database: the Secrets Manager secret
                      per region (the DR one is the replica: same ARN, the DR region) or RDS IAM auth
                      as ``user``; the ARNs only, never a value (see :class:`Credentials`)
    alarms           {topicArn, metricNamespace, backupAgeMetric}
    objectives       {scenario: {rtoSeconds, rpoSeconds}} for regional-outage, database-loss,
                      data-corruption, ransomware, accidental-deletion
    recovery         optional {detectionSeconds, healthCheck: {intervalSeconds, failureThreshold}, promotionSeconds}:
                      the stack's own failover figures, from which drill reports project the RTO on AWS
    access           optional, see :class:`Access`: where the tools reach AWS, DNS and PostgreSQL when
                     it is not the default (VPC endpoints, a resolver, a libpq passfile)
    contacts         optional [{name, role, reach[, escalateAfterSeconds]}]: who is called in an incident, in
                     escalation order (the runbook prints them)
    sandbox          optional, see :class:`Sandbox`; read only by ``scripts/sandbox/`` (the tools see
                     only :attr:`Contract.environment`, to name it in a report)

Secrets (database passwords, keys) are never part of the contract. See docs/outputs-contract.md.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from stacks.appconfig import APPLICATION_KINDS, SMOKE_KINDS
from stacks.appconfig import ApplicationConfig as Application  # one shape: what config declares is what the contract carries
from stacks.appconfig import SmokeCheckConfig as SmokeCheck
from stacks.vocabulary import CONTRACT_VERSION, SCENARIOS, SIDES, TIERS

SANDBOX_DIR_ENV = "PILOTLIGHT_SANDBOX_DIR"
SANDBOX_SUBDIR = Path(".pilotlight/sandbox")
SANDBOX_ENVIRONMENT = "sandbox"  # Contract.environment of the local sandbox
OUTPUTS_NAME = "outputs.json"

_REGION_RE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_BUCKET_RE = re.compile(r"^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class ContractError(ValueError):
    """The outputs document is missing, unreadable or not a valid contract; the message is one line."""


def project_root(start: Path | None = None) -> Path | None:
    """The nearest directory at or above ``start`` (default: the working directory) holding Pulumi.yaml."""
    here = (start or Path.cwd()).absolute()
    return next((d for d in (here, *here.parents) if (d / "Pulumi.yaml").is_file()), None)


def default_sandbox_dir() -> Path:
    """Where the sandbox lives, found the same way by every command.

    ``$PILOTLIGHT_SANDBOX_DIR`` when set; else ``.pilotlight/sandbox`` under the project root
    (the nearest directory above the working directory with a Pulumi.yaml), so a command run
    from ``docs/`` finds the sandbox that ``make drill`` started; else under the working directory.
    """
    if os.environ.get(SANDBOX_DIR_ENV):
        return Path(os.environ[SANDBOX_DIR_ENV]).absolute()
    return (project_root() or Path.cwd().absolute()) / SANDBOX_SUBDIR


def default_outputs_file() -> Path:
    """The sandbox's outputs contract: what every command reads without --outputs/--stack."""
    return default_sandbox_dir() / OUTPUTS_NAME


@dataclass(frozen=True)
class Key:
    arn: str
    alias: str


@dataclass(frozen=True)
class Bucket:
    bucket: str
    arn: str


@dataclass(frozen=True)
class Tier:
    name: str
    prefix: str
    interval_seconds: int
    slack_seconds: int
    retention_days: int


@dataclass(frozen=True)
class Endpoint:
    identifier: str
    arn: str
    host: str
    port: int | None = None  # None: the database's ``port``


@dataclass(frozen=True)
class Switch:
    """The calculated Route 53 health check on the PRIMARY record: its threshold picks the active side."""

    health_check_id: str
    threshold: Mapping[str, int]


@dataclass(frozen=True)
class ServiceDns:
    record_name: str
    health_check_id: str
    primary_target: str
    dr_target: str
    switch: Switch | None = None
    signal_alarm: Mapping[str, str] | None = None
    """``{name, region}``: the primary-region alarm on the primary instance that the signal check reads."""



@dataclass(frozen=True)
class Failback:
    """The identifiers the next failback creates (the stack's generation g; see docs/drills.md)."""

    generation: int
    primary_identifier: str
    standby_identifier: str
    standby_urn: str | None = None


@dataclass(frozen=True)
class Promotion:
    """What a promoted standby needs from the promotion call itself (RDS keeps no backups of a replica)."""

    backup_retention_days: int
    multi_az: bool = False


@dataclass(frozen=True)
class RestoreTarget:
    """Where a point-in-time restore in one region lands: the stack's network, parameters and key.

    ``automated_backups_arn`` names the automated backups to restore from in that region (the DR
    region's replicated copy); ``kms_key_id`` is the key the restored instance must end up with
    (RestoreDBInstanceToPointInTime takes no key: it keeps the backups' own).
    """

    subnet_group_name: str
    security_group_ids: tuple[str, ...]
    parameter_group_name: str
    kms_key_id: str
    instance_class: str
    automated_backups_arn: str | None = None
    engine_version: str | None = None


@dataclass(frozen=True)
class Credentials:
    """How the tools log in to one database, read at run time (scripts/postgres/credentials.py).

    ``secret_arns``: the Secrets Manager secret per side's region (JSON with ``password`` and
    usually ``username``, as an RDS-managed master secret has); the DR one is the replica of the
    primary's, so the DR side logs in while the primary region is down. ``iam_auth``: an RDS IAM
    auth token for ``user`` instead of a password.
    """

    user: str
    secret_arns: Mapping[str, str] = field(default_factory=dict)
    iam_auth: bool = False


@dataclass(frozen=True)
class Database:
    name: str
    db_name: str
    port: int
    primary: Endpoint
    standby: Endpoint
    dns: ServiceDns
    failback: Failback | None = None
    promotion: Promotion | None = None
    restore: Mapping[str, RestoreTarget] = field(default_factory=dict)
    credentials: Credentials | None = None
    application: Application | None = None
    smoke_checks: tuple[SmokeCheck, ...] = ()

    def endpoint(self, side: str) -> Endpoint:
        return self.primary if side == "primary" else self.standby

    def port_of(self, side: str) -> int:
        return self.endpoint(side).port or self.port


@dataclass(frozen=True)
class Objective:
    rto_seconds: float
    rpo_seconds: float


# Where the image carries AWS's RDS CA bundle (Dockerfile); verify-full checks RDS endpoints against it.
RDS_CA_BUNDLE = "/usr/local/share/pilotlight/rds-ca/global-bundle.pem"
SSLROOTCERT_ENV = "PILOTLIGHT_SSLROOTCERT"


def default_sslrootcert() -> str:
    """The CA bundle that verifies the databases: ``$PILOTLIGHT_SSLROOTCERT``, else the image's RDS bundle."""
    return os.environ.get(SSLROOTCERT_ENV) or RDS_CA_BUNDLE


@dataclass(frozen=True)
class DatabaseAccess:
    """How the tools log in: ``user``/``admin_user`` None means the database's ``credentials``, else
    libpq's environment (PGUSER, PGPASSWORD).

    TLS: ``verify-full`` by default (the server's certificate must chain to ``sslrootcert`` and
    name the host); ``sslrootcert`` None means :func:`default_sslrootcert`.
    """

    user: str | None = None
    admin_user: str | None = None
    passfile: str | None = None
    sslmode: str = "verify-full"
    sslrootcert: str | None = None


@dataclass(frozen=True)
class Access:
    """Where the tools reach AWS, DNS and the databases, when it is not AWS's public default.

    A real stack may export this too (VPC interface endpoints, a Route 53 Resolver inbound
    endpoint, a passfile on the operator's machine); the sandbox writes its emulator's.
    ``aws_endpoints`` maps a region (or ``route53``) to an endpoint URL; ``credentials_file`` is
    an AWS shared credentials file (never the keys themselves); ``dns_resolver`` is (host, port),
    and the zone's authoritative servers answer on ``authoritative_port``.
    """

    aws_endpoints: Mapping[str, str]
    credentials_file: str | None
    dns_resolver: tuple[str, int] | None
    authoritative_port: int
    database: DatabaseAccess


NO_ACCESS = Access({}, None, None, 53, DatabaseAccess())


@dataclass(frozen=True)
class Cluster:
    """A local PostgreSQL cluster standing in for an RDS instance."""

    host: str
    port: int
    data_dir: str


@dataclass(frozen=True)
class Sandbox:
    """What only the local sandbox has.

    ``aws_endpoints`` maps each region to its own emulator endpoint (one moto behind a
    per-region proxy), so "the primary region is unreachable" can be made true for real.
    ``passfile`` is a libpq password file (mode 0600) so no password is ever in the contract.
    """

    state_dir: str
    aws_endpoints: Mapping[str, str]
    dns_host: str
    dns_port: int
    superuser: str
    app_user: str
    passfile: str
    clusters: Mapping[str, Cluster]


@dataclass(frozen=True)
class Job:
    """One scheduled job (optional ``jobs`` section): what runs, when, and with which environment."""

    name: str
    kind: str
    database: str
    tier: str | None
    side: str
    region: str
    schedule: str
    timezone: str
    command: tuple[str, ...]
    environment: Mapping[str, str]


@dataclass(frozen=True)
class Contact:
    """One incident contact (optional ``contacts`` section, in escalation order)."""

    name: str
    role: str
    reach: str
    escalate_after_seconds: int | None = None


@dataclass(frozen=True)
class Contract:
    project: str
    stack: str
    active: str
    regions: Mapping[str, str]
    keys: Mapping[str, Key]
    buckets: Mapping[str, Bucket]
    object_lock_mode: str
    object_lock_days: int
    tiers: Mapping[str, Tier]
    zone_id: str
    zone_name: str
    ttl: int
    databases: tuple[Database, ...]
    topic_arn: str
    metric_namespace: str
    backup_age_metric: str
    objectives: Mapping[str, Objective]
    sandbox: Sandbox | None
    raw: Mapping[str, Any]
    access: Access = NO_ACCESS
    source: Path | None = None  # the outputs file this was read from; None when read from `pulumi stack output`
    jobs: tuple["Job", ...] = ()
    contacts: tuple["Contact", ...] = ()

    @property
    def environment(self) -> str:
        """What this contract describes, as reports and banners name it: the sandbox or ``stack <name>``.

        The one place the tools learn which it is; they name it, never act on it.
        """
        return SANDBOX_ENVIRONMENT if self.sandbox is not None else f"stack {self.stack}"

    def region(self, side: str) -> str:
        return self.regions[side]

    def database(self, name: str | None = None) -> Database:
        """The named protected database, or the only/first one when no name is given."""
        if name is None:
            return self.databases[0]
        for db in self.databases:
            if db.name == name:
                return db
        known = ", ".join(db.name for db in self.databases)
        raise ContractError(f"unknown database {name!r}; this stack protects: {known}")

    def aws_endpoint(self, side: str) -> str | None:
        """The AWS endpoint URL for a side's region: None for AWS's public endpoint (boto3 picks it)."""
        return self.access.aws_endpoints.get(self.regions[side])


def _get(doc: Mapping[str, Any], path: str) -> Any:
    cur: Any = doc
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            raise ContractError(f"outputs are missing '{path}'; re-run `pulumi up` (or `pilotlight sandbox up`)")
        cur = cur[part]
    return cur


def _str(doc: Mapping[str, Any], path: str) -> str:
    value = _get(doc, path)
    if not isinstance(value, str) or not value:
        raise ContractError(f"outputs '{path}' must be a non-empty string, got {value!r}")
    return value


_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}/$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")  # it names backup ids and S3 keys


def _prefix(doc: Mapping[str, Any], path: str) -> str:
    value = _str(doc, path)
    if not _PREFIX_RE.match(value):
        raise ContractError(f"outputs '{path}' = {value[:40]!r} is not a tier prefix: lowercase letters, digits, "
                            "'_' or '-' ending in one '/', at most 64 characters (object keys are built from it)")
    return value


def _name(doc: Mapping[str, Any], path: str) -> str:
    value = _str(doc, path)
    if not _NAME_RE.match(value):
        raise ContractError(f"outputs '{path}' = {value[:40]!r} cannot name backups: ASCII letters, digits, '_' and "
                            "'-', starting with a letter or digit, at most 63 characters; rename it in the stack config")
    return value


def _int(doc: Mapping[str, Any], path: str) -> int:
    value = _get(doc, path)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ContractError(f"outputs '{path}' must be a non-negative number, got {value!r}")
    return int(value)


def _bool(doc: Mapping[str, Any], path: str) -> bool:
    value = _get(doc, path)
    if not isinstance(value, bool):
        raise ContractError(f"outputs '{path}' must be true or false, got {value!r}")
    return value


def parse(doc: Mapping[str, Any]) -> Contract:
    """Validate an outputs document and return it typed; raises ContractError with one line."""
    if not isinstance(doc, Mapping):
        raise ContractError("outputs must be a JSON object")
    version = doc.get("contractVersion")
    if version != CONTRACT_VERSION:
        raise ContractError(
            f"outputs contractVersion is {version!r}, these tools read version {CONTRACT_VERSION}; "
            "upgrade the stack (`pulumi up`) or the tools"
        )
    regions = {side: _str(doc, f"regions.{side}") for side in SIDES}
    for side, region in regions.items():
        if not _REGION_RE.match(region):
            raise ContractError(f"outputs 'regions.{side}' is not an AWS region: {region!r}")
    keys = {side: Key(_str(doc, f"keys.{side}.arn"), _str(doc, f"keys.{side}.alias")) for side in SIDES}
    buckets = {}
    for side in SIDES:
        name = _str(doc, f"vault.{side}.bucket")
        if not _BUCKET_RE.match(name):
            raise ContractError(f"outputs 'vault.{side}.bucket' is not a valid bucket name: {name!r}")
        buckets[side] = Bucket(name, _str(doc, f"vault.{side}.arn"))
    tiers = {
        tier: Tier(
            name=tier,
            prefix=_prefix(doc, f"vault.tiers.{tier}.prefix"),
            interval_seconds=_int(doc, f"vault.tiers.{tier}.intervalSeconds"),
            slack_seconds=_int(doc, f"vault.tiers.{tier}.slackSeconds"),
            retention_days=_int(doc, f"vault.tiers.{tier}.retentionDays"),
        )
        for tier in TIERS
    }
    databases = []
    raw_dbs = _get(doc, "databases")
    if not isinstance(raw_dbs, list) or not raw_dbs:
        raise ContractError("outputs 'databases' must be a non-empty list")
    for i, item in enumerate(raw_dbs):
        p = f"databases.{i}"
        wrapped = {"databases": {str(i): item}}
        databases.append(
            Database(
                name=_name(wrapped, f"{p}.name"),
                db_name=_str(wrapped, f"{p}.dbName"),
                port=_int(wrapped, f"{p}.port"),
                primary=_endpoint(wrapped, f"{p}.primary"),
                standby=_endpoint(wrapped, f"{p}.standby"),
                dns=ServiceDns(
                    *(
                        _str(wrapped, f"{p}.dns.{k}")
                        for k in ("recordName", "healthCheckId", "primaryTarget", "drTarget")
                    ),
                    switch=_switch(wrapped, f"{p}.dns.switch") if item.get("dns", {}).get("switch") else None,
                    signal_alarm={k: _str(wrapped, f"{p}.dns.signalAlarm.{k}") for k in ("name", "region")}
                    if item.get("dns", {}).get("signalAlarm") else None,
                ),
                restore=_parse_restore(wrapped, p, item.get("restore") if isinstance(item, Mapping) else None),
                failback=_failback(wrapped, f"{p}.failback") if item.get("failback") else None,
                promotion=Promotion(_int(wrapped, f"{p}.promotion.backupRetentionDays"),
                                    bool(item["promotion"].get("multiAz"))) if item.get("promotion") else None,
                credentials=_credentials(wrapped, f"{p}.credentials") if item.get("credentials") else None,
                application=_application(wrapped, f"{p}.application", regions) if item.get("application") else None,
                smoke_checks=_smoke_checks(wrapped, f"{p}.smokeChecks") if item.get("smokeChecks") else (),
            )
        )
    objectives = {
        name: Objective(
            rto_seconds=float(_int(doc, f"objectives.{name}.rtoSeconds")),
            rpo_seconds=float(_int(doc, f"objectives.{name}.rpoSeconds")),
        )
        for name in SCENARIOS
    }
    active = _str(doc, "active")
    if active not in SIDES:
        raise ContractError(f"outputs 'active' must be 'primary' or 'dr', got {active!r}")
    return Contract(
        project=_str(doc, "project"),
        stack=_str(doc, "stack"),
        active=active,
        regions=regions,
        keys=keys,
        buckets=buckets,
        object_lock_mode=_str(doc, "vault.objectLock.mode"),
        object_lock_days=_int(doc, "vault.objectLock.days"),
        tiers=tiers,
        zone_id=_str(doc, "dns.zoneId"),
        zone_name=_str(doc, "dns.zoneName"),
        ttl=_int(doc, "dns.ttl"),
        databases=tuple(databases),
        topic_arn=_str(doc, "alarms.topicArn"),
        metric_namespace=_str(doc, "alarms.metricNamespace"),
        backup_age_metric=_str(doc, "alarms.backupAgeMetric"),
        objectives=objectives,
        sandbox=_parse_sandbox(doc["sandbox"], regions.values()) if doc.get("sandbox") else None,
        raw=doc,
        jobs=_parse_jobs(doc.get("jobs") or []),
        contacts=_parse_contacts(doc.get("contacts") or []),
        access=_parse_access(doc["access"]) if doc.get("access") else NO_ACCESS,
    )


def _endpoint(doc: Mapping[str, Any], path: str) -> Endpoint:
    port = _int(doc, f"{path}.port") if "port" in _get(doc, path) else None
    return Endpoint(*(_str(doc, f"{path}.{k}") for k in ("identifier", "arn", "host")), port=port)


def _switch(doc: Mapping[str, Any], path: str) -> Switch:
    thresholds = {side: _int(doc, f"{path}.threshold.{side}") for side in SIDES}
    if thresholds["dr"] <= thresholds["primary"]:
        raise ContractError(f"outputs '{path}.threshold': dr must exceed primary, got {thresholds}")
    return Switch(_str(doc, f"{path}.healthCheckId"), thresholds)


def _texts(doc: Mapping[str, Any], path: str) -> tuple[str, ...]:
    value = _get(doc, path)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ContractError(f"outputs '{path}' must be a command line (a non-empty list of strings), got {value!r}")
    return tuple(value)


def _application(doc: Mapping[str, Any], path: str, regions: Mapping[str, str]) -> Application:
    kind = _str(doc, f"{path}.kind")
    if kind not in APPLICATION_KINDS:
        raise ContractError(f"outputs '{path}.kind' must be one of {', '.join(APPLICATION_KINDS)}, got {kind!r}")
    raw, timeout = _get(doc, path), _int(doc, f"{path}.timeoutSeconds")
    if kind == "ecs":
        region = _str(doc, f"{path}.region")
        if region not in regions.values():
            raise ContractError(f"outputs '{path}.region' = {region!r} is neither of the stack's regions")
        return Application(kind, timeout, cluster=_str(doc, f"{path}.cluster"), service=_str(doc, f"{path}.service"),
                           region=region)
    if kind == "kubernetes":
        return Application(kind, timeout, deployment=_str(doc, f"{path}.deployment"),
                           namespace=_str(doc, f"{path}.namespace") if "namespace" in raw else "default",
                           context=_str(doc, f"{path}.context") if raw.get("context") else None)
    if kind == "systemd":
        return Application(kind, timeout, unit=_str(doc, f"{path}.unit"))
    return Application(kind, timeout, stop=_texts(doc, f"{path}.stop"), start=_texts(doc, f"{path}.start"))


def _nest(path: str, value: Any) -> dict[str, Any]:
    """``value`` placed at ``path`` (``a.0.b``), so :func:`_get` reads it and its errors name the whole path."""
    for part in reversed(path.split(".")):
        value = {part: value}
    return value


def _smoke_checks(doc: Mapping[str, Any], path: str) -> tuple[SmokeCheck, ...]:
    raw = _get(doc, path)
    if not isinstance(raw, list):
        raise ContractError(f"outputs '{path}' must be a list")
    checks = []
    for i, item in enumerate(raw):
        p = f"{path}.{i}"
        if not isinstance(item, Mapping):
            raise ContractError(f"outputs '{p}' must be an object")
        kind, w = item.get("kind"), _nest(p, item)
        if kind not in SMOKE_KINDS:
            raise ContractError(f"outputs '{p}.kind' must be one of {', '.join(SMOKE_KINDS)}, got {kind!r}")
        base = dict(name=_str(w, f"{p}.name"), kind=kind, timeout_seconds=_int(w, f"{p}.timeoutSeconds"))
        if kind == "url":
            checks.append(SmokeCheck(**base, url=_str(w, f"{p}.url"), expect_status=_int(w, f"{p}.expectStatus")))
        elif kind == "sql":
            if not isinstance(item.get("expect"), str):
                raise ContractError(f"outputs '{p}.expect' must be a string, got {item.get('expect')!r}")
            checks.append(SmokeCheck(**base, sql=_str(w, f"{p}.sql"), expect=item["expect"]))
        else:
            checks.append(SmokeCheck(**base, sql=_str(w, f"{p}.sql"), max_age_seconds=_int(w, f"{p}.maxAgeSeconds")))
    return tuple(checks)
_SECRET_ARN_RE = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@!-]+$")


def _credentials(doc: Mapping[str, Any], path: str) -> Credentials:
    raw = _get(doc, path)
    arns = raw.get("secretArn") or {}
    if not isinstance(arns, Mapping) or not set(arns) <= set(SIDES):
        raise ContractError(f"outputs '{path}.secretArn' must map primary/dr to a Secrets Manager secret ARN")
    for side in arns:
        if not _SECRET_ARN_RE.match(_str(doc, f"{path}.secretArn.{side}")):
            raise ContractError(f"outputs '{path}.secretArn.{side}' is not a Secrets Manager secret ARN")
    iam_auth = _bool(doc, f"{path}.iamAuth") if "iamAuth" in raw else False
    if iam_auth and arns:
        raise ContractError(f"outputs '{path}': iamAuth and secretArn exclude each other")
    return Credentials(user=_str(doc, f"{path}.user"), secret_arns=dict(arns), iam_auth=iam_auth)


def _failback(doc: Mapping[str, Any], path: str) -> Failback:
    urn = _get(doc, path).get("standbyUrn")
    return Failback(_int(doc, f"{path}.generation"), _str(doc, f"{path}.primaryIdentifier"),
                    _str(doc, f"{path}.standbyIdentifier"), urn if isinstance(urn, str) and urn else None)


def _parse_access(raw: Mapping[str, Any]) -> Access:
    doc = {"access": raw}
    endpoints = raw.get("awsEndpoints", {})
    if not isinstance(endpoints, Mapping) or not all(isinstance(v, str) for v in endpoints.values()):
        raise ContractError("outputs 'access.awsEndpoints' must map region (or route53) to an endpoint URL")
    resolver = None
    if raw.get("dnsResolver"):
        resolver = (_str(doc, "access.dnsResolver.host"), _int(doc, "access.dnsResolver.port"))
    database = raw.get("database") or {}
    if not isinstance(database, Mapping):
        raise ContractError("outputs 'access.database' must be an object")
    return Access(
        aws_endpoints=dict(endpoints),
        credentials_file=_str(doc, "access.credentialsFile") if raw.get("credentialsFile") else None,
        dns_resolver=resolver,
        authoritative_port=_int(doc, "access.authoritativePort") if "authoritativePort" in raw else 53,
        database=DatabaseAccess(
            user=database.get("user"), admin_user=database.get("adminUser"),
            passfile=database.get("passfile"), sslmode=database.get("sslmode", "verify-full"),
            sslrootcert=database.get("sslrootcert")),
    )


def _parse_jobs(raw: Any) -> tuple[Job, ...]:
    if not isinstance(raw, list):
        raise ContractError("outputs 'jobs' must be a list")
    jobs = []
    for i, item in enumerate(raw):
        w = {"jobs": {str(i): item}}
        p = f"jobs.{i}"
        command = _get(w, f"{p}.command")
        env = _get(w, f"{p}.environment")
        if not isinstance(command, list) or not all(isinstance(c, str) for c in command) or not isinstance(env, Mapping):
            raise ContractError(f"outputs '{p}' needs a command (list of strings) and an environment (object)")
        jobs.append(Job(
            name=_str(w, f"{p}.name"), kind=_str(w, f"{p}.kind"), database=_str(w, f"{p}.database"),
            tier=item.get("tier"), side=_str(w, f"{p}.side"), region=_str(w, f"{p}.region"),
            schedule=_str(w, f"{p}.schedule"), timezone=_str(w, f"{p}.timezone"),
            command=tuple(command), environment=dict(env),
        ))
    return tuple(jobs)


def _parse_contacts(raw: Any) -> tuple[Contact, ...]:
    if not isinstance(raw, list):
        raise ContractError("outputs 'contacts' must be a list (escalation order)")
    out = []
    for i, item in enumerate(raw):
        w = {"contacts": {str(i): item}}
        after = item.get("escalateAfterSeconds") if isinstance(item, Mapping) else None
        out.append(Contact(*(_str(w, f"contacts.{i}.{k}") for k in ("name", "role", "reach")),
                           escalate_after_seconds=_int(w, f"contacts.{i}.escalateAfterSeconds") if after is not None
                           else None))
    return tuple(out)


def _parse_restore(wrapped: Mapping[str, Any], p: str, raw: Any) -> dict[str, RestoreTarget]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not set(raw) <= set(SIDES):
        raise ContractError(f"outputs '{p}.restore' must map primary/dr to restore settings")
    out = {}
    for side in raw:
        q = f"{p}.restore.{side}"
        groups = _get(wrapped, f"{q}.securityGroupIds")
        if not isinstance(groups, list) or not groups or not all(isinstance(g, str) and g for g in groups):
            raise ContractError(f"outputs '{q}.securityGroupIds' must be a non-empty list of security group ids")
        arn = raw[side].get("automatedBackupsArn")
        out[side] = RestoreTarget(
            subnet_group_name=_str(wrapped, f"{q}.subnetGroupName"),
            security_group_ids=tuple(groups),
            parameter_group_name=_str(wrapped, f"{q}.parameterGroupName"),
            kms_key_id=_str(wrapped, f"{q}.kmsKeyId"),
            instance_class=_str(wrapped, f"{q}.instanceClass"),
            automated_backups_arn=_str(wrapped, f"{q}.automatedBackupsArn") if arn is not None else None,
            engine_version=_str(wrapped, f"{q}.engineVersion") if raw[side].get("engineVersion") is not None else None,
        )
    return out


def _parse_sandbox(raw: Mapping[str, Any], regions) -> Sandbox:
    doc = {"sandbox": raw}
    clusters = {
        side: Cluster(
            host=_str(doc, f"sandbox.clusters.{side}.host"),
            port=_int(doc, f"sandbox.clusters.{side}.port"),
            data_dir=_str(doc, f"sandbox.clusters.{side}.dataDir"),
        )
        for side in SIDES
    }
    endpoints = _get(doc, "sandbox.awsEndpoints")
    if not isinstance(endpoints, Mapping):
        raise ContractError("outputs 'sandbox.awsEndpoints' must map region to URL")
    for region in regions:
        if not isinstance(endpoints.get(region), str) or not endpoints[region].startswith(("http://", "https://")):
            raise ContractError(f"outputs 'sandbox.awsEndpoints.{region}' must be the emulator's URL, got "
                                f"{endpoints.get(region)!r}; re-run `pilotlight sandbox up`")
    return Sandbox(
        state_dir=_str(doc, "sandbox.stateDir"),
        aws_endpoints=dict(endpoints),
        dns_host=_str(doc, "sandbox.dns.host"),
        dns_port=_int(doc, "sandbox.dns.port"),
        superuser=_str(doc, "sandbox.superuser"),
        app_user=_str(doc, "sandbox.appUser"),
        passfile=_str(doc, "sandbox.passfile"),
        clusters=clusters,
    )


def load_file(path: str | Path) -> Contract:
    """Read an outputs file (``pulumi stack output --json > FILE`` or the sandbox's)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = ""
        if path.absolute() == default_outputs_file():
            hint = (f" (no sandbox there: start one with `pilotlight sandbox up`, or point {SANDBOX_DIR_ENV} "
                    "at a running sandbox's directory)")
        raise ContractError(f"outputs file not found: {path}{hint}") from None
    except UnicodeDecodeError as exc:
        raise ContractError(f"outputs file {path} is not UTF-8 text (byte {exc.start}); "
                            "write it with `pulumi stack output --json > FILE`") from None
    except OSError as exc:
        raise ContractError(f"cannot read outputs file {path}: {exc.strerror}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"outputs file {path} is not JSON (line {exc.lineno}: {exc.msg})") from None
    return dataclasses.replace(parse(doc), source=path)


def load_stack(stack: str) -> Contract:
    """Read a real stack's outputs with the Pulumi CLI (``pulumi stack output --json``)."""
    if not re.fullmatch(r"[A-Za-z0-9_.\-/]+", stack):
        raise ContractError(f"invalid stack name {stack!r}")
    if shutil.which("pulumi") is None:
        raise ContractError("--stack needs the Pulumi CLI on PATH; or pass --outputs FILE")
    proc = subprocess.run(
        ["pulumi", "stack", "output", "--json", "--stack", stack],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ContractError(f"`pulumi stack output --stack {stack}` failed: {last}")
    try:
        return parse(json.loads(proc.stdout))
    except json.JSONDecodeError:
        raise ContractError(f"`pulumi stack output --stack {stack}` did not print JSON") from None
