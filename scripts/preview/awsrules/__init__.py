"""AWS's own rules, enforced by the mock runtime.

Pulumi's mocks accept any input, so a program can pass every mock test and still fail on the
first real ``pulumi up``. Each rule here encodes one thing AWS (or the provider that pulumi-aws
bridges, terraform-provider-aws) refuses, and raises the error the deployment would hit. Every
rule carries its source (an AWS documentation page or a provider source file) in ``cite``.

Four kinds of rule, by what they need to see:

- ``resource_rule``: one resource's inputs and options, checked as it is registered;
- ``stack_rule``: every resource one evaluation registers (e.g. two records of one name);
- ``transition_rule``: two consecutive evaluations, as ``pulumi up`` would apply the second
  over the first (e.g. a replace-only argument changed without delete-before-replace);
- ``request_rule``: one API call the tools make at run time, with what is known of its target
  (e.g. a put into an Object Lock bucket without a checksum), for what the emulator accepts.

Service modules register their rules with the decorators below; this module imports them all
at the bottom, so importing ``scripts.preview.awsrules`` arms every rule.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence


@dataclass(frozen=True)
class Resource:
    """One registered resource as the rules see it: inputs in the provider's camelCase."""

    type: str
    name: str
    urn: str
    inputs: Mapping[str, Any]
    region: str | None = None
    parent: str = ""
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    ignore_changes: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    import_id: str = ""
    """The ``import`` option: adopt this existing cloud resource instead of creating it."""
    replace: bool = False
    """Replaced on request (``pulumi up --replace``), whatever its inputs say."""


@dataclass(frozen=True)
class Rule:
    id: str
    cite: str
    check: Callable[..., Iterable[str] | str | None]
    types: tuple[str, ...] = field(default=())


class AwsRuleError(Exception):
    """What AWS or the provider would answer: the rule, the resource, and the source of the rule."""

    def __init__(self, rule: Rule, subject: str, message: str) -> None:
        self.rule, self.subject, self.message = rule, subject, message
        super().__init__(f"{subject}: {message} [AWS rule {rule.id}; source: {rule.cite}]")


def from_request(urn: str, request: Any, inputs: Mapping[str, Any], region: str | None) -> Resource:
    """The :class:`Resource` a mock monitor's ``RegisterResource`` request describes."""
    return Resource(
        type=request.type, name=request.name, urn=urn, inputs=dict(inputs), region=region,
        parent=request.parent, protect=bool(request.protect), retain_on_delete=bool(request.retainOnDelete),
        delete_before_replace=bool(request.deleteBeforeReplace), ignore_changes=tuple(request.ignoreChanges),
        dependencies=tuple(request.dependencies), import_id=request.importId,
    )


RESOURCE_RULES: list[Rule] = []
STACK_RULES: list[Rule] = []
TRANSITION_RULES: list[Rule] = []


def _messages(found: Iterable[str] | str | None) -> list[str]:
    if found is None:
        return []
    return [found] if isinstance(found, str) else [m for m in found if m]


def resource_rule(rule_id: str, *types: str, cite: str):
    """Register ``check(resource) -> message | None`` for resources of ``types``."""
    def register(check):
        RESOURCE_RULES.append(Rule(rule_id, cite, check, tuple(types)))
        return check
    return register


def stack_rule(rule_id: str, *, cite: str):
    """Register ``check(resources) -> messages`` over one whole evaluation."""
    def register(check):
        STACK_RULES.append(Rule(rule_id, cite, check))
        return check
    return register


def transition_rule(rule_id: str, *, cite: str):
    """Register ``check(before, after) -> messages`` over two consecutive evaluations."""
    def register(check):
        TRANSITION_RULES.append(Rule(rule_id, cite, check))
        return check
    return register


REQUEST_RULES: list[Rule] = []


def request_rule(rule_id: str, operation: str, *, cite: str):
    """Register ``check(params, target) -> message | None`` for calls of ``operation`` (``s3:PutObject``)."""
    def register(check):
        REQUEST_RULES.append(Rule(rule_id, cite, check, (operation,)))
        return check
    return register


def check_request(operation: str, params: Mapping[str, Any], **target: Any) -> None:
    """Raise :class:`AwsRuleError` for the first rule a call breaks; ``target`` says what is known of
    what it acts on (``object_lock=True``: the bucket has Object Lock enabled)."""
    for rule in REQUEST_RULES:
        if operation in rule.types:
            for message in _messages(rule.check(params, target)):
                raise AwsRuleError(rule, operation, message)


REPLACE_ONLY: dict[str, frozenset[str]] = {}
REPLACE_ONLY_SOURCES: dict[str, str] = {}


def replace_only(type_: str, *keys: str, cite: str) -> None:
    """Declare the inputs of ``type_`` whose change makes the provider replace the resource (ForceNew)."""
    REPLACE_ONLY[type_] = REPLACE_ONLY.get(type_, frozenset()) | frozenset(keys)
    REPLACE_ONLY_SOURCES[type_] = cite


@dataclass(frozen=True)
class Change:
    """What ``pulumi up`` does to one URN going from ``before`` to ``after``."""

    op: str
    """``create`` | ``import`` | ``delete`` | ``replace`` | ``update``."""
    before: Resource | None
    after: Resource | None
    keys: frozenset[str] = frozenset()
    """Changed inputs (``ignore_changes`` applied)."""


def changed_keys(before: Resource, after: Resource) -> frozenset[str]:
    ignored = {camel_case(k) for k in after.ignore_changes}
    keys = before.inputs.keys() | after.inputs.keys()
    return frozenset(k for k in keys if k not in ignored and before.inputs.get(k) != after.inputs.get(k))


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def changes(before: Sequence[Resource], after: Sequence[Resource]) -> list[Change]:
    """Every URN that ``pulumi up`` touches applying ``after`` over ``before`` (unchanged ones left out)."""
    old, new = {r.urn: r for r in before}, {r.urn: r for r in after}
    out = []
    for urn, b in new.items():
        a = old.get(urn)
        if a is None:
            out.append(Change("import" if b.import_id else "create", None, b))
            continue
        keys = changed_keys(a, b)
        if a.region != b.region:
            keys |= {"<region>"}
        if b.replace or "<region>" in keys or keys & REPLACE_ONLY.get(b.type, frozenset()):
            out.append(Change("replace", a, b, keys))
        elif keys:
            out.append(Change("update", a, b, keys))
    out.extend(Change("delete", a, None) for urn, a in old.items() if urn not in new)
    return out


def check_resource(resource: Resource) -> None:
    """Raise :class:`AwsRuleError` for the first rule ``resource`` breaks."""
    for rule in RESOURCE_RULES:
        if resource.type in rule.types:
            for message in _messages(rule.check(resource)):
                raise AwsRuleError(rule, resource.urn or resource.name, message)


def check_stack(resources: Sequence[Resource]) -> None:
    """Raise :class:`AwsRuleError` for the first stack-wide rule one evaluation breaks."""
    for rule in STACK_RULES:
        for message in _messages(rule.check(resources)):
            raise AwsRuleError(rule, "stack", message)


def transition_problems(before: Sequence[Resource], after: Sequence[Resource]) -> list[str]:
    """Every transition rule that applying ``after`` over ``before`` breaks, as one-line messages."""
    return [str(AwsRuleError(rule, "update", message))
            for rule in TRANSITION_RULES for message in _messages(rule.check(before, after))]


from scripts.preview.awsrules import (  # noqa: E402,F401 - arms every service's rules
    cloudwatch, ecs, iam, kms, rds, route53, s3, scheduler,
)
