"""Run the Pulumi program under mocks and record every registration, options included.

The stock mock monitor hands ``Mocks.new_resource`` only type, name, inputs and provider; the
recording monitor also keeps ``protect``, ``retainOnDelete``, ``ignoreChanges``, ``parent`` and
``dependencies`` from the raw request, so tests can assert the safety options the issue asks
for. Mock state adds the computed attributes the program reads (ARNs, ids, endpoints), derived
from the resource's provider region, so a resource in the wrong region shows in its ARN.
"""
from __future__ import annotations

import contextvars
import hashlib
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from scripts.preview import awsrules
from stacks.config import StackConfig
from stacks.dr import DrStack, build

ACCOUNT = "123456789012"


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    provider: str
    parent: str
    protect: bool
    retain_on_delete: bool
    ignore_changes: list[str]
    dependencies: list[str]
    region: str | None = None
    id: str | None = None


@dataclass
class Run:
    resources: dict[str, Registration]
    document: dict[str, Any]
    urns: list[str]
    """Every registration in order, duplicates included (the dict above would hide them)."""
    stack: DrStack | None = field(default=None, repr=False)
    views: list[awsrules.Resource] = field(default_factory=list, repr=False)
    """Every custom resource as the AWS rules see it (what transition tests diff)."""

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.resources.values() if r.type == typ]

    def named(self, name: str) -> Registration:
        for r in self.resources.values():
            if r.name == name:
                return r
        raise KeyError(f"no resource named {name!r}; have {sorted(r.name for r in self.resources.values())}")


def _digest(text: str, n: int = 12) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


class ProgramMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.provider_regions: dict[str, str] = {}

    def region_of(self, provider: str | None) -> str | None:
        return self.provider_regions.get((provider or "").rsplit("::", 1)[-1])

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs = dict(args.inputs)
        if args.typ == "pulumi:providers:aws":
            pid = f"{args.name}-provider-id"
            self.provider_regions[pid] = inputs.get("region")
            return pid, inputs
        region = self.region_of(args.provider)
        state = dict(inputs)
        rid = f"{args.name}-id"
        typ = args.typ
        if typ == "aws:s3/bucket:Bucket":
            rid = inputs["bucket"]
            state["arn"] = f"arn:aws:s3:::{rid}"
        elif typ in ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey"):
            rid = "mrk-" + _digest("vault-key", 32)
            state.update(keyId=rid, arn=f"arn:aws:kms:{region}:{ACCOUNT}:key/{rid}")
        elif typ == "aws:rds/instance:Instance":
            rid = inputs["identifier"]
            host = f"{rid}.mock.{region}.rds.amazonaws.com"
            state.update(arn=f"arn:aws:rds:{region}:{ACCOUNT}:db:{rid}", address=host, endpoint=f"{host}:{inputs.get('port')}")
        elif typ == "aws:sns/topic:Topic":
            state["arn"] = f"arn:aws:sns:{region}:{ACCOUNT}:{inputs['name']}"
        elif typ == "aws:iam/role:Role":
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{inputs['name']}"
        elif typ == "aws:route53/healthCheck:HealthCheck":
            rid = f"{_digest(args.name, 8)}-0000-4000-8000-{_digest(args.name + 'x', 12)}"
        elif typ == "aws:ec2/securityGroup:SecurityGroup":
            rid = "sg-" + _digest(args.name, 17)
        elif typ.startswith("aws:route53recoverycontrol/"):
            state["arn"] = f"arn:aws:route53-recovery-control::{ACCOUNT}:{args.name}"
        else:
            state.setdefault("arn", f"arn:aws:mock:{region}:{ACCOUNT}:{args.name}")
        state.setdefault("id", rid)
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        raise AssertionError(f"the program must not invoke provider functions, called {args.token}")


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: ProgramMocks) -> None:
        super().__init__(mocks)
        self.requests: list[tuple[str, Any, dict]] = []

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        inputs = rpc.deserialize_properties(request.object)
        if request.custom and not request.type.startswith("pulumi:providers:"):
            awsrules.check_resource(awsrules.from_request(request.name, request, inputs, self.mocks.region_of(request.provider)))
        response = super().RegisterResource(request)
        self.requests.append((response.urn, request, inputs))
        return response


def run_program(cfg: StackConfig, *, config: dict[str, str] | None = None, program=None) -> Run:
    """Evaluate ``program`` (default: ``build(cfg)``) under fresh mocks; return registrations and outputs.

    Pulumi keeps its settings, config and root stack in context variables: each run gets an empty
    ``contextvars.Context`` so nothing leaks between runs or into other tests.
    """
    return contextvars.Context().run(_run, cfg, config or {}, program)


def _run(cfg: StackConfig, config: dict[str, str], program) -> Run:
    mocks = ProgramMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=cfg.project, stack=cfg.stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(config, [k for k in config if k.endswith("dbPassword")])
    holder: dict[str, Any] = {}

    def body():
        stack = build(cfg) if program is None else program()
        holder["stack"] = stack
        return pulumi.Output.from_input(stack.document).apply(lambda doc: holder.update(document=doc))

    pulumi.runtime.test(body)()
    resources = {}
    for urn, request, inputs in monitor.requests:
        if request.type == "pulumi:pulumi:Stack":
            continue
        resources[urn] = Registration(
            urn=urn,
            type=request.type,
            name=request.name,
            inputs=dict(inputs),
            provider=request.provider,
            parent=request.parent,
            protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete),
            ignore_changes=list(request.ignoreChanges),
            dependencies=list(request.dependencies),
            region=mocks.region_of(request.provider),
            id=getattr(monitor.resources.get(urn), "id", None),
        )
    urns = [urn for urn, request, _ in monitor.requests if request.type != "pulumi:pulumi:Stack"]
    views = [awsrules.from_request(urn, request, inputs, mocks.region_of(request.provider))
             for urn, request, inputs in monitor.requests
             if request.custom and not request.type.startswith("pulumi:providers:")]
    awsrules.check_stack(views)
    return Run(resources, holder["document"], urns, holder.get("stack"), views)
