"""Streaming stages that overlap: each stage runs in its own thread behind a bounded queue.

Backups and restores are chains like ``pg_dump | hash | zstd | encrypt | upload``. Chained
generators would run the stages one after another on one core; here every stage that matters
gets a thread (zstd, AES-GCM, hashlib and socket I/O all release the GIL, so on 2 cores they
really run side by side), and each queue holds at most ``depth`` chunks of ~1 MiB, so memory
stays bounded whatever the database size. An exception in any stage reaches the consumer; a
consumer that stops early (error, Ctrl-C) stops the producers too, so no thread is left behind.
"""
from __future__ import annotations

import fcntl
import hashlib
import queue
import threading
from collections import deque
from typing import Callable, Iterable, Iterator

READ_SIZE = 1 << 20
_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


class Cancelled(Exception):
    """The consumer went away; producers unwind quietly."""


def produce(body: Callable[[Callable[[bytes], None]], None], depth: int = 4, name: str = "stage") -> Iterator[bytes]:
    """Run ``body(put)`` in a thread; iterate what it puts. ``put`` blocks while the queue is full."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> None:
        while True:
            if stop.is_set():
                raise Cancelled()
            try:
                q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def runner() -> None:
        try:
            body(put)
            put(_DONE)
        except Cancelled:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            try:
                put(_Failure(exc))
            except Cancelled:
                return

    thread = threading.Thread(target=runner, name=f"pilotlight-{name}", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join(timeout=30)


def threaded(source: Iterable[bytes], depth: int = 4, name: str = "stage") -> Iterator[bytes]:
    """Pull ``source`` in its own thread, so it runs while the consumer works on earlier chunks."""

    def body(put):
        it = iter(source)
        try:
            for item in it:
                put(item)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    return produce(body, depth=depth, name=name)


def widen_pipe(fileobj, size: int = READ_SIZE) -> None:
    """Grow a pipe's kernel buffer from 64 KiB to ``size`` (Linux; elsewhere a no-op).

    With a 64 KiB pipe the two ends hand over a few KiB at a time (reading pg_dump's stdout:
    ~6 KiB per read on average, ~120,000 chunks for a 700 MiB dump, each one through every
    stage's queue); a 1 MiB pipe plus a buffered reader of the same size hands the pipeline whole
    1 MiB chunks, and a 1 MiB write into pg_restore's stdin is one hand-over, not 16. 1 MiB is
    the default ``/proc/sys/fs/pipe-max-size``, so it needs no privilege; if refused, the default
    pipe still works, only with more wake-ups.
    """
    op = getattr(fcntl, "F_SETPIPE_SZ", None)
    if op is None:
        return
    try:
        fcntl.fcntl(fileobj.fileno(), op, size)
    except OSError:
        pass


def read_chunks(fileobj, size: int = READ_SIZE) -> Iterator[bytes]:
    """A binary file or pipe as chunks of up to ``size`` bytes."""
    while True:
        data = fileobj.read(size)
        if not data:
            return
        yield data


class Digest:
    """Counts and SHA-256s the bytes that pass through :meth:`tap`."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.size = 0

    def tap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self._h.update(chunk)
            self.size += len(chunk)
            yield chunk

    def hexdigest(self) -> str:
        return self._h.hexdigest()


class Reader:
    """A read-only file object over an iterator of chunks (what boto3's upload_fileobj wants).

    ``read(n)`` returns exactly ``n`` bytes unless the stream has ended: S3 rejects multipart
    parts under 5 MiB except the last, and s3transfer sizes parts by a single ``read``.
    """

    def __init__(self, chunks: Iterable[bytes]):
        self._it = iter(chunks)
        self._parts: deque[bytes] = deque()
        self._have = 0
        self._eof = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        while not self._eof and (n < 0 or self._have < n):
            try:
                chunk = next(self._it)
            except StopIteration:
                self._eof = True
                break
            self._parts.append(chunk)
            self._have += len(chunk)
        if n < 0 or n >= self._have:
            out = b"".join(self._parts)
            self._parts.clear()
            self._have = 0
            return out
        taken, size = [], 0
        while size < n:  # whole chunks, then split the last one: one copy of n bytes
            chunk = self._parts.popleft()
            if size + len(chunk) > n:
                cut = n - size
                self._parts.appendleft(chunk[cut:])
                chunk = chunk[:cut]
            taken.append(chunk)
            size += len(chunk)
        self._have -= n
        return b"".join(taken)

    def close(self) -> None:
        close = getattr(self._it, "close", None)
        if close is not None:
            close()
