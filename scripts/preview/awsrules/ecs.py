"""ECS (Fargate) rules the mock runtime enforces; each cites where AWS or the provider states it."""
from __future__ import annotations

import json

from scripts.preview.awsrules import Resource, resource_rule

TASK = "aws:ecs/taskDefinition:TaskDefinition"
_FARGATE_SIZES = "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size"
_STORAGE = "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_EphemeralStorage.html"


def fargate_memory_choices(cpu: int) -> tuple[int, ...]:
    """Memory values (MiB) Fargate accepts with ``cpu`` units; () when the cpu value itself is invalid."""
    gib = 1024
    return {
        256: (512, 1024, 2048),
        512: tuple(range(1 * gib, 4 * gib + 1, gib)),
        1024: tuple(range(2 * gib, 8 * gib + 1, gib)),
        2048: tuple(range(4 * gib, 16 * gib + 1, gib)),
        4096: tuple(range(8 * gib, 30 * gib + 1, gib)),
        8192: tuple(range(16 * gib, 60 * gib + 1, 4 * gib)),
        16384: tuple(range(32 * gib, 120 * gib + 1, 8 * gib)),
    }.get(cpu, ())


@resource_rule("ecs.fargate-cpu-memory", TASK, cite=_FARGATE_SIZES)
def fargate_cpu_memory(r: Resource):
    i = r.inputs
    if "FARGATE" not in (i.get("requiresCompatibilities") or []):
        return None
    try:
        cpu, memory = int(i.get("cpu")), int(i.get("memory"))
    except (TypeError, ValueError):
        return "FARGATE task definitions need task-level cpu and memory"
    choices = fargate_memory_choices(cpu)
    if not choices:
        return f"cpu {cpu} is not a Fargate size (256, 512, 1024, 2048, 4096, 8192, 16384)"
    if memory not in choices:
        return f"memory {memory} MiB is not valid with cpu {cpu} on Fargate (choose {choices[0]}..{choices[-1]})"
    return None


@resource_rule("ecs.fargate-awsvpc", TASK, cite="https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-task-networking.html")
def fargate_awsvpc(r: Resource):
    if "FARGATE" in (r.inputs.get("requiresCompatibilities") or []) and r.inputs.get("networkMode") != "awsvpc":
        return "Fargate tasks require networkMode awsvpc"
    return None


@resource_rule("ecs.ephemeral-storage", TASK, cite=_STORAGE)
def ephemeral_storage(r: Resource):
    size = (r.inputs.get("ephemeralStorage") or {}).get("sizeInGib")
    if size is not None and not 21 <= size <= 200:
        return f"ephemeralStorage.sizeInGib {size}: 21-200"
    return None


@resource_rule("ecs.container-definitions", TASK, cite=(
    "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html; "
    "terraform-provider-aws internal/service/ecs/task_definition.go (container_definitions is a JSON array)"))
def container_definitions(r: Resource):
    raw = r.inputs.get("containerDefinitions")
    try:
        containers = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        yield "containerDefinitions is not valid JSON"
        return
    if not isinstance(containers, list) or not containers:
        yield "containerDefinitions must be a non-empty JSON array"
        return
    names = [c.get("name") for c in containers]
    if len(set(names)) != len(names):
        yield f"container names must be unique: {names}"
    if not any(c.get("essential", True) for c in containers):
        yield "at least one container must be essential"
    for c in containers:
        if not c.get("name") or not c.get("image"):
            yield "every container needs name and image"
        for dep in c.get("dependsOn") or []:
            if dep.get("containerName") not in names:
                yield f"{c.get('name')} depends on unknown container {dep.get('containerName')!r}"
            elif dep.get("condition") == "HEALTHY" and not next(
                    (o for o in containers if o.get("name") == dep["containerName"]), {}).get("healthCheck"):
                yield f"{c.get('name')} waits for {dep['containerName']} to be HEALTHY, which has no healthCheck"


@resource_rule("logs.retention-values", "aws:cloudwatch/logGroup:LogGroup",
               cite="https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html")
def log_retention(r: Resource):
    days = r.inputs.get("retentionInDays")
    allowed = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
    if days not in (None, 0) and days not in allowed:
        return f"retentionInDays {days} is not one of {allowed}"
    return None
