"""Stop the application before a swap or cutover and start it after — also when the operation fails.

Every runbook stops the application before a restore and restarts it after; here that is
``databases[].application`` in the contract, one of four kinds:

- ``ecs``: ``UpdateService`` desiredCount 0, then back to the count ``DescribeServices`` read
  before; each waits with boto3's ``services_stable`` waiter (the service's own API, no polling of ours);
- ``kubernetes``: ``kubectl scale deployment/NAME --replicas=0`` (replicas read first with
  ``kubectl get``), then back, each followed by ``kubectl rollout status``;
- ``systemd``: ``systemctl stop UNIT``; ``systemctl start UNIT`` only if it was active before;
- ``command``: the declared stop and start command lines, run without a shell.

:func:`stopped` is the one way the engines use it: stop, do the work, start again whatever
happened, with each as a timed step (``stop application``/``start application``) and the state it
left in the error when something failed. A command gets ``PILOTLIGHT_DATABASE``,
``PILOTLIGHT_OPERATION`` and ``PILOTLIGHT_HOOK`` in its environment, and reads its own secrets
there: no secret is on a command line, and none is logged (command output is never echoed, an
error names the exit code and the last line of stderr with credential-like values masked).
"""
from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from scripts import aws
from scripts.common import PilotlightError, log
from scripts.contract import Application, Contract, Database
from scripts.steps import WARNING, Steps, one_line

STOP, START = "stop application", "start application"
_MASK = re.compile(r"(?i)((?:password|passwd|secret|token|api[_-]?key)\s*[=:]\s*)\S+|(://[^/@\s:]+:)[^/@\s]+@")


class HookError(PilotlightError):
    """Stopping or starting the application failed; the message says what is running now.

    ``returncode``: the exit status of the command that failed, when one ran and exited.
    """

    def __init__(self, message: str, returncode: int | None = None):
        super().__init__(message)
        self.returncode = returncode


def mask(text: str) -> str:
    """Credential-looking values (``password=…``, ``token: …``, ``user:pass@`` in URLs) replaced by ***."""
    return _MASK.sub(lambda m: f"{m.group(1)}***" if m.group(1) else f"{m.group(2)}***@", text)


def shown(argv: tuple[str, ...] | list[str]) -> str:
    return mask(shlex.join(argv))


Runner = Callable[[list[str], int, dict[str, str]], str]


