"""Scheduled jobs: a schedule per database and tier, Fargate tasks as the tool roles, failures visible, following active."""
import json

import pytest
from scripts.preview.runtime import run_stack as run_program
from stack_values import config, example_values

from components import jobrules

SCHEDULE = "aws:scheduler/schedule:Schedule"
TASK = "aws:ecs/taskDefinition:TaskDefinition"
WRITER = "arn:aws:iam::123456789012:role/pilotlight-dr-backup-writer"
READER = "arn:aws:iam::123456789012:role/pilotlight-dr-restore-reader"
EXECUTION = "arn:aws:iam::123456789012:role/pilotlight-dr-jobs-execution"
CRON = {"hourly": "cron(5 * * * ? *)", "daily": "cron(0 2 * * ? *)", "weekly": "cron(0 3 ? * SUN *)",
        "monthly": "cron(0 4 1 * ? *)", "verify": "cron(30 5 * * ? *)"}


def schedules(run):
    return {s.inputs["name"]: s for s in run.of_type(SCHEDULE)}


def task_for(run, schedule):
    arn = schedule.inputs["target"]["ecsParameters"]["taskDefinitionArn"]
    (task,) = [t for t in run.of_type(TASK) if f":{t.name}-" in arn or arn.endswith(f":{t.name}")]
    return task


def test_one_schedule_per_database_and_tier_with_the_runbook_cron_and_a_verification(example):
    got = {name: (s.inputs["scheduleExpression"], s.inputs["scheduleExpressionTimezone"]) for name, s in schedules(example).items()}
    assert got == {f"pilotlight-dr-orders-{k}": (cron, "UTC") for k, cron in CRON.items()}
    for s in schedules(example).values():
        assert s.inputs["flexibleTimeWindow"] == {"mode": "FLEXIBLE", "maximumWindowInMinutes": 15}, s.urn
        target = s.inputs["target"]
        assert target["retryPolicy"] == {"maximumRetryAttempts": 3, "maximumEventAgeInSeconds": 3600}, s.urn
        region = "us-west-2" if "verify" in s.urn else "us-east-1"
        assert target["deadLetterConfig"]["arn"] == f"arn:aws:sqs:{region}:123456789012:pilotlight-dr-jobs-dlq", s.urn


def test_backups_run_in_the_primary_private_subnets_as_the_writer_and_verification_in_dr_as_the_reader(example):
    for name, s in schedules(example).items():
        ecs = s.inputs["target"]["ecsParameters"]
        task = task_for(example, s)
        verify = name.endswith("-verify")
        assert s.region == task.region == ("us-west-2" if verify else "us-east-1"), s.urn
        assert s.inputs["target"]["arn"].startswith(f"arn:aws:ecs:{s.region}:"), s.urn
        assert ecs["launchType"] == "FARGATE" and ecs["taskCount"] == 1, s.urn
        net = ecs["networkConfiguration"]
        assert net["assignPublicIp"] is False, s.urn
        assert net["subnets"] == (["subnet-0dr000000000000a1", "subnet-0dr000000000000b2"] if verify
                                  else ["subnet-0pr000000000000a1", "subnet-0pr000000000000b2"]), s.urn
        assert task.inputs["taskRoleArn"] == (READER if verify else WRITER), task.urn
        assert task.inputs["executionRoleArn"] == EXECUTION, task.urn
        assert task.inputs["networkMode"] == "awsvpc" and task.inputs["requiresCompatibilities"] == ["FARGATE"], task.urn
        assert (task.inputs["cpu"], task.inputs["memory"]) == ("1024", "2048"), task.urn


