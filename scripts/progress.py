"""A transfer progress bar (bytes, rate, ETA) and the phases after it, on a terminal only.

Silent with ``--json``, ``-q`` or when stderr is not a TTY (cron, CI, tests), so machine output
and logs stay clean. Drawn on stderr so stdout stays the command's result.

A restore's bytes are through long before it is done (pg_restore still builds indexes, then
the row counts and the swap run), so :meth:`Bar.phase` replaces the finished bar with the name
of what runs now and its elapsed time. The phases are recorded even when nothing is drawn, so
results can report how long each took.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

# rich is imported only when a bar is drawn (a terminal): cron, CI, --json and -q never load it.


def _detail_column():
    """Bytes, rate and ETA for the transfer; elapsed time for a phase."""
    from rich.progress import (DownloadColumn, ProgressColumn, TimeElapsedColumn, TimeRemainingColumn,
                               TransferSpeedColumn)
    from rich.text import Text

    class Detail(ProgressColumn):
        def __init__(self) -> None:
            super().__init__()
            self._transfer = (DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
            self._elapsed = TimeElapsedColumn()

        def render(self, task) -> Text:
            if task.fields.get("phase"):
                return self._elapsed.render(task)
            return Text(" ").join(column.render(task) for column in self._transfer)

    return Detail()


class Bar:
    """``advance(n)`` moves the bar; ``tap(chunks)`` counts what streams through; ``phase(name)`` says what runs now."""

    def __init__(self, progress: Any, task, first_phase: str = "") -> None:
        self._progress, self._task = progress, task
        self.phases: list[dict] = []
        self._since = time.monotonic()
        if first_phase:
            self.phases.append({"name": first_phase, "seconds": 0.0})

    def advance(self, n: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def tap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.advance(len(chunk))
            yield chunk

    def phase(self, name: str) -> None:
        """The previous phase ended now; ``name`` runs from here (shown as a spinner with its elapsed time)."""
        self._close_phase()
        self.phases.append({"name": name, "seconds": 0.0})
        if self._progress is not None:
            self._progress.update(self._task, visible=False)
            self._task = self._progress.add_task(name, total=None, phase=True)

    def _close_phase(self) -> None:
        now = time.monotonic()
        if self.phases:
            self.phases[-1]["seconds"] = round(now - self._since, 3)
        self._since = now

    def close(self) -> list[dict]:
        """End the last phase; the phases with their durations."""
        self._close_phase()
        return self.phases


def enabled(args) -> bool:
    return sys.stderr.isatty() and not getattr(args, "json", False) and not getattr(args, "quiet", False)


@contextmanager
def bar(args, description: str, total: int | None = None, phase: str = "") -> Iterator[Bar]:
    """A progress bar for one transfer (``phase``: its name in the recorded phases), or a silent one."""
    if args is None or not enabled(args):
        silent = Bar(None, None, phase)
        yield silent
        silent.close()
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), _detail_column(), console=Console(stderr=True),
                        transient=True)
    with progress:
        live = Bar(progress, progress.add_task(description, total=total), phase)
        yield live
        live.close()
