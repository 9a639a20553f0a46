"""AWS's rules for Scheduler, ECS and Logs: each refuses what AWS would refuse, and accepts the program's jobs."""
import json

import pytest

from scripts.preview.awsrules import AwsRuleError, Resource, check_resource, check_stack
from scripts.preview.awsrules.ecs import fargate_memory_choices
from scripts.preview.awsrules.scheduler import cron_problem

ROLE = "arn:aws:iam::123456789012:role/"


def schedule(**over):
    inputs = {
        "name": "pilotlight-dr-orders-hourly", "scheduleExpression": "cron(5 * * * ? *)",
        "scheduleExpressionTimezone": "UTC", "flexibleTimeWindow": {"mode": "FLEXIBLE", "maximumWindowInMinutes": 15},
        "target": {"arn": "arn:aws:ecs:us-east-1:123456789012:cluster/jobs", "roleArn": ROLE + "scheduler",
                   "ecsParameters": {"taskDefinitionArn": "arn:aws:mock:us-east-1:123456789012:task",
                                     "launchType": "FARGATE", "networkConfiguration": {"subnets": ["subnet-1"]}}},
    }
    inputs.update(over)
    return Resource("aws:scheduler/schedule:Schedule", "sched", "urn:sched", inputs)


def task(**over):
    inputs = {"family": "f", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "1024",
              "memory": "2048", "executionRoleArn": ROLE + "exec", "taskRoleArn": ROLE + "writer",
              "containerDefinitions": json.dumps([{"name": "pilotlight", "image": "img", "essential": True}])}
    inputs.update(over)
    return Resource("aws:ecs/taskDefinition:TaskDefinition", "task", "urn:task", inputs)


@pytest.mark.parametrize("expr", ["cron(5 * * * ? *)", "cron(0 2 * * ? *)", "cron(0 3 ? * SUN *)", "cron(0 4 1 * ? *)",
                                  "cron(0/15 * * * ? *)", "rate(1 hour)", "cron(0 4 ? * MON-FRI *)"])
def test_runbook_and_common_expressions_are_accepted(expr):
    assert cron_problem(expr) is None


@pytest.mark.parametrize("expr, why", [
    ("cron(5 * * * *)", "six"),                 # Unix five-field cron
    ("cron(5 * * * * *)", "exactly one"),       # both day fields '*'
    ("cron(5 * 1 * MON *)", "exactly one"),     # both day fields set
    ("cron(61 * * * ? *)", "minutes"),
    ("cron(0 24 * * ? *)", "hours"),
    ("every hour", "not cron"),
])
def test_invalid_cron_is_refused_with_the_reason(expr, why):
    assert why in cron_problem(expr)
    with pytest.raises(AwsRuleError, match="scheduler.cron-syntax"):
        check_resource(schedule(scheduleExpression=expr))


def test_flexible_window_needs_minutes_and_fargate_target_needs_subnets():
    with pytest.raises(AwsRuleError, match="maximumWindowInMinutes"):
        check_resource(schedule(flexibleTimeWindow={"mode": "FLEXIBLE"}))
    target = schedule().inputs["target"] | {"ecsParameters": {"taskDefinitionArn": "arn:x", "launchType": "FARGATE"}}
    with pytest.raises(AwsRuleError, match="subnets is required"):
        check_resource(schedule(target=target))
    check_resource(schedule())


@pytest.mark.parametrize("cpu, memory, ok", [("256", "512", True), ("256", "4096", False), ("1024", "2048", True),
                                             ("1024", "1024", False), ("4096", "30720", True), ("300", "1024", False),
                                             ("8192", "18432", False), ("8192", "20480", True)])
def test_fargate_cpu_memory_combinations(cpu, memory, ok):
    if ok:
        check_resource(task(cpu=cpu, memory=memory))
    else:
        with pytest.raises(AwsRuleError, match="ecs.fargate-cpu-memory"):
            check_resource(task(cpu=cpu, memory=memory))
    assert 2048 in fargate_memory_choices(1024) and fargate_memory_choices(3) == ()


def test_fargate_needs_awsvpc_storage_bounds_and_sane_containers():
    with pytest.raises(AwsRuleError, match="awsvpc"):
        check_resource(task(networkMode="bridge"))
    with pytest.raises(AwsRuleError, match="21-200"):
        check_resource(task(ephemeralStorage={"sizeInGib": 20}))
    waits = [{"name": "a", "image": "i", "dependsOn": [{"containerName": "b", "condition": "HEALTHY"}]},
             {"name": "b", "image": "i", "essential": False}]
    with pytest.raises(AwsRuleError, match="no healthCheck"):
        check_resource(task(containerDefinitions=json.dumps(waits)))


def test_log_retention_must_be_a_value_cloudwatch_offers():
    with pytest.raises(AwsRuleError, match="retentionInDays 10"):
        check_resource(Resource("aws:cloudwatch/logGroup:LogGroup", "lg", "urn:lg", {"retentionInDays": 10}))


def test_scheduler_must_be_allowed_to_pass_both_roles_of_the_task_it_runs():
    t = task()
    s = schedule(target=schedule().inputs["target"] | {"ecsParameters": {
        "taskDefinitionArn": "arn:aws:mock:us-east-1:123456789012:task", "launchType": "FARGATE",
        "networkConfiguration": {"subnets": ["subnet-1"]}}})

    def policy(resources):
        doc = {"Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": resources}]}
        return Resource("aws:iam/rolePolicy:RolePolicy", "p", "urn:p", {"policy": json.dumps(doc)})

    with pytest.raises(AwsRuleError, match="taskRoleArn"):
        check_stack([t, s, policy([ROLE + "exec"])])
    check_stack([t, s, policy([ROLE + "exec", ROLE + "writer"])])


def connect_policy(resource):
    doc = {"Statement": [{"Effect": "Allow", "Action": "rds-db:connect", "Resource": [resource]}]}
    return Resource("aws:iam/rolePolicy:RolePolicy", "p", "urn:p", {"policy": json.dumps(doc)})


@pytest.mark.parametrize("resource", [
    "arn:aws:rds-db:us-east-1:123456789012:dbuser:orders-prod/pilotlight",  # the identifier, not the DbiResourceId
    "arn:aws:rds:us-east-1:123456789012:db:orders-prod",
    "arn:aws:rds-db:us-east-1:123456789012:dbuser:db-ABCDEFGHIJKLMNOPQRSTUVWXYZ",  # no user
])
def test_rds_db_connect_must_name_the_dbuser_by_resource_id(resource):
    with pytest.raises(AwsRuleError, match="DbiResourceId"):
        check_resource(connect_policy(resource))


def test_rds_db_connect_by_resource_id_and_user_is_accepted():
    check_resource(connect_policy("arn:aws:rds-db:us-west-2:123456789012:dbuser:db-ABCDEFGHIJKLMNOPQRSTUVWXYZ/pilotlight"))
