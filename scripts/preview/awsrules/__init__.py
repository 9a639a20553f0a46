"""AWS's own rules, enforced by the mock runtime.

Pulumi's mocks accept any input, so a program can pass every mock test and still fail on the
first real ``pulumi up``. Each rule here encodes one thing AWS (or the provider that pulumi-aws
bridges, terraform-provider-aws) refuses, and raises the error the deployment would hit. Every
rule carries its source (an AWS documentation page or a provider source file) in ``cite``.

Three kinds of rule, by what they need to see:

- ``resource_rule``: one resource's inputs and options, checked as it is registered;
- ``stack_rule``: every resource one evaluation registers (e.g. two records of one name);
- ``transition_rule``: two consecutive evaluations, as ``pulumi up`` would apply the second
  over the first (e.g. a replace-only argument changed without delete-before-replace).

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
        dependencies=tuple(request.dependencies),
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
    ecs, iam, kms, rds, route53, s3, scheduler,
)
