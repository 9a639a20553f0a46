"""Which Pilotlight is running: the package version and the git commit of its source tree.

Printed by ``--version`` and carried in every JSON output and drill report, so a result can
always be traced to the code that produced it.
"""
from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=1)
def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415 - only what prints it pays for it

    try:
        return version("pilotlight")
    except PackageNotFoundError:
        return "source"


@lru_cache(maxsize=1)
def commit() -> str:
    """The source tree's commit (``PILOTLIGHT_COMMIT`` wins, e.g. in an image without .git)."""
    if os.environ.get("PILOTLIGHT_COMMIT"):
        return os.environ["PILOTLIGHT_COMMIT"]
    try:
        proc = subprocess.run(["git", "-C", str(SOURCE_ROOT), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else "unknown"


def info() -> dict[str, str]:
    """What JSON outputs and reports carry under ``pilotlight``."""
    return {"version": package_version(), "commit": commit()}


def describe() -> str:
    return f"pilotlight {package_version()} (commit {commit()})"
