"""What every command shares: the common flags, loading the contract, one-line errors, JSON output.

Modelled on Barman's cloud clients: each command module has ``main(argv=None) -> int`` and
builds its parser with :func:`parser_for`; :func:`run` turns any failure into one line on
stderr and a named exit code (the traceback only with ``-v``). With ``--json`` the failure is
also a JSON object on stdout (``{"ok": false, "error": {...}}``) with the same exit code, and
every JSON result carries ``pilotlight: {version, commit}``. The exit codes and error types
themselves live in :mod:`scripts.common`, because engines raise them too.

The parser never guesses: abbreviations are off (``--y`` is not ``--yes``), an unknown flag is
named before any "required" complaint, and unknown flags and choices get a did-you-mean.
"""
from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import re
import select
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable

from scripts import version
from scripts.common import Exit, PilotlightError, did_you_mean
from scripts.contract import SANDBOX_DIR_ENV, Contract, ContractError, default_outputs_file, load_file, load_stack, parse


class ArgError(SystemExit):
    """A bad command line; still a SystemExit(2) for callers that parse outside :func:`run`."""

    def __init__(self, prog: str, message: str):
        super().__init__(int(Exit.USAGE))
        self.prog, self.message = prog, message


_CHOICE = re.compile(r"argument (?P<arg>[^:]+): invalid choice: '?(?P<got>[^' ]*)'? \(choose from (?P<choices>.*)\)")


class Parser(argparse.ArgumentParser):
    """argparse that never guesses and says what it expected."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        argv = list(sys.argv[1:] if args is None else args)
        known = set(self._option_string_actions)
        for token in argv:
            if token == "--":
                break
            name = token.split("=", 1)[0]
            if token.startswith("--") and name not in known:  # before argparse's "X is required"
                self.error(f"unrecognized argument {name}{did_you_mean(name, sorted(known))}")
        return super().parse_known_args(argv, namespace)

    def error(self, message: str):
        found = _CHOICE.match(message)
        if found:
            choices = [c.strip().strip("'") for c in found["choices"].split(",")]
            message = (f"argument {found['arg']}: invalid choice {found['got']!r} (choose from {', '.join(choices)})"
                       f"{did_you_mean(found['got'], choices)}")
        elif message.startswith("unrecognized arguments: "):
            extra = message.split(": ", 1)[1].split()
            message = f"unrecognized argument{'s' if len(extra) > 1 else ''} {' '.join(extra)}"
        raise ArgError(self.prog, message)


SOURCES = ("outputs", "stack")


def parser_for(prog: str, description: str, sources: tuple[str, ...] = SOURCES) -> Parser:
    """A parser with the flags every command takes; ``sources`` are the contract flags it accepts."""
    parser = Parser(prog=f"pilotlight {prog}", description=description)
    parser.add_argument("--version", action="version", version=version.describe(),
                        help="print the version and commit, then exit")
    source = parser.add_mutually_exclusive_group() if sources else parser
    if "outputs" in sources:
        source.add_argument(
            "--outputs",
            metavar="FILE",
            type=Path,
            help=f"stack outputs contract file (default: the sandbox's, under ${SANDBOX_DIR_ENV} or "
                 "the project root's .pilotlight/sandbox/)",
        )
    if "stack" in sources:
        source.add_argument("--stack", metavar="NAME", help="read outputs with `pulumi stack output --json --stack NAME`")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout; logs go to stderr")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    return parser


OUTPUTS_ENV = "PILOTLIGHT_OUTPUTS"


def add_confirmation(parser: argparse.ArgumentParser, does: str) -> None:
    """The one "plan only" convention of destructive commands (README, exit codes).

    ``--dry-run``: print the plan, act on nothing, exit 0. Neither flag: the same plan, nothing
    done, exit 4 (REFUSED) naming ``--yes``, so a script that forgot it fails loudly. ``--yes``: do it.
    """
    parser.add_argument("--dry-run", action="store_true", help="print the plan; act on nothing; exit 0")
    parser.add_argument("--yes", action="store_true",
                        help=f"confirm: {does} (without it: the plan only, nothing done, exit 4)")


def plan_only(args: argparse.Namespace) -> bool:
    return bool(args.dry_run or not args.yes)


def plan_exit(args: argparse.Namespace, prog: str) -> Exit:
    """The exit code after printing a plan: 0 for --dry-run, 4 when --yes was missing."""
    if args.dry_run:
        return Exit.OK
    fail(prog, "nothing done (plan only): re-run with --yes to do it, or --dry-run to only plan",
         Exit.REFUSED)
    return Exit.REFUSED


def load_contract(args: argparse.Namespace) -> Contract:
    """The contract named by --stack or --outputs, else ``$PILOTLIGHT_OUTPUTS`` (the scheduled
    tasks carry it there, components/jobs.py), else the sandbox's file."""
    if getattr(args, "stack", None):
        return load_stack(args.stack)
    if not getattr(args, "outputs", None) and os.environ.get(OUTPUTS_ENV):
        try:
            return parse(json.loads(os.environ[OUTPUTS_ENV]))
        except json.JSONDecodeError:
            raise ContractError(f"${OUTPUTS_ENV} is not valid JSON") from None
    return load_file(getattr(args, "outputs", None) or default_outputs_file())


def setup_logging(args: argparse.Namespace) -> None:
    level = logging.ERROR if getattr(args, "quiet", False) else logging.WARNING
    verbose = getattr(args, "verbose", 0)
    if verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))


