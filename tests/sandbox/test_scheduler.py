"""The sandbox runs the stack's schedule: EventBridge Scheduler -> RunTask emulated on an accelerated clock."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest

from scripts.commands import status
from scripts.contract import Job
from scripts.sandbox import control
from scripts.sandbox.scheduler import RUNS, cron_matches, due, notify_failure, run_job
from tests.conftest import start_sandbox, stop_sandbox

UTC = timezone.utc


def job(cron: str, tz: str = "UTC") -> Job:
    return Job("j", "backup", "orders", "hourly", "primary", "us-east-1", cron, tz, ("status",), {})


@pytest.mark.parametrize("cron, at, fires", [
    ("cron(5 * * * ? *)", datetime(2026, 3, 4, 7, 5), True),
    ("cron(5 * * * ? *)", datetime(2026, 3, 4, 7, 6), False),
    ("cron(0 2 * * ? *)", datetime(2026, 3, 4, 2, 0), True),
    ("cron(0 3 ? * SUN *)", datetime(2026, 3, 8, 3, 0), True),    # a Sunday
    ("cron(0 3 ? * SUN *)", datetime(2026, 3, 9, 3, 0), False),   # a Monday
    ("cron(0 4 1 * ? *)", datetime(2026, 4, 1, 4, 0), True),
    ("cron(0 4 1 * ? *)", datetime(2026, 4, 2, 4, 0), False),
    ("cron(0/15 * * * ? *)", datetime(2026, 1, 1, 0, 45), True),
    ("cron(0 9 ? * MON-FRI *)", datetime(2026, 3, 7, 9, 0), False),  # Saturday
])
def test_runbook_crons_fire_exactly_when_scheduler_would(cron, at, fires):
    assert cron_matches(cron, at) is fires


def test_a_cron_is_evaluated_in_its_time_zone():
    paris = job("cron(0 2 * * ? *)", "Europe/Paris")
    assert due(paris, datetime(2026, 1, 15, 0, 59, tzinfo=UTC), datetime(2026, 1, 15, 1, 0, tzinfo=UTC))
    assert not due(paris, datetime(2026, 1, 15, 1, 59, tzinfo=UTC), datetime(2026, 1, 15, 2, 0, tzinfo=UTC))


@pytest.fixture(scope="module")
def scheduled(tmp_path_factory):
    handle = start_sandbox(tmp_path_factory.mktemp("sandbox-scheduled"), schedule_speed=120)
    try:
        yield handle
    finally:
        stop_sandbox(handle)


def runs(handle) -> list[dict]:
    path = handle.state_dir / RUNS
    return json.loads(path.read_text()) if path.exists() else []


def test_accelerated_schedule_fills_every_tier_and_status_is_all_ok_without_a_manual_backup(scheduled, capsys):
    names = {j.name for j in scheduled.contract.jobs}
    assert {j.kind for j in scheduled.contract.jobs} == {"backup", "verify"}
    control.wait_for(lambda: names <= {r["job"] for r in runs(scheduled)}, 240, "every job to run once")
    failed = [r for r in runs(scheduled) if r["exitCode"]]
    assert not failed, failed
    capsys.readouterr()
    rc = status.main(["--outputs", str(scheduled.outputs_path), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0, [line for line in report["lines"] if line["state"] != "OK"]
    # The DR-region verification locked its restore-test record into the DR vault; status shows it.
    (evidence,) = [line for line in report["lines"] if line["check"] == "restore test"]
    assert evidence["state"] == "OK" and evidence["value"].startswith("PASS"), evidence
    assert scheduled.contract.buckets["dr"].bucket in evidence["detail"], evidence


def test_a_job_whose_database_is_down_reaches_the_alarm_topic(scheduled):
    from scripts import aws

    contract = scheduled.contract
    sqs, sns = aws.client(contract, "sqs", "primary"), aws.client(contract, "sns", "primary")
    queue = sqs.create_queue(QueueName="alarm-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=contract.topic_arn, Protocol="sqs", Endpoint=queue_arn)
    hourly = next(j for j in contract.jobs if j.tier == "hourly")
    control.stop_cluster(scheduled.state, "primary")
    try:
        run = run_job(hourly, scheduled.outputs_path, timeout=120)
        assert run["exitCode"] != 0 and run["error"]
        notify_failure(contract, run)
    finally:
        control.start_cluster(scheduled.state, "primary")
    deadline, messages = time.monotonic() + 20, []
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
    body = json.loads(json.loads(messages[0]["Body"])["Message"])
    assert body["job"] == hourly.name and body["exitCode"] == run["exitCode"]
