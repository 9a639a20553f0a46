"""KMS rules the mock runtime enforces; each cites where AWS or the provider states it."""
from __future__ import annotations

import json
from typing import Any, Iterable

from scripts.preview.awsrules import Resource, resource_rule

KEY_TYPES = ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey")


def _statements(policy: Any) -> list[dict]:
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except json.JSONDecodeError:
            return []
    statements = (policy or {}).get("Statement") or []
    return [statements] if isinstance(statements, dict) else list(statements)


def _actions(statement: dict) -> list[str]:
    a = statement.get("Action") or []
    return [a] if isinstance(a, str) else list(a)


def _covers(patterns: list[str], action: str) -> bool:
    return any(p in ("*", action) or (p.endswith("*") and action.startswith(p[:-1])) for p in patterns)


@resource_rule("kms-deletion-window", *KEY_TYPES,
               cite="terraform-provider-aws internal/service/kms/key.go (deletion_window_in_days: IntBetween(7, 30))")
def deletion_window(r: Resource) -> str | None:
    days = r.inputs.get("deletionWindowInDays")
    if days is not None and not 7 <= days <= 30:
        return f"deletion_window_in_days {days}: expected 7 to 30"
    return None


@resource_rule("kms-policy-lockout-safety-check", *KEY_TYPES,
               cite="https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html "
                    "(BypassPolicyLockoutSafetyCheck; MalformedPolicyDocumentException); "
                    "terraform-provider-aws internal/service/kms/key.go (bypass_policy_lockout_safety_check)")
def lockout_safety_check(r: Resource) -> Iterable[str]:
    """KMS refuses a policy that would stop the caller from a later PutKeyPolicy, unless bypassed.

    The caller is unknown under mocks, so the rule asks what is certain to lock out whoever
    deploys: no Allow of ``kms:PutKeyPolicy`` to the account (or anyone), or a Deny of it that
    exempts at most named principals (the deployer is not one of them by default).
    """
    if r.inputs.get("bypassPolicyLockoutSafetyCheck"):
        return
    statements = _statements(r.inputs.get("policy"))
    if not statements:
        return  # the default key policy gives the account root kms:*
    allowed = any(s.get("Effect") == "Allow" and _covers(_actions(s), "kms:PutKeyPolicy") for s in statements)
    if not allowed:
        yield "MalformedPolicyDocumentException: no statement allows kms:PutKeyPolicy; the caller would be locked out"
    for s in statements:
        if s.get("Effect") == "Deny" and _covers(_actions(s), "kms:PutKeyPolicy"):
            yield (f"MalformedPolicyDocumentException: statement {s.get('Sid')!r} denies kms:PutKeyPolicy, "
                   "so the deploying principal would be locked out of the key")
