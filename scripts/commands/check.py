"""`pilotlight check`: a credential-free preview of a stack, its DR policies and its objectives.

Flags and the preview summary; the preview itself is :func:`scripts.preview.check.check`.
Exit 0 when clean, 1 on any mandatory violation (advisory ones too with ``--strict``), 2 on a
config error.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from scripts.commands.parser import emit, parser_for, run
from scripts.commands.runbook import duration
from scripts.common import Exit, UsageError
from scripts.preview.check import check, failed
from stacks.policy.policies import ADVISORY, MANDATORY


def config_path(args: argparse.Namespace) -> Path:
    """``--config FILE``, or ``Pulumi.<stack>.yaml`` for ``--stack`` (default ``dr``) in the project directory."""
    if args.config is not None:
        return args.config
    return Path(f"Pulumi.{args.stack or 'dr'}.yaml")


def _duration(seconds: Any) -> str:
    return duration(seconds) if isinstance(seconds, (int, float)) else "?"


def human(path: Path, project: str, stack: str, report: dict[str, Any], strict: bool):
    def lines():
        s = report["summary"]
        if s["resources"]:
            yield f"Stack {project}/{stack} (from {path}) would contain {s['resources']} resources:"
        else:
            yield f"Stack {project}/{stack} (from {path}): not previewed, its objectives cannot be met"
        width = max([len(row["type"]) for row in s["byRegion"]] + [4])
        for row in s["byRegion"]:
            yield f"  {row['region']:<14} {row['type']:<{width}} {row['count']:>3}"
        if s["components"]:
            yield "Components: " + ", ".join(f"{t} x{n}" for t, n in s["components"].items())
        for key in report["secureKeysSkipped"]:
            yield f"  (secret {key} not decrypted: check runs without the Pulumi CLI)"
        if report["objectives"]:
            yield "Objectives (the program checked them against what it declares):"
        for name, o in report["objectives"].items():
            yield f"  {name:<20} RTO {_duration(o.get('rtoSeconds')):>7}   RPO {_duration(o.get('rpoSeconds')):>7}"
        if s["resources"]:
            yield "Outputs contract: " + (f"INVALID: {report['contract']}" if report["contract"] else "valid (version 1)")
        violations = report["violations"]
        mandatory = [v for v in violations if v["level"] == MANDATORY]
        advisory = [v for v in violations if v["level"] == ADVISORY]
        yield f"Policies: {len(mandatory)} mandatory, {len(advisory)} advisory violation(s)"
        for v in violations:
            yield f"  [{v['level']}] {v['policy']}: {v['message']}"
            yield f"      at {v['urn']}"
        yield "check: " + ("FAIL" if failed(report, strict) else "OK")

    return lines


def parse_arguments() -> argparse.ArgumentParser:
    parser = parser_for("check", "Credential-free preview: run the program under mocks, evaluate DR policies "
                                 "and objectives, exit non-zero on any violation.")
    parser.add_argument("--config", metavar="FILE", type=Path,
                        help="stack config file (default: Pulumi.<--stack>.yaml, i.e. Pulumi.dr.yaml)")
    parser.add_argument("--strict", action="store_true", help="advisory violations fail too")
    for action in parser._actions:
        if "--stack" in action.option_strings:
            action.help = "preview the stack configured in Pulumi.NAME.yaml (default: dr); no Pulumi CLI needed"
    return parser



def body(args: argparse.Namespace) -> Exit:
    if args.outputs is not None:
        raise UsageError("check previews a stack from its config: use --stack NAME or --config FILE, not --outputs")
    path = config_path(args)
    report = check(path)
    report["ok"] = not failed(report, args.strict)
    emit(args, report, human(path, report["project"], report["stack"], report, args.strict))
    return Exit.OK if report["ok"] else Exit.FAILED


def main(argv: list[str] | None = None) -> int:
    return run(body, parse_arguments(), argv)
