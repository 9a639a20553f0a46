"""What every module shares: named exit codes, the one-line error types, the logger, ISO 8601 times.

Engines raise :class:`PilotlightError` (with its exit code) and commands turn it into one line
on stderr (:func:`scripts.commands.parser.run`), so both import this module and it imports
nothing of the tools.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from enum import IntEnum

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


def parse_timestamp(text: str, flag: str) -> datetime:
    """An ISO 8601 timestamp with an explicit offset; naive times are ambiguous and refused."""
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{flag} {text!r} is not an ISO 8601 timestamp (e.g. 2026-11-24T09:30:00Z)") from None
    if ts.tzinfo is None:
        raise UsageError(f"{flag} {text!r} has no time zone; add Z or an offset like +01:00")
    return ts.astimezone(timezone.utc)
