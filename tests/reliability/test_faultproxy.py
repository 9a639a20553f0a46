"""The fault proxy on its own, against a tiny local HTTP server: every mode, first-N vs unbounded,
keep-alive, 100-continue and the request log. Fast (no sandbox), so the proxy's own behaviour is
pinned before the reliability cases lean on it."""
from __future__ import annotations

import http.client
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.faultproxy import Fault, FaultProxy, upload_part

BODY = b"x" * 10_000


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        got = self.rfile.read(length) if length else b""
        payload = BODY if self.command == "GET" else str(len(got)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def call(proxy, method="GET", path="/b/k/dump", body=None, headers=None, timeout=2.0):
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_pass_through_keep_alive_and_100_continue(upstream):
    with FaultProxy(upstream) as proxy:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        for _ in range(3):  # one connection, several requests
            conn.request("GET", "/b/k/dump")
            resp = conn.getresponse()
            assert (resp.status, resp.read()) == (200, BODY)
        conn.close()
        assert call(proxy, "PUT", "/b/k", body=b"y" * 5000, headers={"Expect": "100-continue"}) == (200, b"5000")
        assert [r.method for r in proxy.requests] == ["GET"] * 3 + ["PUT"] and proxy.connections == 2


@pytest.mark.parametrize("mode, status, words", [("503", 503, b"SlowDown"), ("429", 429, b"TooManyRequests"),
                                                 ("error200", 200, b"<Error><Code>InternalError")])
def test_answers_without_forwarding_for_the_first_n_only(upstream, mode, status, words):
    with FaultProxy(upstream) as proxy:
        fault = proxy.add(Fault(mode, times=2))
        for _ in range(2):
            got_status, body = call(proxy)
            assert got_status == status and words in body
        assert call(proxy) == (200, BODY) and fault.hits == 2


def test_custom_error_and_json_for_x_amz_target_apis(upstream):
    with FaultProxy(upstream) as proxy:
        proxy.add(Fault("error", error=(400, "DisabledException", "key is disabled")))
        status, body = call(proxy, "POST", "/", body=b"{}", headers={"X-Amz-Target": "TrentService.Decrypt"})
        assert status == 400 and b'"__type": "DisabledException"' in body


def test_reset_truncate_and_stall(upstream):
    with FaultProxy(upstream) as proxy:
        proxy.add(Fault("reset", match=upload_part(2)))
        assert call(proxy, "PUT", "/b/k?partNumber=1&uploadId=u", body=b"a")[0] == 200
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            call(proxy, "PUT", "/b/k?partNumber=2&uploadId=u", body=b"a")
        proxy.clear()
        proxy.add(Fault("truncate", times=1))
        with pytest.raises((http.client.IncompleteRead, ConnectionError)):
            call(proxy)
        assert call(proxy) == (200, BODY)
        proxy.add(Fault("stall"))
        with pytest.raises((socket.timeout, TimeoutError)):
            call(proxy, timeout=0.5)


def test_unknown_mode_and_error_without_payload_are_refused():
    with pytest.raises(ValueError):
        Fault("sideways")
    with pytest.raises(ValueError):
        Fault("error")
