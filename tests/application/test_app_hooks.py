"""Stopping and starting the application: the argv each kind runs, and what happens when a step fails.

systemd and kubectl are not installed here, so those kinds are checked by the command lines they
build (a recording runner); the command kind runs a real script that keeps a real local process.
"""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts.application import hooks
from scripts.common import PilotlightError
from scripts.contract import Application, parse
from scripts.steps import FAILED, WARNING

FIXTURE = Path(__file__).parents[1] / "fixtures" / "outputs.json"


def contract_with(app: Application):
    contract = parse(json.loads(FIXTURE.read_text()))
    db = dataclasses.replace(contract.database(), application=app)
    return contract, db


def test_systemd_stops_the_unit_and_starts_it_only_if_it_was_active():
    contract, db = contract_with(Application("systemd", 90, unit="orders-api.service"))
    calls = []
    h = hooks.Hooks(contract, db, "restore", runner=lambda argv, timeout, env: calls.append((argv, timeout)) or "")
    with hooks.stopped(h):
        pass
    assert calls == [(["systemctl", "is-active", "--quiet", "orders-api.service"], 90),
                     (["systemctl", "stop", "orders-api.service"], 90),
                     (["systemctl", "start", "orders-api.service"], 90)]

    def not_active(argv, timeout, env):
        calls.append((argv, timeout))
        if "is-active" in argv:
            raise hooks.HookError("`systemctl is-active --quiet orders-api.service` exited 3: no output on stderr", 3)
        return ""

    calls.clear()
    h = hooks.Hooks(contract, db, "restore", runner=not_active)
    with hooks.stopped(h):
        pass
    assert [argv for argv, _ in calls][-1] == ["systemctl", "stop", "orders-api.service"]  # never started
    assert "was inactive before: left stopped" in h.steps.steps[-1].detail


def test_kubernetes_reads_the_replicas_scales_to_zero_and_back():
    contract, db = contract_with(Application("kubernetes", 120, deployment="orders-api", namespace="shop",
                                             context="prod-eu"))
    calls = []

    def kubectl(argv, timeout, env):
        calls.append(argv)
        return "3" if "get" in argv else ""

    h = hooks.Hooks(contract, db, "cutover", runner=kubectl)
    assert "kubectl --context prod-eu --namespace shop scale deployment/orders-api --replicas=0" in h.plan()[0]
    with hooks.stopped(h):
        pass
    base = ["kubectl", "--context", "prod-eu", "--namespace", "shop"]
    assert calls == [
        [*base, "get", "deployment", "orders-api", "-o", "jsonpath={.spec.replicas}"],
        [*base, "scale", "deployment/orders-api", "--replicas=0"],
        [*base, "rollout", "status", "deployment/orders-api", "--timeout=120s"],
        [*base, "scale", "deployment/orders-api", "--replicas=3"],
        [*base, "rollout", "status", "deployment/orders-api", "--timeout=120s"],
    ]
    assert [s.name for s in h.steps.steps] == [hooks.STOP, hooks.START]
    assert h.steps.steps[0].detail == "deployment/orders-api scaled 3 -> 0"


def test_a_failure_in_the_body_starts_the_application_again_and_says_so():
    contract, db = contract_with(Application("kubernetes", 60, deployment="orders-api"))
    calls = []
    h = hooks.Hooks(contract, db, "restore", runner=lambda argv, t, env: calls.append(argv) or "2")
    with pytest.raises(PilotlightError, match=r"^swap rolled back, orders unchanged: boom; the application was "
                                              r"started again$"):
        with hooks.stopped(h, ", orders unchanged"):
            raise PilotlightError("swap rolled back, orders unchanged: boom")
    assert calls[-2][-1] == "--replicas=2"  # back to the count read before


def test_a_start_that_fails_after_a_failure_names_the_way_to_start_it():
    contract, db = contract_with(Application("kubernetes", 60, deployment="orders-api"))

    def broken_start(argv, t, env):
        if "--replicas=4" in argv:
            raise hooks.HookError("`kubectl scale` exited 1: connection refused")
        return "4"

    h = hooks.Hooks(contract, db, "restore", runner=broken_start)
    with pytest.raises(PilotlightError) as err:
        with hooks.stopped(h):
            raise PilotlightError("pg_restore failed")
    message = str(err.value)
    assert message.startswith("pg_restore failed; the application could NOT be started again")
    assert "--replicas=N" in message and "the count read before was 4" in message
    assert h.steps.steps[-1].status == FAILED


