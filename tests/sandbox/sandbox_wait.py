"""Polling helper for sandbox tests: state changes (replication, DNS failover) take a moment."""
from __future__ import annotations

import time


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.1):
    """The first truthy value of ``predicate()``; exceptions count as "not yet"; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - not there yet
            last = exc
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last error: {last!r})")
