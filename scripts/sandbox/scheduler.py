"""Emulates EventBridge Scheduler -> ECS RunTask for the sandbox: the contract's jobs, on their crons.

On AWS the program's schedules start the image's ``pilotlight <command>`` as an ECS task with
the task's environment (components/jobs.py). Here each job runs as ``python -m scripts
<command> --outputs <sandbox contract>`` with the job's environment, on a clock that runs
``speed`` times faster than real time (``sandbox up --schedule-speed N``).

Differences from AWS, on purpose:
- every job runs once when the scheduler starts (a fresh stack's first backups, which on AWS
  the operator takes with ``pilotlight backup``), so ``status`` can go green without waiting a
  simulated month for the monthly tier;
- that first time, the verifications (which read the DR vault) wait, at most ``SETTLE_SECONDS``,
  until the emulated replication has copied those first backups (on AWS hours pass between them);
- a job still running when its next time comes is skipped (ECS would start a second task);
- jobs of one database run one at a time: on the accelerated clock a simulated hour passes in 30 s,
  so the hourly backup would otherwise land on the first run's weekly one and be refused its lock
  (on AWS the runbook times are hours apart);
- no flexible window and no retries: a run that fails is reported at once.
A run that exits non-zero is published to the contract's alarm topic (the sandbox's SNS), as
the program's task-failure rule does on AWS. Runs are recorded in ``<state>/jobs.json``.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator
from zoneinfo import ZoneInfo

from scripts.contract import Contract, Job, load_file
from scripts.sandbox import postgres as pg
from scripts.sandbox.state import free_port

log = logging.getLogger("pilotlight.sandbox.scheduler")
RUNS = "jobs.json"
SETTLE_SECONDS = 60
_NAMES = {"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10,
          "NOV": 11, "DEC": 12, "SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (1, 7), (1970, 2199))


def _field(text: str, lo: int, hi: int) -> set[int] | None:
    """The values a cron field allows; None for ``*``/``?`` (anything)."""
    if text in ("*", "?"):
        return None
    values: set[int] = set()
    for part in text.split(","):
        part, _, step = part.partition("/")
        if part == "*":
            start, end = lo, hi
        elif "-" in part:
            a, b = part.split("-")
            start, end = _NAMES.get(a, None) or int(a), _NAMES.get(b, None) or int(b)
        else:
            start = _NAMES.get(part) or int(part)
            end = hi if step else start
        values.update(range(start, end + 1, int(step) if step else 1))
    return values


def cron_matches(expression: str, at: datetime) -> bool:
    """Whether Scheduler's ``cron(m h dom mon dow year)`` fires in the minute ``at`` (local time)."""
    fields = expression.strip()[len("cron("):-1].split()
    allowed = [_field(f, lo, hi) for f, (lo, hi) in zip(fields, _RANGES)]
    dow = (at.isoweekday() % 7) + 1  # AWS: 1 = Sunday ... 7 = Saturday
    actual = (at.minute, at.hour, at.day, at.month, dow, at.year)
    return all(a is None or v in a for a, v in zip(allowed, actual))


def due(job: Job, start: datetime, end: datetime) -> bool:
    """Whether ``job`` fires in a minute of (start, end] (both UTC), in its own time zone."""
    tz = ZoneInfo(job.timezone)
    minute = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while minute <= end:
        if cron_matches(job.schedule, minute.astimezone(tz)):
            return True
        minute += timedelta(minutes=1)
    return False


