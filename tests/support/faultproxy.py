"""An HTTP-aware fault proxy for the AWS emulator: the faults S3 and KMS really produce, on cue.

The sandbox's per-region proxies (scripts/sandbox/proxy.py) work at the TCP level and switch a
whole region at once (refuse, reset, stall, 503). Reliability cases need finer faults: break
only ``UploadPart`` number 2, answer ``CompleteMultipartUpload`` with a 200 that carries an
``<Error>`` (S3 does this), drop a download half way, throttle the first N requests. This proxy
parses HTTP/1.1 requests (keep-alive, Content-Length and chunked bodies) so each request can be
matched and faulted on its own, and it records every request so tests can assert what the tools
sent (for example, that no request ever carries a governance bypass).

Usage::

    with FaultProxy(upstream_url) as proxy:
        proxy.add(Fault("503", match=lambda r: r.method == "PUT", times=2))   # first 2 matching only
        proxy.add(Fault("reset", match=upload_part(2)))                        # unbounded
        ... point a client (or an outputs file, see :func:`proxied_outputs`) at proxy.url ...

Modes: ``reset`` (RST after reading part of the request), ``stall`` (read, never answer until
the proxy stops), ``503`` (SlowDown), ``429`` (TooManyRequests), ``truncate`` (forward, then cut
the response body in half and reset), ``error200`` (answer 200 with an ``<Error>`` body without
forwarding), ``error`` (answer with ``Fault.error`` = (status, code, message), e.g. KMS's
``DisabledException``, which moto does not enforce). ``times=None`` means every matching request; ``times=N`` only the first N.
"""
from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

