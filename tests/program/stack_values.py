"""Config values for program tests: the example stack (Pulumi.dr.yaml) plus helpers to vary it."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from stacks.config import StackConfig, parse_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "Pulumi.dr.yaml"


def example_values() -> dict[str, Any]:
    """The example stack's ``pilotlight:`` values, namespace stripped (a fresh deep copy)."""
    config = yaml.safe_load(EXAMPLE.read_text())["config"]
    return copy.deepcopy({k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("pilotlight:")})


def with_databases(values: dict[str, Any], count: int) -> dict[str, Any]:
    """``count`` protected databases cloned from the first one, each with its own names."""
    template = values["databases"][0]
    values["databases"] = [
        template
        | {
            "name": f"svc{i:02d}",
            "dbName": f"svc{i:02d}",
            "primaryArn": f"arn:aws:rds:us-east-1:123456789012:db:svc{i:02d}-prod",
            "primaryHost": f"svc{i:02d}-prod.c9akciq32.us-east-1.rds.amazonaws.com",
            "recordName": f"db.svc{i:02d}.example.com",
        }
        for i in range(count)
    ]
    return values


def config(values: dict[str, Any] | None = None, **top: Any) -> StackConfig:
    """Parse ``values`` (default: the example) with top-level overrides, as stack ``dr``."""
    values = example_values() if values is None else values
    values.update(top)
    return parse_config(values, project="pilotlight", stack="dr")
