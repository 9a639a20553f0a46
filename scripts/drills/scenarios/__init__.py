"""Drill scenarios: each injects one real failure, recovers automatically and measures.

A scenario module exposes ``run(ctx: DrillContext) -> None``. It records every action as a
timed step on ``ctx.steps``, puts what it measured into ``ctx.measured`` (``rtoSeconds``,
``rpoSeconds`` and anything else worth reading), adds pass/fail ``checks`` (e.g. "rows are
back"), names the backup it used in ``ctx.backup``, and cleans up what it created in a
``finally`` of its own — the drill command turns all that into a verdict and a report.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from scripts.contract import Contract, Database
from scripts.steps import Steps

MODULES = {
    "regional-outage": "scripts.drills.scenarios.regional_outage",
    "database-loss": "scripts.drills.scenarios.database_loss",
    "data-corruption": "scripts.drills.scenarios.data_corruption",
    "ransomware": "scripts.drills.scenarios.ransomware",
    "accidental-deletion": "scripts.drills.scenarios.accidental_deletion",
}


@dataclass
class DrillContext:
    contract: Contract
    db: Database
    steps: Steps
    outputs: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)
    measured: dict[str, Any] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    backup: dict[str, Any] | None = None
    heartbeat: Any = None  # the running heartbeat writer during a data drill (scenarios.data)

    def check(self, name: str, passed: bool, detail: str = "") -> bool:
        self.checks.append({"name": name, "passed": bool(passed), "detail": detail})
        return bool(passed)


def load(name: str) -> ModuleType:
    return importlib.import_module(MODULES[name])
