"""CLI start-up: `pilotlight --version` and `pilotlight backups list` on an empty vault, against 0.25 s wall.

Each command runs ``repeat`` times as the user runs it (the venv's ``pilotlight`` script), interleaved
with the floor it cannot go below: the interpreter alone, ``import boto3``, boto3 with one S3 client
(botocore loads the service model and endpoint rules to build it), and with the S3 and RDS clients a
listing builds (the vault, then each database's restorable window). CPU is
user+system of the command; wall includes the emulator's answers, which on a shared machine also wait
for a core.
"""
from __future__ import annotations

import sys
from pathlib import Path

from bench.measure import run_process, summary

TARGET_S = 0.25
PILOTLIGHT = str(Path(sys.executable).with_name("pilotlight"))
FLOOR = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import boto3": [sys.executable, "-c", "import boto3"],
    "boto3 + one S3 client": [sys.executable, "-c",
                              "import boto3; boto3.session.Session().client('s3', region_name='us-east-1')"],
    "boto3 + S3 and RDS clients (what the listing needs)": [
        sys.executable, "-c", "import boto3; s = boto3.session.Session(); "
        "s.client('s3', region_name='us-east-1'); s.client('rds', region_name='us-east-1')"],
}


def commands(outputs: Path) -> dict[str, list[str]]:
    return {"pilotlight --version": [PILOTLIGHT, "--version"],
            "pilotlight backups list (empty vault)": [PILOTLIGHT, "backups", "list", "--outputs", str(outputs)]}


def measure(outputs: Path, repeat: int = 10) -> dict:
    """Median/min wall and CPU of each command and each floor step, rounds interleaved."""
    cases = {**commands(outputs), **FLOOR}
    runs: dict[str, list] = {name: [] for name in cases}
    for _ in range(max(repeat, 5)):
        for name, cmd in cases.items():
            runs[name].append(run_process(cmd)[0])
    out = {"target_s": TARGET_S, "commands": {}, "floor": {}}
    for name, found in runs.items():
        out["commands" if name.startswith("pilotlight") else "floor"][name] = summary(found)
    for name, s in out["commands"].items():
        print(f"  {name}: median {s['median_s']:.3f} s, min {s['min_s']:.3f} s, CPU {s.get('median_cpu_s')} s",
              flush=True)
    return out


def targets(results: dict, target) -> None:
    """The start-up rows of the target checklist (``target`` is bench.report.derive's)."""
    for name, s in ((results.get("startup") or {}).get("commands") or {}).items():
        target(f"{name} ≤ {TARGET_S} s wall", s["median_s"], TARGET_S, s["median_s"] <= TARGET_S, "s")


def markdown(results: dict) -> list[str]:
    found = results.get("startup")
    if not found:
        return []
    out = ["## CLI start-up", "",
           f"Target ≤ {found['target_s']} s wall (issue 15), each command run as the user runs it, on the "
           "bench sandbox before any backup; below them the floor a listing cannot go under (bench/startup.py).", "",
           "| command | median s | min–max s | CPU s (median) |", "|---|---|---|---|"]
    for group in ("commands", "floor"):
        for name, s in found[group].items():
            out.append(f"| {name} | {s['median_s']:.3f} | {s['min_s']:.3f}–{s['max_s']:.3f} | {s.get('median_cpu_s', '—')} |")
    return [*out, ""]