MODES = ("reset", "stall", "503", "429", "truncate", "error200", "error")
_BODIES = {
    "503": (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    "429": (429, "Too Many Requests", "TooManyRequestsException", "Rate exceeded"),
    "error200": (200, "OK", "InternalError", "We encountered an internal error. Please try again."),
}


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body_size: int = 0

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""


@dataclass
class Fault:
    mode: str
    match: Callable[[Request], bool] = lambda r: True
    times: int | None = None
    error: tuple[int, str, str] | None = None
    hits: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown fault mode {self.mode!r}; use one of {', '.join(MODES)}")
        if (self.mode == "error") != (self.error is not None):
            raise ValueError("mode 'error' and error=(status, code, message) go together")

    def take(self, request: Request) -> bool:
        if (self.times is not None and self.hits >= self.times) or not self.match(request):
            return False
        self.hits += 1
        return True


def upload_part(number: int | None = None) -> Callable[[Request], bool]:
    """Matches S3 UploadPart (of part ``number`` if given)."""
    pat = re.compile(r"(^|&)partNumber=" + (str(number) if number else r"\d+") + r"(&|$)")
    return lambda r: r.method == "PUT" and "uploadId=" in r.query and bool(pat.search(r.query))


def complete_multipart(r: Request) -> bool:
    return r.method == "POST" and "uploadId=" in r.query


def get_object(r: Request) -> bool:
    """A GET of an object's bytes (not a listing, not a manifest)."""
    return r.method == "GET" and r.path.count("/") >= 3 and r.path.endswith("/dump")


def kms(*operations: str) -> Callable[[Request], bool]:
    """Matches KMS calls (``kms("Decrypt")``: only those operations)."""
    return lambda r: r.headers.get("x-amz-target", "").startswith("TrentService.") and (
        not operations or r.headers["x-amz-target"].split(".", 1)[1] in operations)


def s3_writes(r: Request) -> bool:
    return r.method in ("PUT", "POST") and "x-amz-target" not in r.headers


class FaultProxy:
    """Forward 127.0.0.1:<port> to ``upstream`` (a URL), applying the first matching fault per request."""

    def __init__(self, upstream: str):
        parsed = urlparse(upstream)
        self.upstream = (parsed.hostname, parsed.port)
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def __enter__(self) -> "FaultProxy":
        t = threading.Thread(target=self._accept, name="faultproxy", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._sock.close()
        for c in list(self._conns):
            _rst(c)
        for t in self._threads:
            t.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(client,), daemon=True)
            t.start()

    def _pick(self, request: Request) -> Fault | None:
        with self._lock:
            self.requests.append(request)
            return next((f for f in self.faults if f.take(request)), None)

    def _serve(self, client: socket.socket) -> None:
        self._conns.add(client)
        upstream: socket.socket | None = None
        rfile = client.makefile("rb")
        try:
            while not self._stop.is_set():
                head = _read_head(rfile)
                if head is None:
                    return
                request = _parse_request(head)
                fault = self._pick(request)
                if fault is not None and fault.mode == "reset":
                    rfile.read(min(int(request.headers.get("content-length", "0") or 0), 64 * 1024))
                    _rst(client)
                    return
                if request.headers.get("expect", "").lower() == "100-continue":
                    # Answer the client's 100-continue here; upstream gets the whole body at once.
                    client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    head = b"".join(line for line in head.splitlines(keepends=True)
                                    if not line.lower().startswith(b"expect:"))
                body = _read_body(rfile, request.headers)
                request.body_size = len(body)
                if fault is not None and fault.mode == "stall":
                    self._stop.wait()
                    return
                if fault is not None and (fault.mode in _BODIES or fault.mode == "error"):
                    client.sendall(_error_response(fault, "x-amz-target" in request.headers))
                    continue
                if upstream is None:
                    upstream = socket.create_connection(self.upstream, timeout=60)
                    self._conns.add(upstream)
                    ufile = upstream.makefile("rb")
                upstream.sendall(head + body)
                status_head, resp_body = _read_response(ufile, request.method)
                if fault is not None and fault.mode == "truncate" and len(resp_body) > 1:
                    client.sendall(status_head + resp_body[: len(resp_body) // 2])
                    _rst(client)
                    return
                client.sendall(status_head + resp_body)
                if b"connection: close" in status_head.lower():
                    return
        except OSError:
            return
        finally:
            self._conns.discard(client)
            with contextlib.suppress(OSError):
                client.close()
            if upstream is not None:
                self._conns.discard(upstream)
                with contextlib.suppress(OSError):
                    upstream.close()


def _read_head(rfile) -> bytes | None:
    lines = []
    while True:
        line = rfile.readline(65537)
        if not line:
            return None
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _headers(head: bytes) -> dict[str, str]:
    out = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip().lower()] = v.strip()
    return out


def _parse_request(head: bytes) -> Request:
    method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
    return Request(method, target, _headers(head))


def _read_body(rfile, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        out = []
        while True:
            size_line = rfile.readline()
            out.append(size_line)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the blank line
                    trailer = rfile.readline()
                    out.append(trailer)
                    if trailer in (b"\r\n", b"\n", b""):
                        return b"".join(out)
            out.append(rfile.read(size + 2))
    length = int(headers.get("content-length", "0") or 0)
    return rfile.read(length) if length else b""


def _read_response(ufile, method: str) -> tuple[bytes, bytes]:
    while True:
        head = _read_head(ufile)
        if head is None:
            raise OSError("upstream closed the connection")
        status = int(head.split(b" ", 2)[1])
        if status != 100:  # an interim 100 Continue is not the response
            break
    headers = _headers(head)
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return head, b""
    if "chunked" in headers.get("transfer-encoding", "").lower() or "content-length" in headers:
        return head, _read_body(ufile, headers)
    return head, ufile.read()


def _error_response(fault: Fault, json_api: bool) -> bytes:
    """The error as the service would word it: XML for S3, JSON for the x-amz-target APIs (KMS)."""
    if fault.error is not None:
        status, code, message = fault.error
        reason = "Error"
    else:
        status, reason, code, message = _BODIES[fault.mode]
    if json_api:
        body, ctype = json.dumps({"__type": code, "message": message}).encode(), "application/x-amz-json-1.1"
    else:
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                f"<RequestId>faultproxy</RequestId></Error>").encode()
        ctype = "application/xml"
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            f"x-amzn-RequestId: faultproxy\r\n\r\n").encode() + body


def _rst(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the peer sees a reset, not a clean end of stream."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


def proxied_outputs(outputs_path: Path, into: Path, proxies: dict[str, "FaultProxy"]) -> Path:
    """A copy of an outputs contract whose AWS endpoints (``access``) for the given regions go through proxies.

    The tools read endpoints only from the contract, so this puts the proxy in front of exactly
    the commands run with ``--outputs <copy>`` and nothing else (not the sandbox's replicator).
    """
    doc = json.loads(Path(outputs_path).read_text())
    for region, proxy in proxies.items():
        doc["access"]["awsEndpoints"][region] = proxy.url
    into.write_text(json.dumps(doc, indent=2))
    return into
