"""`make drill` as the benchmark runs it: the regional-outage drill on a sandbox of its own.

Runs ``python -m scripts.commands.make_drill`` exactly as the Makefile does (sandbox up, drill, sandbox
down) in a temp state dir, times the whole command, and reads measured RTO/RPO and the drill's
own wall time from the JSON report it writes.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(scenario: str = "regional-outage") -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="pilotlight-bench-drill-"))
    try:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "scripts.commands.make_drill", "--scenarios", scenario,
                               "--report", str(tmp / "reports"), "--state-dir", str(tmp / "sandbox")],
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                              timeout=900)
        command_s = time.perf_counter() - t0
        reports = sorted((tmp / "reports").glob(f"*-{scenario}.json"))
        if not reports:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            raise RuntimeError(f"make drill wrote no report (exit {proc.returncode}): {' | '.join(tail)}")
        result = json.loads(reports[-1].read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "scenario": scenario,
        "verdict": result["verdict"],
        "exit_code": proc.returncode,
        "rto_s": result["measured"].get("rtoSeconds"),
        "rpo_s": result["measured"].get("rpoSeconds"),
        "objective": result["objective"],
        "drill_wall_s": result["wallSeconds"],
        "make_drill_wall_s": round(command_s, 3),
        "failed_step": result.get("failedStep"),
        "error": result.get("error"),
    }
