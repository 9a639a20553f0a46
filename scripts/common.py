"""What every module shares: named exit codes, the one-line error types, the logger, ISO 8601 times.

Engines raise :class:`PilotlightError` (with its exit code) and commands turn it into one line
on stderr (:func:`scripts.commands.parser.run`), so both import this module and it imports
nothing of the tools.
"""
from __future__ import annotations

import difflib
import logging
from datetime import datetime, timezone
from enum import IntEnum
from typing import Iterable

log = logging.getLogger("pilotlight")


class Exit(IntEnum):
    """Exit codes, the same for every command."""

    OK = 0
    FAILED = 1  # the operation ran and failed, or a check found a problem (verify, drill FAIL)
    USAGE = 2  # bad input: flags, ids, DSNs, outputs file; nothing was touched
    NETWORK = 3  # an endpoint (AWS, PostgreSQL, DNS) could not be reached or kept failing
    REFUSED = 4  # a safety refusal: no --yes, sessions connected, unhealthy standby, locked object
    INTERRUPTED = 130


class PilotlightError(Exception):
    """A failure the user should read as one line; ``code`` is the exit code."""

    def __init__(self, message: str, code: Exit = Exit.FAILED):
        super().__init__(message)
        self.code = code


class UsageError(PilotlightError):
    def __init__(self, message: str):
        super().__init__(message, Exit.USAGE)


class Refused(PilotlightError):
    def __init__(self, message: str):
        super().__init__(message, Exit.REFUSED)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(ts: datetime) -> str:
    """ISO 8601 in UTC with a Z, to the microsecond."""
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def shown(text: str, limit: int = 40) -> str:
    """A user's value as an error may echo it: quoted, cut at ``limit`` characters with its length."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}… ({len(text)} characters)"


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean X?"`` for the closest candidate, or nothing."""
    candidates = list(candidates)
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    close = close or [c for c in candidates if len(word.lstrip("-")) >= 2 and c.startswith(word)][:1]
    return f"; did you mean {close[0]}?" if close else ""


def camel(key: str) -> str:
    """snake_case -> camelCase, the one key style of JSON outputs."""
    head, *rest = key.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def parse_timestamp(text: str, flag: str) -> datetime:
    """An ISO 8601 timestamp with an explicit offset; naive times are ambiguous and refused."""
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{flag} {shown(text)} is not an ISO 8601 timestamp (e.g. 2026-11-24T09:30:00Z)") from None
    if ts.tzinfo is None:
        raise UsageError(f"{flag} {shown(text)} has no time zone; add Z or an offset like +01:00")
    try:
        return ts.astimezone(timezone.utc)
    except OverflowError:
        raise UsageError(f"{flag} {shown(text)} is out of range (it falls outside years 1-9999 in UTC)") from None
