"""IAM rules the mock runtime enforces; each cites where AWS or the provider states it."""
from __future__ import annotations

import json
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


ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
# AWS: the db-user resource is arn:${Partition}:rds-db:${Region}:${Account}:dbuser:${DbiResourceId}/${DbUserName}.
_DB_USER_RE = re.compile(r"^arn:aws[a-z-]*:rds-db:[a-z0-9-]+:\d{12}:dbuser:(db-[A-Z0-9]+|\*)/[^/*]+$")


def _statements(policy) -> list[dict]:
    doc = json.loads(policy) if isinstance(policy, str) else policy
    found = (doc or {}).get("Statement") or []
    return [found] if isinstance(found, dict) else list(found)


@resource_rule("iam-rds-db-connect-resource", ROLE_POLICY,
               cite="https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrdsiamauthentication.html "
                    "(resource type db-user: arn:${Partition}:rds-db:${Region}:${Account}:dbuser:${DbiResourceId}/${DbUserName}); "
                    "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.IAMDBAuth.IAMPolicy.html")
def rds_db_connect_resource(r: Resource) -> list[str]:
    """``rds-db:connect`` names the instance by DbiResourceId (``db-...``): an instance identifier matches nothing."""
    policy = r.inputs.get("policy")
    if not isinstance(policy, str):
        return []
    out = []
    for statement in _statements(policy):
        actions = statement.get("Action")
        if "rds-db:connect" not in ([actions] if isinstance(actions, str) else actions or []):
            continue
        resources = statement.get("Resource")
        for arn in [resources] if isinstance(resources, str) else resources or []:
            if not _DB_USER_RE.match(arn):
                out.append(f"rds-db:connect resource {arn!r} is not arn:<partition>:rds-db:<region>:<account>:dbuser:"
                           "<DbiResourceId>/<user> (the instance by its db-... resource id, not its identifier)")
    return out
