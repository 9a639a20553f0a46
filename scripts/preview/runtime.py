"""Run the Pulumi program under Pulumi's mock runtime and record what it registers.

No Pulumi CLI, no provider plugin, no credentials: the program's resources are registered
against :class:`pulumi.runtime.mocks.MockMonitor`, which answers with plausible outputs (ARNs,
endpoints, ids) so every ``apply`` and export runs. The whole run happens inside a fresh
``contextvars.Context``: Pulumi keeps its settings, config and root stack in context variables,
so nothing leaks into the caller (a test session running other mock tests, or a second run).
"""
from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from scripts.preview import awsrules

ACCOUNT = "123456789012"
PROVIDER_PREFIX = "pulumi:providers:"


@dataclass(frozen=True)
class Registered:
    """One registered resource: type token, URN, inputs (camelCase), region, custom or component."""

    type: str
    name: str
    urn: str
    inputs: Mapping[str, Any]
    region: str | None
    custom: bool
    deps: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rule_view: awsrules.Resource | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class MockRun:
    resources: tuple[Registered, ...]
    outputs: Mapping[str, Any]
    stack_urn: str


def config_values(config: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """A stack file's ``config:`` as the CLI hands it to a program: strings, structured values as JSON.

    Secure values cannot be decrypted without the CLI; their keys are returned to report.
    """
    values, secure = {}, []
    for key, value in config.items():
        if isinstance(value, Mapping) and "secure" in value:
            secure.append(str(key))
        elif isinstance(value, str):
            values[str(key)] = value
        elif isinstance(value, bool):
            values[str(key)] = "true" if value else "false"
        else:
            values[str(key)] = json.dumps(value)
    return values, secure


def _short(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def mock_state(type_: str, name: str, inputs: Mapping[str, Any], region: str) -> tuple[str, dict[str, Any]]:
    """A plausible id and output state for a resource, derived from its inputs and region."""
    state = dict(inputs)
    service = type_.split(":")[1].split("/")[0] if type_.count(":") >= 2 else "mock"
    physical = str(inputs.get("bucket") or inputs.get("identifier") or inputs.get("name") or f"{name}-{_short(name)}")
    rid = f"{name}-{_short(type_ + name)}"
    arn = f"arn:aws:{service}:{region}:{ACCOUNT}:{physical}"
    if type_ in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"):
        rid, arn = physical, f"arn:aws:s3:::{physical}"
        state.update(bucket=physical, bucketRegionalDomainName=f"{physical}.s3.{region}.amazonaws.com")
    elif type_ in ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey"):
        primary = str(inputs.get("primaryKeyArn") or "")
        key_id = primary.rsplit("/", 1)[-1] if primary else f"mrk-{_short(name, 32)}"
        rid, arn = key_id, f"arn:aws:kms:{region}:{ACCOUNT}:key/{key_id}"
        state.update(keyId=key_id)
    elif type_ == "aws:kms/alias:Alias":
        arn = f"arn:aws:kms:{region}:{ACCOUNT}:{physical}"
    elif type_ == "aws:rds/instance:Instance":
        host = f"{physical}.mock0000.{region}.rds.amazonaws.com"
        rid, arn = physical, f"arn:aws:rds:{region}:{ACCOUNT}:db:{physical}"
        state.update(address=host, endpoint=f"{host}:{inputs.get('port') or 5432}", identifier=physical,
                     resourceId=f"db-{_short(physical, 16).upper()}")
    elif type_ == "aws:route53/healthCheck:HealthCheck":
        digest = _short(name, 32)
        rid = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    elif type_.startswith("aws:iam/"):
        arn = f"arn:aws:iam::{ACCOUNT}:{service_path(type_)}/{physical}"
    elif type_ == "aws:sns/topic:Topic":
        arn = f"arn:aws:sns:{region}:{ACCOUNT}:{physical}"
    state.setdefault("arn", arn)
    state.setdefault("name", physical)
    return rid, state


def service_path(type_: str) -> str:
    """``aws:iam/role:Role`` -> ``role``: the ARN path segment of an IAM resource."""
    return type_.split("/")[1].split(":")[0].lower()


def run_program(program: Path, project: str, stack: str, config: Mapping[str, str]) -> MockRun:
    """Run ``program`` (a ``__main__.py``) with ``config`` under mocks; raises what the program raises."""
    return contextvars.Context().run(_run, program, project, stack, dict(config))


def _run(program: Path, project: str, stack: str, config: dict[str, str]) -> MockRun:
    import pulumi
    from pulumi.runtime import mocks, rpc, settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    default_region = config.get("aws:region") or "us-east-1"
    recorded: list[Registered] = []
    provider_regions: dict[str, str] = {}

    class Mocks(mocks.Mocks):
        def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict]:
            if args.typ.startswith(PROVIDER_PREFIX):
                return f"{args.name}-provider", dict(args.inputs)
            region = args.inputs.get("region") or provider_regions.get(args.provider or "") or default_region
            return mock_state(args.typ, args.name, args.inputs, region)

        def call(self, args: mocks.MockCallArgs) -> tuple[dict, None]:
            token = args.token
            if token.endswith("getCallerIdentity"):
                return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root", "userId": ACCOUNT}, None
            if token.endswith("getPartition"):
                return {"partition": "aws", "dnsSuffix": "amazonaws.com"}, None
            if token.endswith("getRegion"):
                return {"name": default_region, "region": default_region}, None
            return {}, None

    class Monitor(mocks.MockMonitor):
        def RegisterResource(self, request: Any) -> Any:
            inputs = rpc.deserialize_properties(request.object)
            if request.custom and not request.type.startswith(PROVIDER_PREFIX):
                region = inputs.get("region") or provider_regions.get(request.provider or "") or default_region
                awsrules.check_resource(awsrules.from_request(request.name, request, inputs, region))
            response = super().RegisterResource(request)
            if request.type.startswith(PROVIDER_PREFIX):
                provider_regions[f"{response.urn}::{response.id}"] = inputs.get("region") or default_region
            region = inputs.get("region") or provider_regions.get(request.provider or "")
            deps = {k: tuple(v.urns) for k, v in request.propertyDependencies.items()}
            region = region or (default_region if request.custom else None)
            recorded.append(Registered(request.type, request.name, response.urn, inputs, region, request.custom, deps,
                                       awsrules.from_request(response.urn, request, inputs, region)))
            return response

    pulumi.runtime.set_all_config(config, [])
    mock = Mocks()
    mocks.set_mocks(mock, project=project, stack=stack, preview=False, monitor=Monitor(mock),
                    logger=logging.getLogger("pilotlight.check.program"))
    root = settings.get_root_resource()
    _sync_await(run_pulumi_func(lambda: runpy.run_path(str(program), run_name="__main__")))
    outputs = _sync_await(pulumi.Output.from_input(dict(root.outputs)).future()) or {}
    awsrules.check_stack([r.rule_view for r in recorded if r.custom and not r.type.startswith(PROVIDER_PREFIX)])
    return MockRun(tuple(recorded), outputs, f"urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}")