def with_version(result: Any) -> Any:
    """A JSON result with ``pilotlight: {version, commit}``; a list becomes ``{"results": [...]}``."""
    if isinstance(result, list):
        result = {"results": result}
    if isinstance(result, dict):
        return {**result, "pilotlight": version.info()}
    return result


def emit(args: argparse.Namespace, result: Any, human: Callable[[], Iterable[str]] | None = None) -> None:
    """Print the result: JSON on stdout with --json, else the human lines."""
    if getattr(args, "json", False):
        json.dump(with_version(result), sys.stdout, indent=2, default=str, sort_keys=False)
        sys.stdout.write("\n")
    elif human is not None:
        for line in human():
            print(line)
    sys.stdout.flush()


def emit_failed(args: argparse.Namespace, prog: str, result: dict[str, Any], message: str,
                human: Callable[[], Iterable[str]] | None = None) -> int:
    """The operation ran but its result is a failure (e.g. a smoke check): the result as usual, with
    ``ok: false`` and the error in JSON, and one line on stderr; exit 1 (FAILED), never 2 (bad input)."""
    error = {"command": prog, "message": message, "exitCode": int(Exit.FAILED)}
    emit(args, {**result, "ok": False, "error": error}, human)
    print(f"{prog}: error: {message}", file=sys.stderr)
    return int(Exit.FAILED)


def run(body: Callable[[argparse.Namespace], int | Exit], parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse, set up logging, run ``body``; every failure becomes one line and a named exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    wants_json = "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv
    try:
        args = parser.parse_args(argv)
    except ArgError as exc:
        return fail(exc.prog, f"{exc.message} (see {exc.prog} --help)", Exit.USAGE, json_out=wants_json)
    except SystemExit as exc:  # --help / --version printed and asked to stop
        return int(exc.code or 0) and int(Exit.USAGE)
    setup_logging(args)
    as_json = bool(getattr(args, "json", False))
    callers_logins = _logins_held()
    try:
        return int(body(args))
    except PilotlightError as exc:
        return fail(parser.prog, str(exc), exc.code, json_out=as_json)
    except ContractError as exc:
        return fail(parser.prog, str(exc), Exit.USAGE, json_out=as_json)
    except KeyboardInterrupt:
        return fail(parser.prog, "interrupted", Exit.INTERRUPTED, json_out=as_json)
    except BrokenPipeError as exc:
        if not stdout_reader_gone():  # another pipe (a child's stdin): a real failure
            return _unexpected(parser.prog, exc, args, as_json)
        return _stop_writing_stdout()
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EMFILE, errno.ENFILE, errno.ENOMEM):
            return _unexpected(parser.prog, exc, args, as_json)
        return fail(parser.prog, ran_out(exc), Exit.FAILED, json_out=as_json)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback unless -v
        return _unexpected(parser.prog, exc, args, as_json)
    finally:
        if not callers_logins:
            _forget_logins()


def stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has gone (``pilotlight backups list --json | head``)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _stop_writing_stdout() -> int:
    """The reader took what it wanted: stop quietly, as ``cat`` does, with nothing left to flush at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return Exit.FAILED


def _logins_held() -> bool:
    """Whether the process already held database logins before this command (an in-process caller's)."""
    logins = sys.modules.get("scripts.postgres.credentials")  # never imported by a command that logs in nowhere
    return bool(logins and logins.PASSFILE.held)


def _forget_logins() -> None:
    """The database logins the command fetched (a 0600 passfile) end with it; a caller's stay the caller's."""
    logins = sys.modules.get("scripts.postgres.credentials")
    if logins is not None:
        logins.forget()


def ran_out(exc: OSError) -> str:
    """An environment failure as what ran out, where, and what to do."""
    where = f" writing {exc.filename}" if exc.filename else ""
    what = {errno.ENOSPC: "out of disk space", errno.EDQUOT: "over the disk quota",
            errno.EMFILE: "out of file descriptors (raise `ulimit -n`)",
            errno.ENFILE: "the system is out of file descriptors",
            errno.ENOMEM: "out of memory"}[exc.errno]
    hint = "; free space there or point TMPDIR at a larger disk" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return f"{what}{where}{hint}"


def _unexpected(prog: str, exc: BaseException, args: argparse.Namespace, as_json: bool) -> int:
    if getattr(args, "verbose", 0):
        traceback.print_exc(file=sys.stderr)
    return fail(prog, f"unexpected {type(exc).__name__}: {_first_line(exc)} (re-run with -v for the traceback)",
                Exit.FAILED, json_out=as_json)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else "(no message)"


def fail(prog: str, message: str, code: int, json_out: bool = False) -> int:
    """Report a failure: one line on stderr, and with --json an error object on stdout; returns ``code``."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    if json_out:
        json.dump(with_version({"ok": False, "error": {"command": prog, "message": message, "exitCode": int(code)}}),
                  sys.stdout, indent=2)
        sys.stdout.write("\n")
        sys.stdout.flush()
    return int(code)


def echo_for(args: argparse.Namespace) -> Callable[[str], None] | None:
    """Step lines go to stdout for people, to stderr with --json, nowhere with -q."""
    if getattr(args, "quiet", False):
        return None
    stream = sys.stderr if getattr(args, "json", False) else sys.stdout
    return lambda line: print(line, file=stream, flush=True)
