"""Components take plain values or ready documents: none of the vault's imports anything from stacks/."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

COMPONENTS = Path(__file__).resolve().parents[2] / "components"


@pytest.mark.parametrize("module", ["vault", "rules", "keys", "access", "alarms", "audit"])
def test_component_imports_nothing_from_stacks(module):
    tree = ast.parse((COMPONENTS / f"{module}.py").read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m == "stacks" or m.startswith("stacks.")], imported
