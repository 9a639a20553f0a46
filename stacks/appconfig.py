"""Per database: how to stop and start the application around a restore or cutover, and its smoke checks.

Two optional keys of ``pilotlight:databases[i]``::

    application:                  # stopped before the swap/cutover, started after (also when it fails)
      kind: ecs                   # ecs | kubernetes | systemd | command
      cluster: orders-prod        # ecs: UpdateService desiredCount 0, then back to the count read before
      service: orders-api
      region: us-east-1           # ecs: primaryRegion (default) or drRegion
      # kubernetes: deployment, namespace=default, context (kubectl scale, replicas read first)
      # systemd: unit (systemctl stop/start; started again only if it was active)
      # command: stop: [argv...], start: [argv...] (no shell unless you name one)
      timeout: 5m                 # per stop or start
    smokeChecks:                  # after restore, cutover and drills; a failure marks the run FAILED
      - {name: orders readable, sql: "select count(*) > 0 from orders", expect: true}
      - {name: orders are fresh, freshness: "select max(created_at) from orders", maxAge: 2h}
      - {name: api health, url: "https://api.example.com/health", expectStatus: 200}

Parsed here (the program exports both in the contract, ``stacks/outputs.py``); the tools run
them (``scripts/application/``). No secret belongs in either: a command reads its secrets from
its own environment, a URL carries no password.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from stacks.config import ConfigError, _fail, _key, _Section, parse_duration

APPLICATION_KINDS = ("ecs", "kubernetes", "systemd", "command")
SMOKE_KINDS = ("sql", "freshness", "url")
DEFAULT_HOOK_TIMEOUT = "5m"
DEFAULT_CHECK_TIMEOUT = "10s"
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_UNIT = re.compile(r"^[A-Za-z0-9:_.@\\-]+$")
_ECS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$|^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:[a-z]+/[\w/-]+$")
_CREDENTIAL_FLAG = re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key)=")


@dataclass(frozen=True)
class ApplicationConfig:
    """How to stop and start the application that uses one database (also the contract's ``Application``)."""

    kind: str
    timeout_seconds: int
    cluster: str | None = None
    service: str | None = None
    region: str | None = None
    deployment: str | None = None
    namespace: str = "default"
    context: str | None = None
    unit: str | None = None
    stop: tuple[str, ...] = ()
    start: tuple[str, ...] = ()

    def contract(self) -> dict[str, Any]:
        """The contract's ``databases[].application`` (only the fields of its kind)."""
        fields = {"ecs": ("cluster", "service", "region"), "kubernetes": ("deployment", "namespace", "context"),
                  "systemd": ("unit",), "command": ("stop", "start")}[self.kind]
        doc: dict[str, Any] = {"kind": self.kind, "timeoutSeconds": self.timeout_seconds}
        for name in fields:
            value = getattr(self, name)
            if value:
                doc[name] = list(value) if isinstance(value, tuple) else value
        return doc


@dataclass(frozen=True)
class SmokeCheckConfig:
    """One check the service must pass after a recovery: a query's answer, data freshness, or an HTTP status
    (also the contract's ``SmokeCheck``)."""

    name: str
    kind: str
    timeout_seconds: int
    sql: str | None = None
    expect: str | None = None
    max_age_seconds: int | None = None
    url: str | None = None
    expect_status: int = 200

    def contract(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "kind": self.kind, "timeoutSeconds": self.timeout_seconds}
        if self.kind == "url":
            return doc | {"url": self.url, "expectStatus": self.expect_status}
        doc["sql"] = self.sql
        return doc | ({"expect": self.expect} if self.kind == "sql" else {"maxAgeSeconds": self.max_age_seconds})


def parse_application(raw: Any, path: str, regions: tuple[str, str]) -> ApplicationConfig | None:
    """``databases[i].application``: None when absent; ``regions`` are (primaryRegion, drRegion)."""
    if raw is None:
        return None
    s = _Section(raw, path, ("kind", "cluster", "service", "region", "deployment", "namespace", "context", "unit",
                             "stop", "start", "timeout"))
    kind = s.text("kind", fix=f"say how the application is stopped: one of {', '.join(APPLICATION_KINDS)}")
    if kind not in APPLICATION_KINDS:
        raise _fail(s.at("kind"), kind, f"use one of {', '.join(APPLICATION_KINDS)}")
    allowed = {"ecs": {"cluster", "service", "region"}, "kubernetes": {"deployment", "namespace", "context"},
               "systemd": {"unit"}, "command": {"stop", "start"}}[kind]
    for key in ("cluster", "service", "region", "deployment", "namespace", "context", "unit", "stop", "start"):
        if key in s.raw and key not in allowed:
            raise ConfigError(f"{_key(s.at(key))}: not used by kind {kind}; remove it (kind {kind} takes "
                              f"{', '.join(sorted(allowed))})")
    timeout = s.duration("timeout", DEFAULT_HOOK_TIMEOUT)
    if not 1 <= timeout <= 3600:
        raise _fail(s.at("timeout"), s.raw.get("timeout"), "use 1s to 1h: how long one stop or start may take")
    if kind == "ecs":
        cluster = s.text("cluster", fix="set the ECS cluster name (or ARN) of the application's service")
        service = s.text("service", fix="set the ECS service name (or ARN) that uses this database")
        for key, value in (("cluster", cluster), ("service", service)):
            if not _ECS_NAME.match(value):
                raise _fail(s.at(key), value, "use an ECS name (letters, digits, '-' and '_') or its ARN")
        region = s.text("region", regions[0])
        if region not in regions:
            raise _fail(s.at("region"), region, f"use primaryRegion {regions[0]} or drRegion {regions[1]}")
        return ApplicationConfig(kind, timeout, cluster=cluster, service=service, region=region)
    if kind == "kubernetes":
        deployment = s.text("deployment", fix="set the Kubernetes deployment that uses this database")
        namespace = s.text("namespace", "default")
        for key, value in (("deployment", deployment), ("namespace", namespace)):
            if not _K8S_NAME.match(value):
                raise _fail(s.at(key), value, "use a Kubernetes name: lowercase letters, digits, '-' and '.'")
        context = s.text("context") if s.has("context") else None
        return ApplicationConfig(kind, timeout, deployment=deployment, namespace=namespace, context=context)
    if kind == "systemd":
        unit = s.text("unit", fix="set the systemd unit of the application, like orders-api.service")
        if not _UNIT.match(unit):
            raise _fail(s.at("unit"), unit, "use a unit name like orders-api.service")
        return ApplicationConfig(kind, timeout, unit=unit)
    stop, start = (_argv(s, key) for key in ("stop", "start"))
    return ApplicationConfig(kind, timeout, stop=stop, start=start)


def _argv(s: _Section, key: str) -> tuple[str, ...]:
    value = s.raw.get(key)
    if value is None:
        raise ConfigError(f"{_key(s.at(key))} is missing: set the command line that {key}s the application, "
                          f"as a list like [systemctl, {key}, orders-api]")
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise _fail(s.at(key), value, "use a command line as a list of strings, like [/usr/local/bin/app-ctl, "
                                      f"{key}] (wrap a shell line as [sh, -c, '...'])")
    if any(_CREDENTIAL_FLAG.search(v) for v in value):
        raise _fail(s.at(key), "(a command line with a credential)",
                    "never put a password or token on a command line (the stack outputs and logs would carry it); "
                    "let the command read it from its environment or a secrets store")
    return tuple(value)


def parse_smoke_checks(raw: Any, path: str) -> tuple[SmokeCheckConfig, ...]:
    """``databases[i].smokeChecks``: a list, each item exactly one of ``sql``, ``freshness``, ``url``."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(path, raw, "use a list of checks: [{name, sql, expect} | {name, freshness, maxAge} | "
                               "{name, url, expectStatus}]")
    checks, names = [], set()
    for i, item in enumerate(raw):
        s = _Section(item, f"{path}[{i}]", ("name", "sql", "expect", "freshness", "maxAge", "url", "expectStatus",
                                            "timeout"))
        kinds = [k for k in ("sql", "freshness", "url") if k in s.raw]
        if len(kinds) != 1:
            raise ConfigError(f"{_key(s.path)}: give exactly one of sql (with expect), freshness (with maxAge) or url "
                              f"(with expectStatus); found {', '.join(kinds) or 'none'}")
        kind = "freshness" if kinds[0] == "freshness" else kinds[0]
        name = s.text("name", fix="name the check, like 'orders readable' (reports list checks by name)")
        if name in names:
            raise _fail(s.at("name"), name, "every smoke check of a database needs its own name")
        names.add(name)
        timeout = s.duration("timeout", DEFAULT_CHECK_TIMEOUT)
        if not 1 <= timeout <= 600:
            raise _fail(s.at("timeout"), s.raw.get("timeout"), "use 1s to 10m")
        if kind == "url":
            checks.append(_url_check(s, name, timeout))
            continue
        query = s.text(kinds[0], fix="set a single SELECT")
        if ";" in query.rstrip().rstrip(";"):
            raise _fail(s.at(kinds[0]), query, "use one statement (it runs read-only, with a timeout)")
        if kind == "sql":
            if "expect" not in s.raw or s.raw["expect"] is None:
                raise ConfigError(f"{_key(s.at('expect'))} is missing: set the value the query's first column must "
                                  "return, like true or 1000")
            for stray in ("maxAge", "expectStatus"):
                if stray in s.raw:
                    raise ConfigError(f"{_key(s.at(stray))}: not used by a sql check; remove it")
            checks.append(SmokeCheckConfig(name, "sql", timeout, sql=query, expect=expected_text(s.raw["expect"])))
        else:
            for stray in ("expect", "expectStatus"):
                if stray in s.raw:
                    raise ConfigError(f"{_key(s.at(stray))}: not used by a freshness check; remove it")
            if "maxAge" not in s.raw:
                raise ConfigError(f"{_key(s.at('maxAge'))} is missing: how old the newest row may be, like 2h")
            max_age = parse_duration(s.raw["maxAge"], s.at("maxAge"))
            if max_age < 1:
                raise _fail(s.at("maxAge"), s.raw["maxAge"], "use a positive duration like 15m")
            checks.append(SmokeCheckConfig(name, "freshness", timeout, sql=query, max_age_seconds=max_age))
    return tuple(checks)


def _url_check(s: _Section, name: str, timeout: int) -> SmokeCheckConfig:
    url = s.text("url", fix="set an http:// or https:// URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _fail(s.at("url"), url, "use an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise _fail(s.at("url"), "(a URL with credentials)",
                    "a smoke check URL carries no user or password (the stack outputs would); use an unauthenticated "
                    "health endpoint")
    for stray in ("expect", "maxAge"):
        if stray in s.raw:
            raise ConfigError(f"{_key(s.at(stray))}: not used by a url check; remove it")
    status = s.integer("expectStatus", 200, 100, 599)
    return SmokeCheckConfig(name, "url", timeout, url=url, expect_status=status)


def expected_text(value: Any) -> str:
    """An expected value as the tools compare it: the first column's text (true/false, numbers, null)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)
