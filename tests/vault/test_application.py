"""A restore around a live application, and the checks that say the service works afterwards.

On real local services: the sandbox's PostgreSQL and moto (ECS), a real local process writing
into the protected database as the application, a local HTTP server on 127.0.0.1.
"""
from __future__ import annotations

import dataclasses
import http.server
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from scripts import aws
from scripts.application import hooks, smoke
from scripts.commands import drill, restore
from scripts.common import Exit
from scripts.contract import Application, SmokeCheck
from scripts.vault import backup as vault_backup
from scripts.vault import restore as vault_restore
from tests.vault.conftest import one_line_error

WRITER = """
import os, time, psycopg
while True:
    try:
        with psycopg.connect(os.environ["APP_DSN"], autocommit=True) as conn:
            while True:
                conn.execute("insert into app_writes default values")
                time.sleep(0.05)
    except psycopg.Error:
        time.sleep(0.05)
"""


@pytest.fixture
def app(env, tmp_path):
    """The orders application: a process writing into ``orders.app_writes``, stopped and started by a script."""
    env.execute("orders", "CREATE TABLE IF NOT EXISTS app_writes (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())")
    (tmp_path / "writer.py").write_text(WRITER)
    ctl = tmp_path / "appctl"
    ctl.write_text(f"""#!/bin/sh
cd {tmp_path}
case "$1" in
  stop) kill "$(cat app.pid)" && while kill -0 "$(cat app.pid)" 2>/dev/null; do sleep 0.02; done
        echo "stop $PILOTLIGHT_OPERATION" >> events ;;
  start) APP_DSN='{env.dsn("orders")}' {sys.executable} writer.py >/dev/null 2>&1 & echo $! > app.pid
        echo "start $PILOTLIGHT_OPERATION" >> events ;;
esac
""")
    ctl.chmod(0o755)
    subprocess.run([str(ctl), "start"], check=True)
    (tmp_path / "events").unlink()  # only what the tools do from here on
    time.sleep(0.5)
    yield tmp_path, ctl
    try:
        os.kill(int((tmp_path / "app.pid").read_text()), signal.SIGTERM)
    except (ProcessLookupError, ValueError):
        pass


def outputs_with(env, tmp_path: Path, application: dict | None, checks: list[dict]) -> str:
    doc = json.loads(Path(env.outputs).read_text())
    item = doc["databases"][0]
    item.pop("application", None)
    if application:
        item["application"] = application
    item["smokeChecks"] = checks
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(doc))
    return str(path)


ROWS = {"name": "orders readable", "kind": "sql", "timeoutSeconds": 10, "sql": "select count(*) > 0 from orders",
        "expect": "true"}


def command(ctl: Path) -> dict:
    return {"kind": "command", "timeoutSeconds": 30, "stop": [str(ctl), "stop"], "start": [str(ctl), "start"]}


def writes(env, dbname: str = "orders") -> int:
    return env.query(dbname, "SELECT count(*) FROM app_writes")[0][0]


def writing(env, dbname: str = "orders", within: float = 15.0) -> bool:
    """The application is writing into ``dbname``: its row count grows."""
    start, deadline = writes(env, dbname), time.monotonic() + within
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if writes(env, dbname) > start:
            return True
    return False