def test_tasks_run_the_tool_with_the_contract_and_the_declared_postgres_major(example):
    for name, s in schedules(example).items():
        task = task_for(example, s)
        containers = json.loads(task.inputs["containerDefinitions"])
        tool = containers[0]
        env = {e["name"]: e["value"] for e in tool["environment"]}
        assert env["PILOTLIGHT_PG_BIN"] == "/usr/lib/postgresql/15/bin", task.urn
        contract = json.loads(env["PILOTLIGHT_OUTPUTS"])
        assert contract["stack"] == "dr" and "jobs" not in contract, task.urn
        assert tool["image"] == f"123456789012.dkr.ecr.{task.region}.amazonaws.com/pilotlight-dr-tools:0.1.0", task.urn
        assert tool["logConfiguration"]["options"]["awslogs-region"] == task.region, task.urn
        assert "PGPASSWORD" not in env and not any("password" in k.lower() for k in env), task.urn
        if name.endswith("-verify"):
            assert tool["command"][:2] == ["verify", "--database"] and "--test-restore" in tool["command"], task.urn
            server = tool["command"][tool["command"].index("--server") + 1]
            assert "127.0.0.1" in server, task.urn  # the scratch sidecar, never production
            assert containers[1]["name"] == "scratch" and containers[1]["image"].endswith("postgres:15"), task.urn
        else:
            tier = name.rsplit("-", 1)[1]
            assert tool["command"] == ["backup", "--database", "orders", "--tier", tier, "--json"], task.urn
            assert len(containers) == 1, task.urn


def test_scheduler_may_pass_only_the_task_roles_and_run_only_our_tasks(example):
    role = example.named("jobs-scheduler")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "scheduler.amazonaws.com"}], role.urn
    doc = json.loads(example.named("jobs-scheduler-policy").inputs["policy"])
    st = {s["Sid"]: s for s in doc["Statement"]}
    assert st["PassTaskRoles"]["Resource"] == sorted([EXECUTION, WRITER, READER])
    assert st["PassTaskRoles"]["Condition"] == {"StringLike": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    assert all(r.startswith("arn:aws:mock:") or ":task-definition/" in r or r.endswith(":*") for r in st["RunJobTasks"]["Resource"])
    assert all("*" != r for s in doc["Statement"] for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]))


def test_job_security_group_egresses_only_to_the_database_port_and_https(example):
    groups = example.of_type("aws:ec2/securityGroup:SecurityGroup", under="pilotlight:dr:Jobs")
    assert {g.region for g in groups} == {"us-east-1", "us-west-2"}
    for g in groups:
        assert g.inputs.get("ingress", []) == [], g.urn
        assert sorted(e["fromPort"] for e in g.inputs["egress"]) == [443, 5432], g.urn
        assert all(e["fromPort"] == e["toPort"] and e["protocol"] == "tcp" for e in g.inputs["egress"]), g.urn


def test_failures_reach_the_alarm_topic_and_queues_logs_are_kms_encrypted(example):
    rules = example.of_type("aws:cloudwatch/eventRule:EventRule", under="pilotlight:dr:Jobs")
    assert {r.region for r in rules} == {"us-east-1", "us-west-2"}
    for rule in rules:
        pattern = json.loads(rule.inputs["eventPattern"])
        assert pattern["detail-type"] == ["ECS Task State Change"], rule.urn
        assert {"containers": {"exitCode": [{"anything-but": 0}]}} in pattern["detail"]["$or"], rule.urn
    targets = example.of_type("aws:cloudwatch/eventTarget:EventTarget", under="pilotlight:dr:Jobs")
    assert sorted(t.inputs["arn"].rsplit(":", 1)[1] for t in targets) == ["pilotlight-dr-alarms", "pilotlight-dr-alarms-dr"]
    for q in example.of_type("aws:sqs/queue:Queue", under="pilotlight:dr:Jobs"):
        assert q.inputs["kmsMasterKeyId"].startswith(f"arn:aws:kms:{q.region}:"), q.urn
    alarms = [a for a in example.of_type("aws:cloudwatch/metricAlarm:MetricAlarm", under="pilotlight:dr:Jobs")]
    assert {a.inputs["metricName"] for a in alarms} == {"ApproximateNumberOfMessagesVisible"} and len(alarms) == 2
    for lg in example.of_type("aws:cloudwatch/logGroup:LogGroup", under="pilotlight:dr:Jobs"):
        assert lg.inputs["retentionInDays"] == 30 and lg.inputs["kmsKeyId"].startswith("arn:aws:kms:"), lg.urn