def test_a_failed_stop_does_nothing_else_and_a_soft_stop_lets_a_failover_go_on():
    contract, db = contract_with(Application("kubernetes", 60, deployment="orders-api"))

    def unreachable(argv, t, env):
        raise hooks.HookError("`kubectl get` exited 1: the server is unreachable")

    ran = []
    with pytest.raises(hooks.HookError, match="failed before it changed anything, nothing else was done, orders"):
        with hooks.stopped(hooks.Hooks(contract, db, "restore", runner=unreachable), ", orders unchanged"):
            ran.append("body")
    assert ran == []
    h = hooks.Hooks(contract, db, "cutover", runner=unreachable)
    with hooks.stopped(h, must_stop=False):
        ran.append("body")
    assert ran == ["body"] and [s.status for s in h.steps.steps] == [WARNING, "ok"]
    assert "nothing was scaled down" in h.steps.steps[-1].detail


def test_a_start_that_fails_after_success_says_the_operation_is_done_and_how_to_start():
    contract, db = contract_with(Application("systemd", 60, unit="api.service"))

    def runner(argv, t, env):
        if argv[1] == "start":
            raise hooks.HookError("`systemctl start api.service` exited 5: Unit api.service not found.")
        return ""

    with pytest.raises(hooks.HookError, match=r"^restore of orders complete, but starting the application failed: .*"
                                              r"it is NOT running: start it with `systemctl start api.service`"):
        with hooks.stopped(hooks.Hooks(contract, db, "restore", runner=runner), done="restore of orders complete"):
            pass


WRITER = """
import os, sys, time
path = sys.argv[1]
while True:
    with open(path, "a") as fh:
        fh.write(f"{time.time()}\\n")
    time.sleep(0.05)
"""


@pytest.fixture
def app_script(tmp_path):
    """A real 'application': a local process writing lines, with stop/start scripts keyed on a pidfile."""
    (tmp_path / "writer.py").write_text(WRITER)
    ctl = tmp_path / "appctl"
    ctl.write_text(f"""#!/bin/sh
set -e
cd {tmp_path}
case "$1" in
  stop) kill "$(cat app.pid)"; while kill -0 "$(cat app.pid)" 2>/dev/null; do sleep 0.02; done
        echo "stopped $PILOTLIGHT_OPERATION $PILOTLIGHT_DATABASE $PILOTLIGHT_HOOK" >> events ;;
  start) {sys.executable} writer.py out >/dev/null 2>&1 & echo $! > app.pid
        echo "started $PILOTLIGHT_OPERATION $PILOTLIGHT_HOOK" >> events ;;
  *) echo "password=hunter2 usage: appctl stop|start" >&2; exit 64 ;;
esac
""")
    ctl.chmod(0o755)
    subprocess.run([str(ctl), "start"], check=True, env={**os.environ, "PILOTLIGHT_OPERATION": "setup",
                                                          "PILOTLIGHT_HOOK": "start"})
    yield tmp_path, ctl
    pid = int((tmp_path / "app.pid").read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_the_command_kind_stops_a_real_process_and_starts_it_again(app_script):
    root, ctl = app_script
    time.sleep(0.3)
    contract, db = contract_with(Application("command", 10, stop=(str(ctl), "stop"), start=(str(ctl), "start")))
    h = hooks.Hooks(contract, db, "restore")
    with hooks.stopped(h):
        written = lines(root / "out")
        time.sleep(0.3)
        assert lines(root / "out") == written  # nothing written while stopped
    time.sleep(0.3)
    assert lines(root / "out") > written  # writing again
    assert (root / "events").read_text().splitlines()[-2:] == ["stopped restore orders stop", "started restore start"]
    assert [t["name"] for t in h.timings()] == [hooks.STOP, hooks.START]
    assert all(t["seconds"] >= 0 and t["status"] == "ok" for t in h.timings())


def test_a_failing_command_names_its_exit_code_and_masks_credentials(app_script):
    _, ctl = app_script
    contract, db = contract_with(Application("command", 10, stop=(str(ctl), "bogus"), start=(str(ctl), "start")))
    with pytest.raises(hooks.HookError) as err:
        hooks.Hooks(contract, db, "restore").kind.stop()
    assert "exited 64: password=*** usage" in str(err.value) and "hunter2" not in str(err.value)
    missing = Application("command", 10, stop=("/nonexistent/appctl", "stop"), start=("x",))
    with pytest.raises(hooks.HookError, match="/nonexistent/appctl not found"):
        hooks.Hooks(*contract_with(missing), "restore").kind.stop()
    slow = Application("command", 1, stop=("sleep", "5"), start=("true",))
    with pytest.raises(hooks.HookError, match=r"did not finish within 1 s \(application.timeout\)"):
        hooks.Hooks(*contract_with(slow), "restore").kind.stop()


def test_masking_covers_flags_and_url_passwords():
    assert hooks.mask("curl https://u:s3cret@h/x --token=abc api_key: zzz") == "curl https://u:***@h/x --token=*** api_key: ***"
