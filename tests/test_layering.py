"""The layers stay layered: read every module's imports (AST, nothing is imported) and check the rules.

- libraries never import a command module: only ``scripts/commands/`` and the dispatcher may;
- components import nothing from ``stacks/`` or ``scripts/``; ``stacks/`` imports nothing from ``scripts/``;
- only ``scripts/sandbox/`` knows the sandbox: nothing else imports ``scripts.sandbox`` except the
  ``sandbox`` command, ``make drill``'s entry point and the regional-outage scenario (which asks the
  sandbox for its outage injector), and no tool reads ``<contract>.sandbox``: the contract says
  which environment it describes (``Contract.environment``), for reports and banners to name.

Modules that still break a rule today are listed by name below, each with the branch removing it.
The lists only shrink: a new module breaking a rule fails, and so does a listed module that no
longer breaks it (take it off the list).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# components -> stacks imports: none left; every component takes plain values, stacks/dr.py translates config.
COMPONENTS_IMPORTING_STACKS: set[str] = set()
# The scenario asks scripts.sandbox.faults for a real outage (kill a cluster, cut a region); the sandbox
# answers None anywhere else. Injecting outages is the sandbox's job; deciding what to do is the scenario's.
SANDBOX_IMPORTERS = {"scripts/drills/scenarios/regional_outage.py"}
# Which environment a report or banner is about comes from Contract.environment; no tool reads <contract>.sandbox.
ENVIRONMENT_NAMERS: set[str] = set()
SANDBOX_ENTRY_POINTS = {"scripts/commands/sandbox.py", "scripts/commands/make_drill.py"}


def _modules(*folders: str) -> dict[str, ast.Module]:
    return {str(p.relative_to(ROOT)): ast.parse(p.read_text(), str(p))
            for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))}


def _imports(tree: ast.Module) -> set[str]:
    """Every module an import statement names, ``from a.b import c`` giving both ``a.b`` and ``a.b.c``."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _importing(modules: dict[str, ast.Module], package: str) -> set[str]:
    return {path for path, tree in modules.items()
            if any(name == package or name.startswith(package + ".") for name in _imports(tree))}


def _reads_sandbox(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.Attribute) and node.attr == "sandbox" for node in ast.walk(tree))


TOOLS = _modules("scripts")
PROGRAM = _modules("components", "stacks")


def _ratchet(found: set[str], known: set[str], what: str) -> None:
    new, fixed = sorted(found - known), sorted(known - found)
    assert not new, f"{what}: {new} (not allowed; see the module docstring of {__name__})"
    assert not fixed, f"{what} no longer: {fixed} — take them off the known-exceptions list in {__file__}"


def test_no_library_imports_a_command_module():
    libraries = {p: t for p, t in TOOLS.items() if not p.startswith("scripts/commands/") and p != "scripts/cli.py"}
    found = sorted(_importing(libraries, "scripts.commands"))
    assert not found, f"libraries importing a command module: {found}; move what they need below the command"


def test_the_program_never_imports_the_tools():
    found = sorted(_importing(PROGRAM, "scripts"))
    assert not found, f"program modules importing scripts/: {found}"


def test_components_import_nothing_from_stacks():
    components = {p: t for p, t in PROGRAM.items() if p.startswith("components/")}
    _ratchet(_importing(components, "stacks"), COMPONENTS_IMPORTING_STACKS, "components importing stacks/")


def test_only_the_sandbox_and_its_entry_points_import_the_sandbox():
    outside = {p: t for p, t in TOOLS.items() if not p.startswith("scripts/sandbox/")}
    _ratchet(_importing(outside, "scripts.sandbox") - SANDBOX_ENTRY_POINTS, SANDBOX_IMPORTERS,
             "modules outside scripts/sandbox/ importing it")


def test_no_tool_branches_on_the_sandbox():
    exempt = ("scripts/sandbox/", "scripts/contract.py")  # the sandbox itself, and the contract that parses it
    found = {p for p, t in TOOLS.items() if not p.startswith(exempt) and p not in SANDBOX_ENTRY_POINTS
             and _reads_sandbox(t)}
    _ratchet(found, ENVIRONMENT_NAMERS, "tools reading <contract>.sandbox")

