"""Smoke checks after a restore, cutover or drill: does the service answer as its owners say it should?

``databases[].smokeChecks`` in the contract, three kinds:

- ``sql``: the query's first column of its first row, as text, equals ``expect`` (booleans as
  ``true``/``false``, NULL as ``null``, no row as ``(no row)``);
- ``freshness``: the query returns a timestamp no older than ``maxAgeSeconds`` by the server's
  own clock (``now()``; a timestamp without time zone is read as UTC);
- ``url``: an HTTP GET answers ``expectStatus`` (redirects are not followed, so a 302 to a login
  page is not taken for health).

Queries run in a read-only transaction with ``statement_timeout`` set to the check's timeout,
so a check can neither change data nor hang the run. Every check runs (one failing does not
hide the next), each timed; a check that cannot run (connection refused, timeout) fails with
the reason.
"""
from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any

import psycopg

from scripts.common import PilotlightError, iso, utcnow
from scripts.contract import Database, SmokeCheck
from scripts.postgres import client as pg
from scripts.steps import one_line
from stacks.appconfig import expected_text


class SmokeFailed(PilotlightError):
    """At least one smoke check failed: the run is FAILED (exit 1); the message names them and the way back."""


def plan(db: Database | None) -> list[str]:
    """What a dry run says the checks will be."""
    if db is None or not db.smoke_checks:
        return []
    return [f"smoke checks of {db.name}: " + ", ".join(f"{c.name} ({c.kind})" for c in db.smoke_checks)]


def run_checks(db: Database | None, dsn: str) -> list[dict[str, Any]]:
    """Run every smoke check of ``db`` (SQL ones against ``dsn``); one result dict per check, in order."""
    if db is None:
        return []
    return [run_check(check, dsn) for check in db.smoke_checks]


def run_check(check: SmokeCheck, dsn: str) -> dict[str, Any]:
    started, t0 = iso(utcnow()), time.monotonic()
    try:
        passed, detail = {"sql": _sql, "freshness": _freshness, "url": _url}[check.kind](check, dsn)
    except PilotlightError as exc:
        passed, detail = False, str(exc)
    except psycopg.Error as exc:
        passed, detail = False, f"query failed: {one_line(exc)}"
    return {"name": check.name, "kind": check.kind, "passed": passed, "detail": detail, "startedAt": started,
            "seconds": round(time.monotonic() - t0, 3)}


def failed(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if not r["passed"]]


def lines(results: list[dict[str, Any]]) -> list[str]:
    """One line per check, as the commands print them."""
    return [f"  smoke check {r['name']}: {'pass' if r['passed'] else 'FAIL'} ({r['detail']}, {r['seconds']:.3f} s)"
            for r in results]


def failure_message(results: list[dict[str, Any]], what: str, way_back: str | None) -> str:
    bad = failed(results)
    names = "; ".join(f"{r['name']}: {r['detail']}" for r in bad)
    back = f"; to undo it: {way_back}" if way_back else ""
    return f"{what}, but {len(bad)} of {len(results)} smoke check(s) FAILED ({names}){back}"


def _first_value(check: SmokeCheck, dsn: str) -> tuple[bool, Any, datetime]:
    """(a row came back, its first column, the server's now())."""
    timeout_ms = check.timeout_seconds * 1000
    with pg.connect(dsn, autocommit=False, connect_timeout=min(check.timeout_seconds, 30)) as conn:
        conn.read_only = True
        conn.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
        row = conn.execute(check.sql).fetchone()
        (now,) = conn.execute("SELECT now()").fetchone()
        conn.rollback()
    return row is not None, (row[0] if row else None), now


def _sql(check: SmokeCheck, dsn: str) -> tuple[bool, str]:
    found, value, _ = _first_value(check, dsn)
    got = expected_text(value) if found else "(no row)"
    if got == check.expect:
        return True, f"returned {got}"
    return False, f"returned {got[:60]}, expected {check.expect}"


def _freshness(check: SmokeCheck, dsn: str) -> tuple[bool, str]:
    found, value, now = _first_value(check, dsn)
    if not found or value is None:
        return False, "no timestamp returned (empty table?)"
    if not isinstance(value, datetime):
        return False, f"returned {expected_text(value)[:40]}, not a timestamp"
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    age = (now - value).total_seconds()
    verdict = age <= check.max_age_seconds
    return verdict, f"newest {iso(value)} is {age:.0f} s old, allowed {check.max_age_seconds} s"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _url(check: SmokeCheck, _dsn: str) -> tuple[bool, str]:
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(check.url, method="GET"), timeout=check.timeout_seconds) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"GET {check.url} failed: {one_line(reason) if isinstance(reason, BaseException) else reason}"
    if status == check.expect_status:
        return True, f"GET {check.url} answered {status}"
    return False, f"GET {check.url} answered {status}, expected {check.expect_status}"
