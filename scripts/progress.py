"""A transfer progress bar (bytes, rate, ETA) on a terminal only.

Silent with ``--json``, ``-q`` or when stderr is not a TTY (cron, CI, tests), so machine output
and logs stay clean. Drawn on stderr so stdout stays the command's result.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterable, Iterator

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                           TransferSpeedColumn)


class Bar:
    """``advance(n)`` moves the bar; ``tap(chunks)`` counts what streams through."""

    def __init__(self, progress: Progress | None, task) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def tap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.advance(len(chunk))
            yield chunk


def enabled(args) -> bool:
    return sys.stderr.isatty() and not getattr(args, "json", False) and not getattr(args, "quiet", False)


@contextmanager
def bar(args, description: str, total: int | None = None) -> Iterator[Bar]:
    """A progress bar for one transfer, or a no-op one when it should be silent."""
    if args is None or not enabled(args):
        yield Bar(None, None)
        return
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=Console(stderr=True), transient=True,
    )
    with progress:
        yield Bar(progress, progress.add_task(description, total=total))
