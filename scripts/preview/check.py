"""The credential-free preview of a stack, its DR policies and its objectives (`pilotlight check`).

What a user runs before `pulumi up` and what every pull request runs first. It reads the stack's
config file (``--stack NAME`` means ``Pulumi.NAME.yaml``; no Pulumi CLI needed), runs the real
program under Pulumi's mock runtime (:mod:`scripts.preview.runtime`), prints what the stack would contain
by region and type the way a preview summary reads, evaluates the policy pack's rule functions
(stacks/policy/policies.py, the very functions `pulumi preview --policy-pack stacks/policy` runs)
on the registered inputs, and checks the exported outputs against the contract the tools read.

The program's own checks run as part of it: a config mistake or an objective the declared
infrastructure cannot meet fails here with the same one-line message as at `pulumi preview`.
Exit 0 when clean, 1 on any mandatory violation (advisory ones too with ``--strict``), 2 on a
config error.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

from scripts.common import PilotlightError, UsageError
from scripts.contract import ContractError, parse
from scripts.preview.runtime import Run, config_values, run_program
from stacks import config, objectives
from stacks.config import ConfigError, load_stack_file
from stacks.policy.policies import ADVISORY, MANDATORY, STACK_TYPE, Res, Violation, evaluate


def read_stack_file(path: Path) -> tuple[str, str, Mapping[str, Any]]:
    """The program's own stack-file reader; its mistakes are bad input here."""
    try:
        return config.read_stack_file(path)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def objective_problems(path: Path) -> list[str]:
    """The program's own objectives check, on the typed config (config mistakes raise UsageError)."""
    try:
        return objectives.problems(load_stack_file(path))
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def preview(path: Path) -> tuple[str, str, Run, list[str]]:
    """Run the project's program for the stack file at ``path``; its config errors become UsageError."""
    import pulumi

    project, stack, raw = read_stack_file(path)
    values, secure = config_values(raw)
    program = path.parent / "__main__.py"
    if not program.is_file():
        raise UsageError(f"{program}: not found; run from the project directory or pass --config")
    try:
        result = run_program(program.resolve(), project, stack, values)
    except (ConfigError, pulumi.RunError) as exc:  # the program's one-line config failure
        raise UsageError(str(exc)) from None
    except PilotlightError:
        raise
    except Exception as exc:  # noqa: BLE001 - the program failed: show its one line, as `pulumi preview` would
        raise PilotlightError(f"the program failed: {type(exc).__name__}: {_first_line(exc)}") from None
    return project, stack, result, secure


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else "(no message)"


def resources_for_policies(result: Run) -> tuple[list[Res], dict[str, str]]:
    """Registered resources as policy inputs; the Stack carries its exports, as in a stack policy."""
    resources, regions = [Res(STACK_TYPE, result.stack_urn, result.outputs, {})], {}
    for r in result.resources.values():
        resources.append(Res(r.type, r.urn, r.inputs, r.deps))
        if r.region:
            regions[r.urn] = r.region
    return resources, regions


def summary(result: Run) -> dict[str, Any]:
    """Managed resources counted by region and type, components by type."""
    custom = [r for r in result.resources.values() if r.custom and not r.type.startswith("pulumi:providers:")]
    by_region = Counter((r.region or "-", r.type) for r in custom)
    components = Counter(r.type for r in result.resources.values() if not r.custom)
    providers = sorted({r.region or "-" for r in result.resources.values() if r.type.startswith("pulumi:providers:")})
    return {
        "resources": len(custom),
        "byRegion": [{"region": reg, "type": t, "count": n} for (reg, t), n in sorted(by_region.items())],
        "components": dict(sorted(components.items())),
        "providerRegions": providers,
    }


def contract_problem(outputs: dict[str, Any]) -> str | None:
    try:
        parse(outputs)
    except ContractError as exc:
        return str(exc)
    return None


def objectives_of(outputs: dict[str, Any]) -> dict[str, Any]:
    found = outputs.get("objectives")
    return dict(found) if isinstance(found, dict) else {}


def failed(report: dict[str, Any], strict: bool) -> bool:
    levels = {MANDATORY, ADVISORY} if strict else {MANDATORY}
    return bool(report["contract"]) or any(v["level"] in levels for v in report["violations"])


def check(path: Path) -> dict[str, Any]:
    """Preview the stack file at ``path`` and evaluate policies, objectives and the contract: the report."""
    project, stack, _ = read_stack_file(path)
    infeasible = objective_problems(path)
    if infeasible:  # the program would stop here too, on the first of them
        result = Run({}, [], {}, f"urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}")
        secure: list[str] = []
        found = [Violation("objectives-feasible", MANDATORY, result.stack_urn, p) for p in infeasible]
    else:
        project, stack, result, secure = preview(path)
        resources, regions = resources_for_policies(result)
        found = sorted(evaluate(resources, regions), key=lambda v: (v.level != MANDATORY, v.policy))
    report = {
        "project": project,
        "stack": stack,
        "config": str(path),
        "summary": summary(result),
        "objectives": objectives_of(result.outputs),
        "contract": contract_problem(result.outputs) if result.resources else None,
        "violations": [asdict(v) for v in found],
        "secureKeysSkipped": secure,
    }
    return report
