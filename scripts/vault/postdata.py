"""Building a restore's post-data section (indexes, constraints, triggers) beside and after the data stream.

``pg_restore -j`` needs a seekable archive; a backup is a stream. Each backup therefore keeps its
post-data section as a small archive of its own (scripts.vault.backup.post_data_archive). While the
stream's single ``pg_restore --verbose`` loads the tables one after the other, every table it has
finished gets its own indexes and primary-key, unique and check constraints built at once, by up to
``jobs - 1`` other ``pg_restore`` runs (so ``jobs`` server processes work at a time, as with
``pg_restore -j``); when the stream has ended and been verified, one ``pg_restore -j jobs`` builds
everything else (foreign keys, triggers, index attachments, comments, materialized-view refreshes),
skipping what was built early.

An entry is built early only when it provably belongs to one finished table: an INDEX whose
``CREATE INDEX`` names its table, a CONSTRAINT or CHECK CONSTRAINT whose tag names it, all with
plain identifiers. Anything else waits for the final run, which is always correct on its own.
"""
from __future__ import annotations

import itertools
import os
import re
import subprocess
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from scripts.common import PilotlightError
from scripts.postgres import client as pg

_IDENT = r"[A-Za-z_][A-Za-z0-9_$]*"
_CREATE_INDEX = re.compile(rf"^CREATE (?:UNIQUE )?INDEX ({_IDENT}) ON (?:ONLY )?({_IDENT})\.({_IDENT}) USING ", re.M)
_ENTRY = re.compile(r"^\d+; \d+ \d+ (INDEX|CONSTRAINT|CHECK CONSTRAINT) (.*)$")
_TABLE_DONE = re.compile(r'^pg_restore: (?:processing data for table "|executing |processing BLOBS|processing item )')
_TABLE_STARTS = re.compile(r'^pg_restore: processing data for table "(.*)"$')
_PLAIN = re.compile(rf"^{_IDENT}$")


def _archive_text(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
    if proc.returncode != 0:
        raise PilotlightError(f"the backup's post-data archive is not readable ({what})")
    return proc.stdout.decode(errors="replace")


def table_entries(archive: str) -> tuple[list[str], dict[str, list[str]]]:
    """The archive's table of contents, and the entries of it that belong to one table (``schema.table``)."""
    listing = _archive_text([pg.binary("pg_restore"), "--list", archive], "pg_restore --list").splitlines()
    index_table = {(schema, name): f"{schema}.{table}"
                   for name, schema, table in _CREATE_INDEX.findall(
                       _archive_text([pg.binary("pg_restore"), "--file=-", archive], "pg_restore --file"))}
    by_table: dict[str, list[str]] = {}
    for line in listing:
        m = _ENTRY.match(line)
        if not m:
            continue
        words = m.group(2).split(" ")
        table = None
        if m.group(1) == "INDEX" and len(words) == 3:
            table = index_table.get((words[0], words[1]))
        elif m.group(1) != "INDEX" and len(words) == 4 and all(_PLAIN.match(w) for w in words[:3]):
            table = f"{words[0]}.{words[1]}"
        if table is not None:
            by_table.setdefault(table, []).append(line)
    return [line for line in listing if line and not line.startswith(";")], by_table


class PostData:
    """Post-data of one restore: early builds as tables finish (:meth:`line`), the rest in :meth:`finish`."""

    def __init__(self, archive: str, dsn: str, jobs: int, work: str, restore_cmd) -> None:
        self._archive, self._dsn, self._jobs, self._work, self._cmd = archive, dsn, jobs, work, restore_cmd
        self._listing, self._by_table = table_entries(archive)
        self._pool = ThreadPoolExecutor(max_workers=max(1, jobs - 1), thread_name_prefix="pilotlight-postdata")
        self._early: list[Future] = []
        self._built: set[str] = set()
        self._loading: str | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._names = itertools.count()
        self._running: set[subprocess.Popen] = set()
        self._killed = False

    def line(self, text: str) -> None:
        """A line of the data stream's ``pg_restore --verbose``: the table it was loading is complete
        when it moves on to the next item."""
        if not _TABLE_DONE.match(text):
            return
        with self._lock:
            if self._closed:
                return
            done, started = self._loading, _TABLE_STARTS.match(text)
            self._loading = started.group(1) if started else None
            if done in self._by_table and done not in self._built:
                self._built.add(done)
                self._early.append(self._pool.submit(self._build, self._by_table[done], done, 1))

    def finish(self) -> None:
        """After the verified stream: wait for the early builds, then ``pg_restore -j`` the rest."""
        with self._lock:
            self._closed = True
            last, self._loading = self._loading, None
            if last in self._by_table and last not in self._built:
                self._built.add(last)
                self._early.append(self._pool.submit(self._build, self._by_table[last], last, 1))
        for future in self._early:
            future.result()
        early = {line for table in self._built for line in self._by_table[table]}
        self._build([line for line in self._listing if line not in early], "rest", self._jobs)

    def close(self) -> None:
        """Stop: no new builds, running ones killed (after a failure the caller drops the database they write to)."""
        with self._lock:
            self._closed = self._killed = True
            running = list(self._running)
        for proc in running:
            if proc.poll() is None:
                proc.kill()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _build(self, entries: list[str], name: str, jobs: int) -> None:
        if not entries:
            return
        listing = os.path.join(self._work, f"post-data-{next(self._names)}.list")
        fd = os.open(listing, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("\n".join(entries) + "\n")
        cmd, env = self._cmd(self._dsn, jobs, listing, self._archive)
        with self._lock:
            if self._killed:
                return
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            self._running.add(proc)
        try:
            _, stderr = proc.communicate()
        finally:
            with self._lock:
                self._running.discard(proc)
        if proc.returncode != 0:
            tail = stderr.decode(errors="replace").splitlines()
            errors = [line for line in tail if "error" in line.lower()] or tail or ["no message"]
            what = f"of table {name}" if name != "rest" else f"(pg_restore -j {jobs})"
            raise PilotlightError(f"building indexes and constraints {what} failed (stopped at the first error): "
                                  f"{errors[0]}")
