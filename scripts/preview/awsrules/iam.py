"""IAM rules the mock runtime enforces; each cites where AWS or the provider states it."""
from __future__ import annotations

from scripts.preview.awsrules import Resource, resource_rule, stack_rule, transition_rule  # noqa: F401

import json

_PASS_ROLE = ("https://docs.aws.amazon.com/AmazonECS/latest/developerguide/CWE_IAM_role.html "
              "(\"you must add iam:PassRole permissions for each task execution role, task role\"); "
              "https://docs.aws.amazon.com/scheduler/latest/UserGuide/setting-up.html#setting-up-execution-role")


def _statements(policy):
    doc = json.loads(policy) if isinstance(policy, str) else policy
    statements = doc.get("Statement", []) if isinstance(doc, dict) else []
    return [statements] if isinstance(statements, dict) else statements


def _as_list(value):
    return [value] if isinstance(value, str) else list(value or [])


@stack_rule("iam.scheduler-passrole-task-roles", cite=_PASS_ROLE)
def scheduler_passes_task_roles(resources):
    """A schedule that runs an ECS task needs iam:PassRole on that task's execution and task roles."""
    passable = set()
    for r in resources:
        if r.type == "aws:iam/rolePolicy:RolePolicy" and isinstance(r.inputs.get("policy"), str):
            for s in _statements(r.inputs["policy"]):
                if s.get("Effect") == "Allow" and "iam:PassRole" in _as_list(s.get("Action")):
                    passable.update(_as_list(s.get("Resource")))
    tasks = [r for r in resources if r.type == "aws:ecs/taskDefinition:TaskDefinition"]
    for r in resources:
        if r.type != "aws:scheduler/schedule:Schedule":
            continue
        arn = ((r.inputs.get("target") or {}).get("ecsParameters") or {}).get("taskDefinitionArn", "")
        for task in tasks:
            if arn.endswith(f":{task.name}") or f":task-definition/{task.inputs.get('family')}:" in arn:
                for key in ("executionRoleArn", "taskRoleArn"):
                    role = task.inputs.get(key)
                    if isinstance(role, str) and role not in passable and "*" not in passable:
                        yield f"schedule {r.name} runs {task.name}, but no policy lets Scheduler pass its {key} {role}"
