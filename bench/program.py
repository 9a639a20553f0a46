"""Program evaluation time under Pulumi's mock runtime with 1, 10, 50 protected databases.

Reuses the one mock runtime (scripts/preview/runtime.py: run_stack builds stacks.dr under
recording mocks) and their config helper that clones the example's database N times. Each count
runs in a fresh interpreter (``python -m bench.program N REPEAT`` prints JSON), so Pulumi's
global runtime state and import time never leak from one measurement into another; the first,
warm-up evaluation in each interpreter is not counted.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _evaluate(count: int, repeat: int) -> dict:
    import warnings  # noqa: PLC0415

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    sys.path.insert(0, str(ROOT / "tests" / "program"))
    from scripts.preview.runtime import run_stack  # noqa: PLC0415
    from stack_values import config, example_values, with_databases  # noqa: PLC0415

    cfg = config(with_databases(example_values(), count))
    t0 = time.perf_counter()
    first = run_stack(cfg)
    warm = time.perf_counter() - t0
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run_stack(cfg)
        runs.append(time.perf_counter() - t0)
    return {"databases": count, "resources": len(first.resources), "first_s": round(warm, 3), "runs_s": runs}


def measure(count: int, repeat: int) -> dict:
    """Evaluate the program with ``count`` databases ``repeat`` times, in a fresh interpreter."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench.program", str(count), str(repeat)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr.strip().splitlines() or ["failed"])[-1])
    doc = json.loads(proc.stdout)
    doc["process_s"] = round(time.perf_counter() - t0, 3)
    return doc


if __name__ == "__main__":
    print(json.dumps(_evaluate(int(sys.argv[1]), int(sys.argv[2]))))
