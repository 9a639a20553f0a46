"""The ``pilotlight:jobs`` section: when and how the scheduled backup and verification tasks run.

Defaults come from the reference runbooks (hourly at :05, daily 02:00 UTC, weekly Sunday
03:00, monthly on the 1st at 04:00; a daily verification). Cron expressions use EventBridge
Scheduler's six-field syntax; ``scripts/preview/awsrules/scheduler.py`` holds the rules they
must follow, this module only checks what a user can get wrong in config.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from stacks.config import TIER_INTERVALS, ConfigError, _fail, _key, _Section

DEFAULT_SCHEDULES = MappingProxyType(
    {
        "hourly": "cron(5 * * * ? *)",
        "daily": "cron(0 2 * * ? *)",
        "weekly": "cron(0 3 ? * SUN *)",
        "monthly": "cron(0 4 1 * ? *)",
    }
)
DEFAULT_VERIFY_SCHEDULE = "cron(30 5 * * ? *)"
VERIFY = "verify"
_CRON_RE = re.compile(r"^cron\((\S+ ){5}\S+\)$")
_TZ_RE = re.compile(r"^(UTC|[A-Z][A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2})$")


@dataclass(frozen=True)
class JobSchedule:
    """One schedule: a Scheduler cron expression evaluated in ``timezone``."""

    cron: str
    timezone: str


@dataclass(frozen=True)
class JobNetwork:
    """Where a side's tasks run: private subnets of an existing VPC."""

    vpc_id: str
    subnet_ids: tuple[str, ...]


@dataclass(frozen=True)
class JobsConfig:
    image: str | None
    """Full image URI; None means the stack's ECR repository at ``image_tag``."""
    image_tag: str
    cpu: int
    memory: int
    ephemeral_storage_gib: int | None
    schedules: Mapping[str, JobSchedule]
    """Per tier (hourly..monthly) plus ``verify``."""
    flexible_window_minutes: int
    retry_attempts: int
    max_event_age_seconds: int
    log_retention_days: int
    primary_network: JobNetwork
    nat: bool
    """False: the subnets have no route out, so the stack declares VPC endpoints for every AWS API the tasks call."""


def _network(s: _Section) -> JobNetwork:
    vpc = s.text("vpcId", fix="set the primary-region VPC the backup jobs run in (vpc-...)")
    if not vpc.startswith("vpc-"):
        raise _fail(s.at("vpcId"), vpc, "use a VPC id like vpc-0abc...")
    subnets = s.texts("subnetIds")
    if not subnets or not all(x.startswith("subnet-") for x in subnets):
        raise _fail(s.at("subnetIds"), list(subnets), "list the private subnet ids (subnet-...) the jobs run in")
    return JobNetwork(vpc, subnets)


def _schedule(raw: Any, path: str, default: str) -> JobSchedule:
    s = _Section(raw, path, ("cron", "timezone"))
    cron = s.text("cron", default)
    if not _CRON_RE.match(cron):
        raise _fail(s.at("cron"), cron, "use Scheduler's six-field form, like cron(5 * * * ? *)")
    tz = s.text("timezone", "UTC")
    if not _TZ_RE.match(tz):
        raise _fail(s.at("timezone"), tz, "use an IANA time zone like UTC or Europe/Paris")
    return JobSchedule(cron, tz)


def _event_age(s: _Section) -> int:
    age = s.duration("maxEventAge", "1h")
    if not 60 <= age <= 86400:
        raise _fail(s.at("maxEventAge"), s.raw.get("maxEventAge"), "use 1m to 24h (how long Scheduler keeps retrying one run)")
    return age


def parse_jobs(raw: Any) -> JobsConfig:
    """Validate ``pilotlight:jobs`` (required: the jobs are what makes the stack run by itself)."""
    if raw is None:
        raise ConfigError(
            f"{_key('jobs.primaryNetwork')} is missing: set the VPC and private subnets the scheduled backups run in"
        )
    s = _Section(
        raw,
        "jobs",
        (
            "image", "imageTag", "cpu", "memory", "ephemeralStorageGiB", "schedules", "flexibleWindowMinutes",
            "retryAttempts", "maxEventAge", "logRetentionDays", "primaryNetwork", "nat",
        ),
    )
    image = s.raw.get("image") or None
    if image is not None and (not isinstance(image, str) or not re.fullmatch(r"[^\s:]+(:[\w.-]+|@sha256:[0-9a-f]{64})", image)):
        raise _fail(s.at("image"), image, "use a full image URI with a tag or digest, like <acct>.dkr.ecr.<region>.amazonaws.com/pilotlight:0.1.0")
    tag = s.text("imageTag", "0.1.0")
    if tag == "latest":
        raise _fail(s.at("imageTag"), tag, "the repository's tags are immutable: name a release tag, like 0.1.0")
    storage = s.raw.get("ephemeralStorageGiB")
    if storage is not None:
        storage = s.integer("ephemeralStorageGiB", None, 21, 200, "use 21 to 200 (GiB; Fargate gives 20 without it)")
    sched = s.section("schedules", (*TIER_INTERVALS, VERIFY))
    schedules = {tier: _schedule(sched.raw.get(tier), sched.at(tier), cron) for tier, cron in DEFAULT_SCHEDULES.items()}
    schedules[VERIFY] = _schedule(sched.raw.get(VERIFY), sched.at(VERIFY), DEFAULT_VERIFY_SCHEDULE)
    return JobsConfig(
        image=image,
        image_tag=tag,
        cpu=s.integer("cpu", 1024, 256, 16384),
        memory=s.integer("memory", 2048, 512, 122880),
        ephemeral_storage_gib=storage,
        schedules=MappingProxyType(schedules),
        flexible_window_minutes=s.integer("flexibleWindowMinutes", 15, 0, 1440, "use 0 (off) to 1440 minutes"),
        retry_attempts=s.integer("retryAttempts", 3, 0, 185),
        max_event_age_seconds=_event_age(s),
        log_retention_days=s.integer("logRetentionDays", 30, 1, 3653),
        primary_network=_network(s.section("primaryNetwork", ("vpcId", "subnetIds"))),
        nat=s.flag("nat", True),
    )