def run_argv(argv: list[str], timeout: int, env: dict[str, str]) -> str:
    """Run a command line (no shell); its stdout, or a HookError naming exit code and last stderr line."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env={**os.environ, **env},
                              stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError:
        raise HookError(f"`{shown(argv)}`: {argv[0]} not found (install it or use the full path)") from None
    except subprocess.TimeoutExpired:
        raise HookError(f"`{shown(argv)}` did not finish within {timeout} s (application.timeout)") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output on stderr"])[-1]
        raise HookError(f"`{shown(argv)}` exited {proc.returncode}: {mask(last)[:200]}", proc.returncode)
    return proc.stdout


class _Kind:
    """One kind of application: what stop/start would do (for plans) and doing it."""

    def __init__(self, app: Application, env: dict[str, str], runner: Runner):
        self.app, self.env, self.runner = app, env, runner
        self.before: Any = None  # what stop read (a count, whether a unit was active), for start to put back

    def restartable(self) -> bool:
        """After a failed stop: whether it may have stopped something (so start must run)."""
        return self.before is not None

    def run(self, argv: list[str], hook: str) -> str:
        return self.runner(argv, self.app.timeout_seconds, {**self.env, "PILOTLIGHT_HOOK": hook})


class _Command(_Kind):
    def plan(self) -> tuple[str, str]:
        return f"run `{shown(self.app.stop)}`", f"run `{shown(self.app.start)}`"

    def restartable(self) -> bool:
        return True  # a stop command may have done half its work

    def stop(self) -> str:
        self.run(list(self.app.stop), "stop")
        return f"`{shown(self.app.stop)}` succeeded"

    def start(self) -> str:
        self.run(list(self.app.start), "start")
        return f"`{shown(self.app.start)}` succeeded"


class _Systemd(_Kind):
    def argv(self, verb: str) -> list[str]:
        return ["systemctl", verb, self.app.unit] if verb != "is-active" else ["systemctl", "is-active", "--quiet",
                                                                                 self.app.unit]

    def plan(self) -> tuple[str, str]:
        return f"`{shlex.join(self.argv('stop'))}`", f"`{shlex.join(self.argv('start'))}` (if it was active)"

    def stop(self) -> str:
        try:
            self.run(self.argv("is-active"), "stop")
            self.before = True
        except HookError as exc:
            if exc.returncode is None:  # systemctl missing or hanging: not an answer
                raise
            self.before = False  # is-active exits non-zero for a unit that is not active
        self.run(self.argv("stop"), "stop")
        return f"{self.app.unit} stopped (was {'active' if self.before else 'inactive'})"

    def start(self) -> str:
        if self.before is False:
            return f"{self.app.unit} was inactive before: left stopped"
        self.run(self.argv("start"), "start")
        return f"{self.app.unit} started"


class _Kubernetes(_Kind):
    def base(self) -> list[str]:
        return ["kubectl", *(["--context", self.app.context] if self.app.context else []),
                "--namespace", self.app.namespace]

    def scale(self, replicas: int | str) -> list[str]:
        return [*self.base(), "scale", f"deployment/{self.app.deployment}", f"--replicas={replicas}"]

    def rollout(self) -> list[str]:
        return [*self.base(), "rollout", "status", f"deployment/{self.app.deployment}",
                f"--timeout={self.app.timeout_seconds}s"]

    def read(self) -> list[str]:
        return [*self.base(), "get", "deployment", self.app.deployment, "-o", "jsonpath={.spec.replicas}"]

    def plan(self) -> tuple[str, str]:
        return (f"`{shlex.join(self.scale(0))}` (replicas read first), wait for the rollout",
                f"`{shlex.join(self.scale('N'))}` with N the replicas read before, wait for the rollout")

    def stop(self) -> str:
        out = self.run(self.read(), "stop").strip()
        if not out.isdigit():
            raise HookError(f"deployment {self.app.deployment}: kubectl reported replicas {out[:40]!r}, not a number")
        self.before = int(out)
        self.run(self.scale(0), "stop")
        self.run(self.rollout(), "stop")
        return f"deployment/{self.app.deployment} scaled {out} -> 0"

    def start(self) -> str:
        if self.before is None:
            return "nothing was scaled down: left as it is"
        self.run(self.scale(self.before), "start")
        self.run(self.rollout(), "start")
        return f"deployment/{self.app.deployment} scaled back to {self.before}"


class _Ecs(_Kind):
    def __init__(self, app: Application, env: dict[str, str], runner: Runner, contract: Contract):
        super().__init__(app, env, runner)
        side = next(s for s, region in contract.regions.items() if region == app.region)
        self.client = aws.client(contract, "ecs", side)

    def plan(self) -> tuple[str, str]:
        where = f"{self.app.cluster}/{self.app.service} ({self.app.region})"
        return (f"ECS UpdateService {where} desiredCount 0 (count read first), wait until stable",
                f"ECS UpdateService {where} desiredCount back to the count read before, wait until stable")

    def _set(self, count: int) -> None:
        try:
            self.client.update_service(cluster=self.app.cluster, service=self.app.service, desiredCount=count)
            delay = max(1, min(15, self.app.timeout_seconds // 20))
            self.client.get_waiter("services_stable").wait(
                cluster=self.app.cluster, services=[self.app.service],
                WaiterConfig={"Delay": delay, "MaxAttempts": max(1, math.ceil(self.app.timeout_seconds / delay))})
        except WaiterError as exc:
            raise HookError(f"ECS service {self.app.service} did not become stable at desiredCount {count} within "
                            f"{self.app.timeout_seconds} s: {one_line(exc)}") from None
        except (BotoCoreError, ClientError) as exc:
            raise HookError(f"ECS UpdateService {self.app.service} desiredCount {count}: {one_line(exc)}") from None

    def stop(self) -> str:
        try:
            found = self.client.describe_services(cluster=self.app.cluster, services=[self.app.service])
        except (BotoCoreError, ClientError) as exc:
            raise HookError(f"ECS DescribeServices {self.app.service}: {one_line(exc)}") from None
        services = [s for s in found.get("services", []) if s.get("status") == "ACTIVE"]
        if not services:
            raise HookError(f"ECS service {self.app.service} not found (or not ACTIVE) in cluster {self.app.cluster} "
                            f"({self.app.region})")
        self.before = int(services[0]["desiredCount"])
        self._set(0)
        return f"ECS {self.app.service}: desiredCount {self.before} -> 0, stable"

    def start(self) -> str:
        if self.before is None:
            return "nothing was scaled down: left as it is"
        self._set(self.before)
        return f"ECS {self.app.service}: desiredCount 0 -> {self.before}, stable"


class Hooks:
    """The application of one database for one operation: its plan, stop and start as timed steps."""

    def __init__(self, contract: Contract, db: Database, operation: str, steps: Steps | None = None,
                 runner: Runner = run_argv):
        app = db.application
        env = {"PILOTLIGHT_DATABASE": db.name, "PILOTLIGHT_DB_NAME": db.db_name, "PILOTLIGHT_OPERATION": operation}
        kinds = {"command": _Command, "systemd": _Systemd, "kubernetes": _Kubernetes}
        self.kind = _Ecs(app, env, runner, contract) if app.kind == "ecs" else kinds[app.kind](app, env, runner)
        self.app, self.steps = app, steps if steps is not None else Steps()

    def plan(self) -> list[str]:
        stop, start = self.kind.plan()
        return [f"stop the application ({self.app.kind}): {stop}", f"start the application again: {start}"]

    def start_hint(self) -> str:
        before = self.kind.before
        return self.kind.plan()[1] + (f" (the count read before was {before})"
                                      if isinstance(before, int) and not isinstance(before, bool) else "")

    def stop(self) -> None:
        with self.steps.step(STOP) as s:
            s.note(self.kind.stop())

    def start(self) -> None:
        with self.steps.step(START) as s:
            s.note(self.kind.start())

    def timings(self) -> list[dict]:
        return [s.as_dict() for s in self.steps.steps if s.name.endswith((STOP, START))]


def for_database(contract: Contract, db: Database | None, operation: str, steps: Steps | None = None,
                 runner: Runner = run_argv) -> Hooks | None:
    return Hooks(contract, db, operation, steps, runner) if db is not None and db.application else None


@contextmanager
def stopped(hooks: Hooks | None, leaves: str = "", done: str = "the operation succeeded",
            must_stop: bool = True) -> Iterator[Hooks | None]:
    """Stop the application, run the body, start it again — whatever happened in the body.

    A failure of the body keeps its own message (and exit code), extended by what became of the
    application; a failed stop starts the application again before raising (it may be half
    stopped) and the body never runs. ``leaves`` describes the previous good state the caller
    keeps, ``done`` what a successful body did (said when only the start then fails). With
    ``must_stop`` off (a failover whose old side is gone, and its application with it) a failed
    stop is a warning and the body runs.
    """
    if hooks is None:
        yield None
        return
    soft = False
    try:
        hooks.stop()
    except HookError as exc:
        if must_stop:
            _stop_failed(hooks, exc, leaves)
            raise
        hooks.steps.steps[-1].status = WARNING
        log.warning("%s; continuing: the old side is not serving", exc)
        soft = True
    except BaseException as exc:
        _stop_failed(hooks, exc, leaves)
        raise
    try:
        yield hooks
    except BaseException as exc:
        _restart_after(hooks, exc, "")
        raise
    try:
        hooks.start()
    except HookError as exc:
        if soft:
            hooks.steps.steps[-1].status = WARNING
            log.warning("%s (the application could not be stopped either)", exc)
            return
        raise HookError(f"{done}, but starting the application failed: {exc}; it is NOT running: start it with "
                        f"{hooks.start_hint()}") from None


def _stop_failed(hooks: Hooks, exc: BaseException, leaves: str) -> None:
    if hooks.kind.restartable():
        _restart_after(hooks, exc, f"stopping the application failed, nothing else was done{leaves}")
    else:
        _note(exc, f"stopping the application failed before it changed anything, nothing else was done{leaves}")


def _restart_after(hooks: Hooks, exc: BaseException, prefix: str) -> None:
    try:
        hooks.start()
        state = "the application was started again"
    except HookError as again:
        state = f"the application could NOT be started again ({again}): start it with {hooks.start_hint()}"
    _note(exc, "; ".join(p for p in (prefix, state) if p))


def _note(exc: BaseException, note: str) -> None:
    """Extend the failure's one line with what became of the application."""
    if exc.args and isinstance(exc.args[0], str):
        exc.args = (f"{exc.args[0]}; {note}", *exc.args[1:])
    else:
        log.error("%s", note)