def test_image_repository_is_immutable_scanned_and_replicated_to_dr(example):
    (repo,) = example.of_type("aws:ecr/repository:Repository")
    assert repo.inputs["imageTagMutability"] == "IMMUTABLE", repo.urn
    assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}, repo.urn
    (rep,) = example.of_type("aws:ecr/replicationConfiguration:ReplicationConfiguration")
    assert rep.inputs["replicationConfiguration"]["rules"][0]["destinations"][0]["region"] == "us-west-2"


def test_with_active_dr_every_job_runs_in_dr_against_the_dr_subnets_and_the_writer_writes_the_dr_vault(failed_over):
    for s in schedules(failed_over).values():
        assert s.region == "us-west-2", s.urn
        assert s.inputs["target"]["ecsParameters"]["networkConfiguration"]["subnets"] == [
            "subnet-0dr000000000000a1", "subnet-0dr000000000000b2"], s.urn
    doc = json.loads(failed_over.named("access-backup-writer-policy").inputs["policy"])
    st = {s["Sid"]: s for s in doc["Statement"]}
    assert st["WriteBackups"]["Resource"] == "arn:aws:s3:::pilotlight-dr-vault-us-west-2-123456789012/*"
    assert st["NewDataKey"]["Resource"].startswith("arn:aws:kms:us-west-2:")
    assert st["WrapDataKeyForDr"]["Resource"].startswith("arn:aws:kms:us-east-1:")
    (repo,) = failed_over.of_type("aws:ecr/repository:Repository")
    assert repo.region == "us-east-1"  # never moves (a move would replace it and lose the images)


def test_contract_lists_every_job_with_schedule_task_and_role(example):
    jobs = {j["name"]: j for j in example.document["jobs"]}
    assert set(jobs) == set(schedules(example))
    hourly = jobs["pilotlight-dr-orders-hourly"]
    assert (hourly["kind"], hourly["database"], hourly["tier"], hourly["region"]) == ("backup", "orders", "hourly", "us-east-1")
    assert hourly["schedule"] == CRON["hourly"] and hourly["roleArn"] == WRITER
    assert hourly["command"] == ["backup", "--database", "orders", "--tier", "hourly", "--json"]
    assert jobs["pilotlight-dr-orders-verify"]["roleArn"] == READER


def test_no_nat_declares_endpoints_for_every_api_the_tasks_call():
    values = example_values()
    values["jobs"]["nat"] = False
    run = run_program(config(values))
    services = {e.inputs["serviceName"].rsplit(".", 1)[-1] if e.inputs["serviceName"].count(".") == 3
                else e.inputs["serviceName"].split(".", 3)[-1]
                for e in run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") if e.region == "us-east-1"}
    assert services >= {"s3", "kms", "secretsmanager", "monitoring", "logs", "ecr.api", "ecr.dkr"}


def test_database_secrets_and_iam_users_are_granted_to_the_task_roles_only():
    values = example_values()
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-orders-AbCdEf"
    values["databases"][0]["credentialsSecretArn"] = secret
    run = run_program(config(values))
    for what in ("writer", "reader"):
        res = run.named(f"jobs-{what}-credentials")
        doc = json.loads(res.inputs["policy"])
        # The secret and its DR replica (same ARN, the DR region): the DR side logs in during an outage.
        assert doc["Statement"] == [{"Sid": "ReadDatabaseSecrets", "Effect": "Allow",
                                     "Action": "secretsmanager:GetSecretValue",
                                     "Resource": [secret, secret.replace("us-east-1", "us-west-2")]}], res.urn


def test_a_secret_under_a_customer_key_may_be_decrypted_only_through_secrets_manager():
    values = example_values()
    key = "arn:aws:kms:us-east-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef"
    values["databases"][0]["credentialsSecretKmsKeyArn"] = key
    doc = json.loads(run_program(config(values)).named("jobs-writer-credentials").inputs["policy"])
    (decrypt,) = [s for s in doc["Statement"] if s["Sid"] == "DecryptDatabaseSecrets"]
    assert decrypt["Action"] == "kms:Decrypt" and decrypt["Resource"] == [key, key.replace("us-east-1", "us-west-2")]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": [
        "secretsmanager.us-east-1.amazonaws.com", "secretsmanager.us-west-2.amazonaws.com"]}}


