"""The one entry point: `pilotlight COMMAND ...` dispatches to one module per command."""
from __future__ import annotations

import importlib
import importlib.util
import sys

from scripts import version
from scripts.commands.parser import fail
from scripts.common import Exit, did_you_mean

# command -> (module, one-line summary). Each module has main(argv=None) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "sandbox": ("scripts.commands.sandbox", "local sandbox: up | down | status"),
    "backup": ("scripts.commands.backup", "stream an encrypted pg_dump into the vault"),
    "backups": ("scripts.commands.backups", "list backups: backups list [--region primary|dr]"),
    "verify": ("scripts.commands.verify", "prove backups are present, intact, decryptable and restorable"),
    "restore": ("scripts.commands.restore", "restore a backup into a new database and swap it in safely"),
    "cutover": ("scripts.commands.cutover", "promote the DR database and point the service name at it"),
    "failback": ("scripts.commands.failback", "build a new primary from DR (RDS) and move the service back"),
    "drill": ("scripts.commands.drill", "inject a failure, recover, measure RTO/RPO against the objectives"),
    "check": ("scripts.commands.check", "credential-free preview of a stack: resources, policies, objectives"),
    "runbook": ("scripts.commands.runbook", "render this stack's DR runbook"),
    "status": ("scripts.commands.status", "objectives against the present state"),
}

USAGE = "usage: pilotlight [--version] COMMAND [ARGS...]   (pilotlight COMMAND --help for details)"

# what people type -> what they meant: a verb that exists under another command
SLIPS: dict[tuple[str, str], str] = {
    ("backup", "list"): "backups list",
    ("backups", "create"): "backup --tier TIER",
    ("sandbox", "start"): "sandbox up",
    ("sandbox", "stop"): "sandbox down",
}


def _available(module: str) -> bool:
    """Whether a command's module exists (commands land one issue at a time)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _help() -> str:
    lines = [USAGE, "", "commands:"]
    for name, (module, summary) in COMMANDS.items():
        if _available(module):
            lines.append(f"  {name:<10} {summary}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_help())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(version.describe())
        return 0
    name, rest = argv[0], argv[1:]
    wants_json = "--json" in rest
    known = [n for n, (module, _) in COMMANDS.items() if _available(module)]
    if name not in known:
        return fail("pilotlight", f"unknown command {name!r}{did_you_mean(name, known)} "
                                  f"(commands: {', '.join(known)})", Exit.USAGE, json_out=wants_json)
    slip = SLIPS.get((name, rest[0])) if rest else None
    if slip:
        return fail(f"pilotlight {name}", f"{name} has no {rest[0]!r}; did you mean `pilotlight {slip}`?",
                    Exit.USAGE, json_out=wants_json)
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest))