@contextmanager
def scratch_server() -> Iterator[str]:
    """The verification task's sidecar: a throwaway PostgreSQL on loopback, trust auth, gone afterwards."""
    user = pg.os_user()
    root = Path(tempfile.mkdtemp(prefix="pilotlight-scratch-"))
    pg.chown(root, user)
    data, port = root / "data", free_port()
    try:
        pg.run(user, ["initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8",
                      "--locale=C.UTF-8"])
        pg.run(user, ["pg_ctl", "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-o",
                      f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"], timeout=70)
        yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    finally:
        pg.run(user, ["pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"], check=False)
        shutil.rmtree(root, ignore_errors=True)


def run_job(job: Job, outputs: Path, timeout: float = 600) -> dict:
    """Run one job as the task would: its command with its environment; returns the run record."""
    env = {**os.environ, **job.environment, "PILOTLIGHT_JOB": job.name}
    started = time.time()
    with ExitStack() as stack:
        command = list(job.command)
        if "--server" in command:  # the verification's scratch sidecar
            command[command.index("--server") + 1] = stack.enter_context(scratch_server())
        try:
            proc = subprocess.run([sys.executable, "-m", "scripts", *command, "--outputs", str(outputs)],
                                  capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL)
            code, tail = proc.returncode, (proc.stderr.strip().splitlines() or [""])[-1]
        except subprocess.TimeoutExpired:
            code, tail = 124, f"timed out after {timeout:.0f} s"
    return {"job": job.name, "started": datetime.fromtimestamp(started, timezone.utc).isoformat(),
            "seconds": round(time.time() - started, 2), "exitCode": code, "error": tail if code else ""}


def notify_failure(contract: Contract, run: dict) -> None:
    """What the program's task-failure rule does: the stopped task's summary to the alarm topic."""
    from scripts import aws

    side = "dr" if ":" + contract.regions["dr"] + ":" in contract.topic_arn else "primary"
    aws.client(contract, "sns", side).publish(
        TopicArn=contract.topic_arn, Subject=f"Pilotlight job failed: {run['job']}"[:100],
        Message=json.dumps({"detail-type": "ECS Task State Change", "job": run["job"], "exitCode": run["exitCode"],
                            "stoppedReason": run["error"]}),
    )


class JobScheduler:
    """Runs the contract's jobs on an accelerated clock in a background thread."""

    def __init__(self, state_dir: Path, outputs: Path, speed: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.state_dir, self.outputs, self.speed, self.clock = state_dir, outputs, speed, clock
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="sandbox-scheduler", daemon=True)
        self.runs: list[dict] = []
        self.lock = threading.Lock()
        self._busy: set[str] = set()
        self._databases: dict[str, threading.Lock] = {}
        self.replicated: Callable[[float], bool] = lambda since: True
        """Whether replication has caught up with what was written since a time (the daemon's replicator)."""

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=5)

    def simulated(self, real: float, origin: float) -> datetime:
        return datetime.fromtimestamp(origin + (real - origin) * self.speed, timezone.utc)

    def _loop(self) -> None:
        while not self.outputs.exists():  # the sandbox writes its contract once everything is up
            if self.stop_event.wait(0.5):
                return
        origin = self.clock()
        last = self.simulated(origin, origin)
        first = True
        while not self.stop_event.is_set():
            now = self.simulated(self.clock(), origin)
            try:
                contract = load_file(self.outputs)  # the active side may have changed (cutover)
                if first:  # one after another: backups of one database share its lock, verify reads them
                    self._start(contract, *sorted(contract.jobs, key=lambda j: j.kind != "backup"), settle=True)
                for job in contract.jobs if not first else ():
                    if due(job, last, now):
                        self._start(contract, job)
            except Exception:  # noqa: BLE001 - the scheduler keeps running, like the real one
                log.exception("scheduler tick failed")
            first, last = False, now
            self.stop_event.wait(1.0)

    def _start(self, contract: Contract, *jobs: Job, settle: bool = False) -> None:
        """Run ``jobs`` one after another in a thread of their own, skipping any still running.

        ``settle``: a verification after backups first waits for their replication (bounded)."""
        with self.lock:
            todo = [j for j in jobs if j.name not in self._busy]
            for j in jobs:
                if j not in todo:
                    log.info("job %s still running; this run is skipped", j.name)
            self._busy.update(j.name for j in todo)
        if todo:
            threading.Thread(target=self._run_all, args=(contract, todo, settle),
                             name=f"job-{todo[0].name}", daemon=True).start()

    def _run_all(self, contract: Contract, jobs: list[Job], settle: bool) -> None:
        wrote = None
        for job in jobs:
            if settle and job.kind == "verify" and wrote is not None:
                deadline = time.monotonic() + SETTLE_SECONDS
                while not self.replicated(wrote) and time.monotonic() < deadline and not self.stop_event.is_set():
                    time.sleep(0.2)
            self._run(contract, job)
            if job.kind == "backup":
                wrote = time.time()

    def _run(self, contract: Contract, job: Job) -> None:
        with self.lock:
            one_at_a_time = self._databases.setdefault(job.database, threading.Lock())
        try:
            with one_at_a_time:
                run = run_job(job, self.outputs)
            log.info("job %s exited %s after %s s", job.name, run["exitCode"], run["seconds"])
            if run["exitCode"]:
                try:
                    notify_failure(contract, run)
                except Exception as exc:  # noqa: BLE001 - recorded below
                    run["notifyError"] = str(exc).splitlines()[0]
            with self.lock:
                self.runs.append(run)
                tmp = self.state_dir / f".{RUNS}"
                tmp.write_text(json.dumps(self.runs[-200:], indent=1))
                tmp.replace(self.state_dir / RUNS)
        finally:
            with self.lock:
                self._busy.discard(job.name)