def test_restore_stops_the_application_swaps_and_starts_it_on_the_restored_database(env, app, tmp_path, capsys):
    root, ctl = app
    manifest = vault_backup.perform_backup(env.contract, "hourly")
    outputs = outputs_with(env, tmp_path, command(ctl), [ROWS])
    target = env.dsn("orders")
    assert restore.main(["--outputs", outputs, "--target", target, "--backup", manifest.id, "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert f"run `{ctl} stop`" in plan and f"run `{ctl} start`" in plan and "smoke checks of orders: orders readable" in plan
    assert not (root / "events").exists()  # a dry run runs no hook
    # no --terminate-sessions: the writer's session goes away because the application is stopped first
    assert restore.main(["--outputs", outputs, "--target", target, "--backup", manifest.id, "--yes", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(a["name"], a["status"]) for a in out["application"]] == [(hooks.STOP, "ok"), (hooks.START, "ok")]
    assert all(a["seconds"] > 0 for a in out["application"])
    assert [(c["name"], c["passed"]) for c in out["smokeChecks"]] == [("orders readable", True)]
    assert out["smokeChecks"][0]["seconds"] >= 0 and out["rollbackCommand"].endswith("--rollback --yes")
    kept = out["keptPreviousAs"]
    stopped_at = writes(env, kept)
    time.sleep(0.5)
    assert writes(env, kept) == stopped_at  # nothing reached the kept copy after the stop
    assert writing(env)  # the application writes into the restored database again
    assert (root / "events").read_text().splitlines() == ["stop restore", "start restore"]
    env.execute("postgres", f'DROP DATABASE "{kept}" WITH (FORCE)')


def test_a_restore_into_another_server_never_stops_the_stacks_application(env, app, tmp_path, empty_server, capsys):
    root, ctl = app
    manifest = vault_backup.perform_backup(env.contract, "hourly")
    outputs = outputs_with(env, tmp_path, command(ctl), [ROWS])
    scratch = empty_server.dsn("orders")  # same database name, another server
    assert restore.main(["--outputs", outputs, "--target", scratch, "--backup", manifest.id, "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "stop the application" not in plan and "smoke checks" not in plan
    assert not (root / "events").exists()


def test_a_failed_restore_starts_the_application_again_and_says_so(env, app, tmp_path, monkeypatch, capsys):
    root, ctl = app
    manifest = vault_backup.perform_backup(env.contract, "hourly")
    outputs = outputs_with(env, tmp_path, command(ctl), [ROWS])

    def broken(*args, **kwargs):
        raise vault_restore.PilotlightError("pg_restore failed (stopped at the first error): simulated")

    monkeypatch.setattr(vault_restore, "_stream_restore", broken)
    before = env.databases()
    rc = restore.main(["--outputs", outputs, "--target", env.dsn("orders"), "--backup", manifest.id, "--yes"])
    assert rc == Exit.FAILED
    assert one_line_error(capsys).endswith("simulated; the application was started again")
    assert env.databases() == before
    assert writing(env)  # running, and writing into the untouched database
    assert (root / "events").read_text().splitlines() == ["stop restore", "start restore"]


def test_a_failed_smoke_check_fails_the_restore_and_offers_the_rollback(env, app, tmp_path, capsys):
    _, ctl = app
    manifest = vault_backup.perform_backup(env.contract, "hourly")
    wrong = {"name": "exact count", "kind": "sql", "timeoutSeconds": 10, "sql": "select count(*) from orders",
             "expect": "-1"}
    outputs = outputs_with(env, tmp_path, command(ctl), [ROWS, wrong])
    rc = restore.main(["--outputs", outputs, "--target", env.dsn("orders"), "--backup", manifest.id, "--yes", "--json"])
    assert rc == Exit.FAILED  # the restore ran and its result is a failure: 1, not bad input's 2
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["ok"] is False and out["error"]["exitCode"] == 1
    assert [c["passed"] for c in out["smokeChecks"]] == [True, False]
    message = captured.err.strip()
    assert "1 of 2 smoke check(s) FAILED (exact count: returned" in message and "expected -1" in message
    rollback = message.split("to undo it: ", 1)[1]
    assert rollback == out["rollbackCommand"] and rollback.startswith("pilotlight restore --target ")
    argv = shlex.split(rollback)[2:]
    assert restore.main(argv) == 0  # the offered command is exactly right
    capsys.readouterr()


def test_ecs_service_is_scaled_to_zero_and_back_to_the_count_read_before(env):
    ecs = aws.client(env.contract, "ecs", "primary")
    ecs.create_cluster(clusterName="orders-prod")
    ecs.register_task_definition(family="orders-api", containerDefinitions=[
        {"name": "api", "image": "orders-api:1", "memory": 512}])
    ecs.create_service(cluster="orders-prod", serviceName="orders-api", taskDefinition="orders-api", desiredCount=3)
    app = Application("ecs", 30, cluster="orders-prod", service="orders-api", region=env.contract.regions["primary"])
    db = dataclasses.replace(env.contract.database(), application=app)
    h = hooks.Hooks(env.contract, db, "restore")
    assert "ECS UpdateService orders-prod/orders-api (us-east-1) desiredCount 0" in h.plan()[0]

    def desired():
        return ecs.describe_services(cluster="orders-prod", services=["orders-api"])["services"][0]["desiredCount"]

    with hooks.stopped(h):
        assert desired() == 0
    assert desired() == 3
    assert [s.detail for s in h.steps.steps] == ["ECS orders-api: desiredCount 3 -> 0, stable",
                                                 "ECS orders-api: desiredCount 0 -> 3, stable"]
    gone = Application("ecs", 30, cluster="orders-prod", service="no-such-api", region=app.region)
    with pytest.raises(hooks.HookError, match="no-such-api not found"):
        hooks.Hooks(env.contract, dataclasses.replace(db, application=gone), "restore").stop()


@pytest.fixture
def http_server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            code = {"/health": 200, "/broken": 503, "/moved": 302}.get(self.path, 404)
            self.send_response(code)
            if code == 302:
                self.send_header("Location", "/health")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_smoke_checks_on_real_postgresql_and_http(env, http_server):
    env.execute("orders", "CREATE TABLE IF NOT EXISTS smoke_events (at timestamp)",
                "TRUNCATE smoke_events", "INSERT INTO smoke_events VALUES (now() AT TIME ZONE 'UTC' - interval '10 minutes')")
    dsn = env.dsn("orders")
    checks = [
        SmokeCheck("count", "sql", 5, sql="select count(*) from smoke_events", expect="1"),
        SmokeCheck("wrong", "sql", 5, sql="select count(*) > 1 from smoke_events", expect="true"),
        SmokeCheck("fresh", "freshness", 5, sql="select max(at) from smoke_events", max_age_seconds=3600),
        SmokeCheck("stale", "freshness", 5, sql="select max(at) from smoke_events", max_age_seconds=60),
        SmokeCheck("slow", "sql", 1, sql="select pg_sleep(3) is null", expect="false"),
        SmokeCheck("writes", "sql", 5, sql="insert into smoke_events values (now()) returning 1", expect="1"),
        SmokeCheck("health", "url", 5, url=f"{http_server}/health", expect_status=200),
        SmokeCheck("broken", "url", 5, url=f"{http_server}/broken", expect_status=200),
        SmokeCheck("moved", "url", 5, url=f"{http_server}/moved", expect_status=200),
        SmokeCheck("down", "url", 2, url="http://127.0.0.1:9/health", expect_status=200),
    ]
    results = {r["name"]: r for r in (smoke.run_check(c, dsn) for c in checks)}
    passed = {name for name, r in results.items() if r["passed"]}
    assert passed == {"count", "fresh", "health"}
    assert results["wrong"]["detail"] == "returned false, expected true"
    assert results["stale"]["detail"].endswith("s old, allowed 60 s")
    assert "statement timeout" in results["slow"]["detail"]
    assert "read-only transaction" in results["writes"]["detail"]  # a check never changes data
    assert results["broken"]["detail"].endswith("answered 503, expected 200")
    assert results["moved"]["detail"].endswith("answered 302, expected 200")  # a redirect is not health
    assert "failed" in results["down"]["detail"]
    assert env.query("orders", "SELECT count(*) FROM smoke_events") == [(1,)]
    assert all(r["seconds"] >= 0 and r["startedAt"].endswith("Z") for r in results.values())


def test_drill_dry_run_lists_the_hooks_and_smoke_checks(env, capsys):
    assert drill.main(["--outputs", env.outputs, "--scenario", "data-corruption", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "around each restore and cutover: stop the application (command): run `sh -c" in out
    assert "after each drill: smoke checks of orders: orders readable (sql), orders fresh (freshness)" in out