RESOURCE_ID = "db-ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def iam_values():
    values = example_values()
    db = values["databases"][0]
    db.pop("credentialsSecretArn", None)
    db.update(iamAuth=True, user="pilotlight_iam", resourceId=RESOURCE_ID)
    return values


def test_iam_auth_grants_rds_db_connect_for_that_user_on_the_primary_and_the_standby_by_resource_id():
    run = run_program(config(iam_values()))
    standby = next(r for r in run.of_type("aws:rds/instance:Instance"))
    assert standby.inputs["iamDatabaseAuthenticationEnabled"] is True
    for what in ("writer", "reader"):
        doc = json.loads(run.named(f"jobs-{what}-credentials").inputs["policy"])
        (connect,) = doc["Statement"]
        assert connect["Action"] == "rds-db:connect"
        primary, dr = connect["Resource"]
        assert primary == f"arn:aws:rds-db:us-east-1:123456789012:dbuser:{RESOURCE_ID}/pilotlight_iam"
        assert dr.startswith("arn:aws:rds-db:us-west-2:123456789012:dbuser:db-") and dr.endswith("/pilotlight_iam")
        assert "*" not in primary + dr


def test_iam_auth_without_the_primarys_resource_id_is_a_config_error():
    values = iam_values()
    del values["databases"][0]["resourceId"]
    with pytest.raises(Exception, match=r"resourceId.*DbiResourceId"):
        run_program(config(values))


def test_the_contract_says_how_each_database_logs_in_never_a_value():
    run = run_program(config(iam_values()))
    assert run.outputs["databases"][0]["credentials"] == {"user": "pilotlight_iam", "iamAuth": True}
    secret_run = run_program(config(example_values()))
    creds = secret_run.outputs["databases"][0]["credentials"]
    assert creds["secretArn"]["dr"] == creds["secretArn"]["primary"].replace("us-east-1", "us-west-2")


def test_credentials_policy_is_omitted_when_nothing_to_grant_and_scoped_otherwise():
    assert jobrules.credentials_policy([], []) is None
    doc = jobrules.credentials_policy([], [f"arn:aws:rds-db:us-east-1:123456789012:dbuser:{RESOURCE_ID}/pilotlight"])
    assert doc["Statement"][0]["Action"] == "rds-db:connect"


@pytest.mark.parametrize("jobs, key", [
    ({"primaryNetwork": {"vpcId": "vpc-1", "subnetIds": ["subnet-1"]}, "schedules": {"hourly": {"cron": "5 * * * *"}}},
     "pilotlight:jobs.schedules.hourly.cron"),
    ({"primaryNetwork": {"vpcId": "vpc-1", "subnetIds": ["subnet-1"]}, "imageTag": "latest"}, "pilotlight:jobs.imageTag"),
    ({"primaryNetwork": {"vpcId": "vpc-1", "subnetIds": []}}, "pilotlight:jobs.primaryNetwork.subnetIds"),
    (None, "pilotlight:jobs.primaryNetwork"),
])
def test_bad_jobs_config_names_the_key(jobs, key):
    from stacks.config import ConfigError
    values = example_values()
    values["jobs"] = jobs
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config(values)
