"""IAM rules the mock runtime enforces; each cites where AWS or the provider states it."""
from __future__ import annotations

import re

from scripts.preview.awsrules import Resource, resource_rule

ROLE = "aws:iam/role:Role"


@resource_rule("iam-role-max-session", ROLE,
               cite="terraform-provider-aws internal/service/iam/role.go (max_session_duration: IntBetween(3600, 43200)); "
                    "https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html")
def max_session(r: Resource) -> str | None:
    value = r.inputs.get("maxSessionDuration")
    if value is not None and not 3600 <= value <= 43200:
        return f"ValidationError: max_session_duration {value}: expected 3600 to 43200 seconds"
    return None


@resource_rule("iam-role-name", ROLE,
               cite="https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html (RoleName: 1-64 of [\\w+=,.@-])")
def role_name(r: Resource) -> str | None:
    name = r.inputs.get("name")
    if isinstance(name, str) and not re.fullmatch(r"[\w+=,.@-]{1,64}", name):
        return f"ValidationError: role name {name!r} (1-64 letters, digits and +=,.@_-)"
    return None
