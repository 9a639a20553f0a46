"""EventBridge Scheduler rules the mock runtime enforces; each cites where AWS or the provider states it."""
from __future__ import annotations

import json
import re

from scripts.preview.awsrules import Resource, resource_rule, stack_rule

SCHEDULE = "aws:scheduler/schedule:Schedule"
_PROVIDER = "terraform-provider-aws internal/service/scheduler/schedule.go (resourceSchedule schema)"
_CRON_DOC = "https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html#cron-based"
_NAME_RE = re.compile(r"^[0-9A-Za-z_.-]{1,64}$")
_FIELD_RE = {
    "minutes": re.compile(r"^([0-5]?\d|\*)([,/-]([0-5]?\d|\*))*$"),
    "hours": re.compile(r"^([01]?\d|2[0-3]|\*)([,/-]([01]?\d|2[0-3]|\*))*$"),
    "day-of-month": re.compile(r"^(\?|L|\*|([1-9]|[12]\d|3[01])W?([,/-]([1-9]|[12]\d|3[01]))*)$"),
    "month": re.compile(r"^(\*|([1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)([,/-]([1-9]|1[0-2]|[A-Z]{3}))*)$"),
    "day-of-week": re.compile(r"^(\?|\*|L|([1-7]|SUN|MON|TUE|WED|THU|FRI|SAT)(L|#[1-5])?([,-]([1-7]|[A-Z]{3}))*)$"),
    "year": re.compile(r"^(\*|(19[7-9]\d|2[01]\d\d)([,/-](19[7-9]\d|2[01]\d\d))*)$"),
}


def cron_problem(expression: str) -> str | None:
    """Why Scheduler refuses ``expression`` (a ``cron(...)`` with six fields), or None."""
    match = re.fullmatch(r"cron\((.*)\)", expression)
    if not match:
        return None if re.fullmatch(r"rate\(\d+ (minute|minutes|hour|hours|day|days)\)|at\(.+\)", expression) else (
            f"schedule expression {expression!r} is not cron(...), rate(...) or at(...)")
    fields = match.group(1).split()
    if len(fields) != 6:
        return f"cron expression {expression!r} has {len(fields)} fields; Scheduler needs six (minutes hours day-of-month month day-of-week year)"
    for (name, pattern), value in zip(_FIELD_RE.items(), fields):
        if not pattern.match(value):
            return f"cron field {name} = {value!r} is not valid in {expression!r}"
    dom, dow = fields[2], fields[4]
    if (dom == "?") == (dow == "?"):
        return f"cron expression {expression!r}: exactly one of day-of-month and day-of-week must be '?'"
    return None


@resource_rule("scheduler.cron-syntax", SCHEDULE, cite=_CRON_DOC)
def cron_syntax(r: Resource):
    return cron_problem(r.inputs.get("scheduleExpression", ""))


@resource_rule("scheduler.schedule-shape", SCHEDULE, cite=_PROVIDER)
def schedule_shape(r: Resource):
    i = r.inputs
    if not _NAME_RE.match(i.get("name", "")):
        yield f"name {i.get('name')!r}: 1-64 letters, digits, '-', '_' or '.'"
    tz = i.get("scheduleExpressionTimezone", "UTC")
    if not 1 <= len(tz) <= 50:
        yield f"scheduleExpressionTimezone {tz!r}: 1-50 characters"
    window = i.get("flexibleTimeWindow") or {}
    mode = window.get("mode")
    if mode not in ("OFF", "FLEXIBLE"):
        yield f"flexibleTimeWindow.mode {mode!r}: OFF or FLEXIBLE (required)"
    minutes = window.get("maximumWindowInMinutes")
    # Numbers arrive as floats through the Pulumi wire protocol.
    if mode == "FLEXIBLE" and not (isinstance(minutes, (int, float)) and minutes == int(minutes) and 1 <= minutes <= 1440):
        yield f"flexibleTimeWindow.maximumWindowInMinutes {minutes!r}: FLEXIBLE needs 1-1440"
    target = i.get("target") or {}
    if not target.get("arn") or not target.get("roleArn"):
        yield "target needs arn and roleArn"
    retry = target.get("retryPolicy") or {}
    if not 60 <= retry.get("maximumEventAgeInSeconds", 86400) <= 86400:
        yield "target.retryPolicy.maximumEventAgeInSeconds: 60-86400"
    if not 0 <= retry.get("maximumRetryAttempts", 185) <= 185:
        yield "target.retryPolicy.maximumRetryAttempts: 0-185"


@resource_rule("scheduler.ecs-target", SCHEDULE, cite=(
    f"{_PROVIDER}; https://docs.aws.amazon.com/scheduler/latest/APIReference/API_EcsParameters.html; "
    "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-networking-awsvpc.html"))
def ecs_target(r: Resource):
    """An ECS RunTask target: task definition ARN, 1-10 tasks, and for Fargate (awsvpc) a network configuration."""
    ecs = (r.inputs.get("target") or {}).get("ecsParameters")
    if ecs is None:
        return
    if not ecs.get("taskDefinitionArn"):
        yield "target.ecsParameters.taskDefinitionArn is required"
    if not 0 <= ecs.get("taskCount", 1) <= 10:
        yield "target.ecsParameters.taskCount: 0-10"
    if ecs.get("launchType") == "FARGATE":
        net = (ecs.get("networkConfiguration") or {})
        if not net.get("subnets"):
            yield "FARGATE tasks use awsvpc networking: target.ecsParameters.networkConfiguration.subnets is required"
        if len(net.get("securityGroups") or []) > 5:
            yield "awsvpc network configuration: at most 5 security groups"
        if len(net.get("subnets") or []) > 16:
            yield "awsvpc network configuration: at most 16 subnets"

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
            # A real ARN names the family; a preview's mock ARN names the resource.
            if f":task-definition/{task.inputs.get('family')}:" in arn or f":{task.name}-" in arn or arn.endswith(f":{task.name}"):
                for key in ("executionRoleArn", "taskRoleArn"):
                    role = task.inputs.get(key)
                    if isinstance(role, str) and role not in passable and "*" not in passable:
                        yield f"schedule {r.name} runs {task.name}, but no policy lets Scheduler pass its {key} {role}"
