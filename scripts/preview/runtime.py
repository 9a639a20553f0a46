"""The one mock runtime: run the Pulumi program under Pulumi's mocks and record what it registers.

No Pulumi CLI, no provider plugin, no credentials: the program's resources are registered
against :class:`pulumi.runtime.mocks.MockMonitor`, which answers with plausible outputs (ARNs,
endpoints, ids, derived from the resource's provider region, so a resource in the wrong region
shows in its ARN) so every ``apply`` and export runs. The stock monitor hands
``Mocks.new_resource`` only type, name, inputs and provider; the recording monitor also keeps the
options from the raw request (``protect``, ``retainOnDelete``, ``ignoreChanges``,
``deleteBeforeReplace``, ``parent``, ``dependencies``), so tests can assert the safety options,
and checks every resource against AWS's own rules (:mod:`scripts.preview.awsrules`).

Two entry points over one runtime: :func:`run_program` runs a project's ``__main__.py`` as the
engine would (``pilotlight check``); :func:`run_stack` builds a typed config's stack directly
(program tests, benchmarks). Each run happens inside a fresh ``contextvars.Context``: Pulumi
keeps its settings, config and root stack in context variables, so nothing leaks into the caller
(a test session running other mock runs, or a second run).
"""
from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from scripts.preview import awsrules

ACCOUNT = "123456789012"
PROVIDER_PREFIX = "pulumi:providers:"
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class Registration:
    """One registered resource: what the engine would receive, options included."""

    urn: str
    type: str
    name: str
    inputs: Mapping[str, Any]
    region: str | None
    custom: bool
    provider: str
    parent: str
    protect: bool
    retain_on_delete: bool
    ignore_changes: list[str]
    delete_before_replace: bool
    dependencies: list[str]
    deps: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Dependencies per input property (what a stack policy sees)."""
    id: str | None = None
    rule_view: awsrules.Resource | None = field(default=None, compare=False, repr=False)


@dataclass
class Run:
    resources: dict[str, Registration]
    """Every registration but the root Stack, by URN (providers and components included)."""
    urns: list[str]
    """Every registration in order, duplicates included (the dict above would hide them)."""
    outputs: Mapping[str, Any]
    """The root stack's exports."""
    stack_urn: str
    document: Any = None
    """``run_stack``: the returned stack's ``document``; ``run_program``: the exports."""
    stack: Any = field(default=None, repr=False)
    """What the program returned (``run_stack``: the built stack)."""
    calls: list[str] = field(default_factory=list)
    """Provider functions the program invoked (token per call)."""

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.resources.values() if r.type == typ]

    def named(self, name: str) -> Registration:
        for r in self.resources.values():
            if r.name == name:
                return r
        raise KeyError(f"no resource named {name!r}; have {sorted(r.name for r in self.resources.values())}")


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
    elif type_ == "aws:ec2/securityGroup:SecurityGroup":
        rid = "sg-" + _short(name, 17)
    elif type_.startswith("aws:iam/"):
        arn = f"arn:aws:iam::{ACCOUNT}:{service_path(type_)}/{physical}"
    elif type_ == "aws:sns/topic:Topic":
        arn = f"arn:aws:sns:{region}:{ACCOUNT}:{physical}"
    state.setdefault("arn", arn)
    state.setdefault("name", physical)
    state.setdefault("id", rid)
    return rid, state


def service_path(type_: str) -> str:
    """``aws:iam/role:Role`` -> ``role``: the ARN path segment of an IAM resource."""
    return type_.split("/")[1].split(":")[0].lower()


def run_program(program: Path, project: str, stack: str, config: Mapping[str, str]) -> Run:
    """Run ``program`` (a ``__main__.py``) with ``config`` under mocks; raises what the program raises."""
    return contextvars.Context().run(_run, lambda: runpy.run_path(str(program), run_name="__main__"),
                                     project, stack, dict(config))


