"""Timed steps: what cutover, failback and drills print as they go and what reports show.

Every recovery action runs inside ``with steps.step("name"):`` so its start (ISO 8601 UTC),
duration and outcome are recorded even when it raises; a failed step keeps the reason, so a
report can say which step failed and why. A step may also end as ``warning`` (it failed but
recovery did not depend on it, e.g. a Route53 record change while DNS already answers the
standby through the failover records) or ``skipped`` (nothing to do, e.g. already promoted).
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from scripts.common import iso, utcnow

OK, WARNING, SKIPPED, FAILED = "ok", "warning", "skipped", "failed"
_MARK = {OK: "✓", WARNING: "!", SKIPPED: "-", FAILED: "✗"}


@dataclass
class Step:
    name: str
    started_at: str
    offset_seconds: float  # since the recorder started: places the step on a timeline
    seconds: float = 0.0
    status: str = OK
    detail: str = ""

    def note(self, detail: str, status: str | None = None) -> None:
        self.detail = detail
        if status is not None:
            self.status = status

    def as_dict(self) -> dict:
        """camelCase, like every JSON output."""
        return {"name": self.name, "startedAt": self.started_at, "offsetSeconds": self.offset_seconds,
                "seconds": self.seconds, "status": self.status, "detail": self.detail}


@dataclass
class Steps:
    """An ordered record of timed steps; ``echo`` receives one line per finished step."""

    echo: Callable[[str], None] | None = None
    prefix: str = ""
    steps: list[Step] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        record = Step(self.prefix + name, iso(utcnow()), round(time.monotonic() - self.t0, 3))
        self.steps.append(record)
        start = time.monotonic()
        try:
            yield record
        except BaseException as exc:
            if not (record.status == FAILED and record.detail):  # keep a reason the step itself gave
                record.detail = one_line(exc)
            record.status = FAILED
            raise
        finally:
            record.seconds = round(time.monotonic() - start, 3)
            if self.echo is not None:
                self.echo(format_step(record))

    def child(self, prefix: str) -> "Steps":
        """A recorder sharing this list and clock, naming its steps ``prefix``+name."""
        return Steps(echo=self.echo, prefix=self.prefix + prefix, steps=self.steps, t0=self.t0)

    @property
    def failed(self) -> Step | None:
        return next((s for s in self.steps if s.status == FAILED), None)

    def as_list(self) -> list[dict]:
        return [s.as_dict() for s in self.steps]


def format_step(step: Step) -> str:
    detail = f"  {step.detail}" if step.detail else ""
    return f"  {_MARK[step.status]} {step.name:<46} {step.seconds:8.3f} s{detail}"


def one_line(exc: BaseException) -> str:
    """An exception as one line (its type when it has no message)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
