"""The one entry point: `pilotlight COMMAND ...` dispatches to one module per command."""
from __future__ import annotations

import importlib
import importlib.util
import sys

# command -> (module, one-line summary). Each module has main(argv=None) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "sandbox": ("scripts.commands.sandbox", "local sandbox: up | down | status"),
    "backup": ("scripts.commands.backup", "stream an encrypted pg_dump into the vault"),
    "backups": ("scripts.commands.backups", "list backups: backups list [--region primary|dr]"),
    "verify": ("scripts.commands.verify", "prove backups are present, intact, decryptable and restorable"),
    "restore": ("scripts.commands.restore", "restore a backup into a new database and swap it in safely"),
    "cutover": ("scripts.commands.cutover", "promote the DR database and point the service name at it"),
    "failback": ("scripts.commands.failback", "re-seed the primary side and move the service back"),
    "drill": ("scripts.commands.drill", "inject a failure, recover, measure RTO/RPO against the objectives"),
    "check": ("scripts.commands.check", "credential-free preview of a stack: resources, policies, objectives"),
    "runbook": ("scripts.commands.runbook", "render this stack's DR runbook"),
    "status": ("scripts.commands.status", "objectives against the present state"),
}

USAGE = "usage: pilotlight COMMAND [ARGS...]   (pilotlight COMMAND --help for details)"


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
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS or not _available(COMMANDS[name][0]):
        print(f"pilotlight: error: unknown command {name!r}\n{USAGE}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest))
