"""What every command shares: the common flags, loading the contract, one-line errors, JSON output.

Modelled on Barman's cloud clients: each command module has ``main(argv=None) -> int`` and
builds its parser with :func:`parser_for`; :func:`run` turns any failure into one line on
stderr and a named exit code (the traceback only with ``-v``). The exit codes and error types
themselves live in :mod:`scripts.common`, because engines raise them too.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable

from scripts.common import Exit, PilotlightError
from scripts.contract import DEFAULT_OUTPUTS_FILE, Contract, ContractError, load_file, load_stack


def parser_for(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser with the flags every command takes."""
    parser = argparse.ArgumentParser(prog=f"pilotlight {prog}", description=description)
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--outputs",
        metavar="FILE",
        type=Path,
        help=f"stack outputs contract file (default: {DEFAULT_OUTPUTS_FILE}, written by `sandbox up`)",
    )
    source.add_argument("--stack", metavar="NAME", help="read outputs with `pulumi stack output --json --stack NAME`")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout; logs go to stderr")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    return parser


def load_contract(args: argparse.Namespace) -> Contract:
    """The contract named by --stack or --outputs (default: the sandbox's file)."""
    if getattr(args, "stack", None):
        return load_stack(args.stack)
    return load_file(getattr(args, "outputs", None) or DEFAULT_OUTPUTS_FILE)


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


def emit(args: argparse.Namespace, result: Any, human: Callable[[], Iterable[str]] | None = None) -> None:
    """Print the result: JSON on stdout with --json, else the human lines."""
    if getattr(args, "json", False):
        json.dump(result, sys.stdout, indent=2, default=str, sort_keys=False)
        sys.stdout.write("\n")
    elif human is not None:
        for line in human():
            print(line)
    sys.stdout.flush()


def run(body: Callable[[argparse.Namespace], int | Exit], parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse, set up logging, run ``body``; every failure becomes one line and a named exit code."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return int(exc.code or 0) and int(Exit.USAGE)
    setup_logging(args)
    try:
        return int(body(args))
    except PilotlightError as exc:
        _fail(parser.prog, str(exc), args)
        return int(exc.code)
    except ContractError as exc:
        _fail(parser.prog, str(exc), args)
        return int(Exit.USAGE)
    except KeyboardInterrupt:
        _fail(parser.prog, "interrupted", args)
        return int(Exit.INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback unless -v
        _fail(parser.prog, f"unexpected {type(exc).__name__}: {_first_line(exc)}", args, show_trace=True)
        return int(Exit.FAILED)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else "(no message)"


def _fail(prog: str, message: str, args: argparse.Namespace, show_trace: bool = False) -> None:
    if show_trace and getattr(args, "verbose", 0):
        traceback.print_exc(file=sys.stderr)
    print(f"{prog}: error: {message}", file=sys.stderr)


def echo_for(args: argparse.Namespace) -> Callable[[str], None] | None:
    """Step lines go to stdout for people, to stderr with --json, nowhere with -q."""
    if getattr(args, "quiet", False):
        return None
    stream = sys.stderr if getattr(args, "json", False) else sys.stdout
    return lambda line: print(line, file=stream, flush=True)
