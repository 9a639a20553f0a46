"""Timing and peak memory of one run, and the statistics of several (median and spread).

Peak RSS of a child process: ``os.wait4`` gives ``ru_maxrss`` of the child and the children it
waited for (pg_dump, pg_restore), so it is the larger of the tool and its helpers; a poller
reads the tool's own high-water mark (``VmHWM`` in /proc) until it exits, which is the figure
the < 200 MB target is about.
"""
from __future__ import annotations

import os
import pwd
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


@dataclass
class Run:
    seconds: float
    rss_mib: float | None = None  # the process's own peak (VmHWM)
    tree_rss_mib: float | None = None  # ru_maxrss: the process or its largest waited-for child
    cpu_s: float | None = None  # user + system CPU of the process and its waited-for children (not the server's)
    extra: dict = field(default_factory=dict)


class Failed(Exception):
    """A measured command failed; the benchmark reports the line and carries on with the others."""


def _hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run_process(cmd: list[str], *, env: dict | None = None, capture: bool = False, user: str | None = None,
                timeout: float = 3600, cwd: Path | None = None) -> tuple[Run, bytes]:
    """Run ``cmd`` to completion: wall time, peak RSS, stdout (if ``capture``). Failed on non-zero exit.

    Output goes to temp files, not pipes, so nothing needs draining while we sit in wait4().
    """
    kwargs = {}
    if user:
        entry = pwd.getpwnam(user)
        kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out if capture else subprocess.DEVNULL,
                                stderr=err, cwd=cwd, **kwargs)
        peak = [0]
        done = threading.Event()

        def poll() -> None:
            while not done.wait(0.02):
                kib = _hwm_kib(proc.pid)
                if kib:
                    peak[0] = max(peak[0], kib)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        seconds = time.perf_counter() - t0
        done.set()
        poller.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read().decode(errors="replace")
    if proc.returncode != 0:
        tail = (stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise Failed(f"{os.path.basename(cmd[0])} failed: {tail}")
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, peak[0] / 1024 if peak[0] else None, usage.ru_maxrss / 1024, cpu), stdout


def timed(fn: Callable[[], object]) -> Run:
    """Wall time of an in-process call (used for boto3 transfers, where a subprocess adds nothing)."""
    t0 = time.perf_counter()
    extra = fn()
    return Run(time.perf_counter() - t0, extra=extra if isinstance(extra, dict) else {})


def summary(runs: list[Run]) -> dict:
    """Median and spread of the wall times, and the peak RSS over all runs."""
    secs = [r.seconds for r in runs]
    out = {
        "median_s": round(statistics.median(secs), 3),
        "min_s": round(min(secs), 3),
        "max_s": round(max(secs), 3),
        "stdev_s": round(statistics.stdev(secs), 3) if len(secs) > 1 else 0.0,
        "runs_s": [round(s, 3) for s in secs],
    }
    rss = [r.rss_mib for r in runs if r.rss_mib]
    tree = [r.tree_rss_mib for r in runs if r.tree_rss_mib]
    if rss:
        out["peak_rss_mib"] = round(max(rss), 1)
    if tree:
        out["peak_tree_rss_mib"] = round(max(tree), 1)
    phases = [r.extra["phases"] for r in runs if r.extra.get("phases")]
    if phases:
        out["phases_median_s"] = {k: round(statistics.median(p[k] for p in phases if k in p), 3) for k in phases[0]}
    cpu = [r.cpu_s for r in runs if r.cpu_s is not None]
    if cpu:
        out["median_cpu_s"] = round(statistics.median(cpu), 2)
    return out