def run_stack(cfg: Any, *, config: Mapping[str, str] | None = None, program: Callable[[], Any] | None = None) -> Run:
    """Evaluate ``program`` (default: ``stacks.dr.build(cfg)``) under mocks; its result is ``Run.stack``.

    ``cfg`` is a :class:`stacks.config.StackConfig` (project and stack name); ``config`` is what the
    engine would hand the program (keys ending in ``dbPassword`` are secrets).
    """
    from stacks.dr import build

    return contextvars.Context().run(_run, program or (lambda: build(cfg)), cfg.project, cfg.stack, dict(config or {}))


def _run(program: Callable[[], Any], project: str, stack: str, config: dict[str, str]) -> Run:
    import pulumi
    from pulumi.runtime import mocks, rpc, settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    default_region = config.get("aws:region") or "us-east-1"
    recorded: list[Registration] = []
    provider_regions: dict[str, str] = {}
    calls: list[str] = []

    def region_of(request: Any, inputs: Mapping[str, Any]) -> str | None:
        region = inputs.get("region") or provider_regions.get(request.provider or "")
        return region or (default_region if request.custom else None)

    class Mocks(mocks.Mocks):
        def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict]:
            if args.typ.startswith(PROVIDER_PREFIX):
                return f"{args.name}-provider", dict(args.inputs)
            region = args.inputs.get("region") or provider_regions.get(args.provider or "") or default_region
            return mock_state(args.typ, args.name, args.inputs, region)

        def call(self, args: mocks.MockCallArgs) -> tuple[dict, None]:
            token = args.token
            calls.append(token)
            if token.endswith("getCallerIdentity"):
                return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root", "userId": ACCOUNT}, None
            if token.endswith("getPartition"):
                return {"partition": "aws", "dnsSuffix": "amazonaws.com"}, None
            if token.endswith("getRegion"):
                return {"name": default_region, "region": default_region}, None
            return {}, None

    class RecordingMonitor(mocks.MockMonitor):
        def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
            inputs = rpc.deserialize_properties(request.object)
            if request.custom and not request.type.startswith(PROVIDER_PREFIX):
                awsrules.check_resource(awsrules.from_request(request.name, request, inputs, region_of(request, inputs)))
            response = super().RegisterResource(request)
            if request.type.startswith(PROVIDER_PREFIX):
                provider_regions[f"{response.urn}::{response.id}"] = inputs.get("region") or default_region
            region = region_of(request, inputs)
            recorded.append(Registration(
                urn=response.urn, type=request.type, name=request.name, inputs=dict(inputs), region=region,
                custom=request.custom, provider=request.provider, parent=request.parent,
                protect=bool(request.protect), retain_on_delete=bool(request.retainOnDelete),
                ignore_changes=list(request.ignoreChanges), delete_before_replace=bool(request.deleteBeforeReplace),
                dependencies=list(request.dependencies),
                deps={k: tuple(v.urns) for k, v in request.propertyDependencies.items()},
                id=response.id or None, rule_view=awsrules.from_request(response.urn, request, inputs, region)))
            return response

    pulumi.runtime.set_all_config(config, [k for k in config if k.endswith("dbPassword")])
    mock = Mocks()
    mocks.set_mocks(mock, project=project, stack=stack, preview=False, monitor=RecordingMonitor(mock),
                    logger=logging.getLogger("pilotlight.preview.program"))
    root = settings.get_root_resource()
    returned: dict[str, Any] = {}
    _sync_await(run_pulumi_func(lambda: returned.update(value=program())))
    outputs = _sync_await(pulumi.Output.from_input(dict(root.outputs)).future()) or {}
    result = returned.get("value")
    document = outputs
    if hasattr(result, "document"):
        document = _sync_await(pulumi.Output.from_input(result.document).future())
    awsrules.check_stack([r.rule_view for r in recorded if r.custom and not r.type.startswith(PROVIDER_PREFIX)])
    resources = {r.urn: r for r in recorded if r.type != STACK_TYPE}
    urns = [r.urn for r in recorded if r.type != STACK_TYPE]
    stack_urn = f"urn:pulumi:{stack}::{project}::{STACK_TYPE}::{project}-{stack}"
    return Run(resources, urns, outputs, stack_urn, document, result, calls)
