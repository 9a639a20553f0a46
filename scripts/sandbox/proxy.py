"""A small TCP forwarding proxy with a fault switch: how a sandbox region becomes unreachable for real.

One :class:`Proxy` per AWS region (and one for Route53's control plane) sits in front of the
one moto server. Its ``mode`` decides what a client sees:

- ``pass``   forward bytes both ways (normal)
- ``refuse`` stop listening: new connections get ECONNREFUSED, open ones are reset (region down)
- ``reset``  accept, then reset the connection at once (a flaky load balancer)
- ``stall``  accept and read, never answer (a black hole; clients hit their read timeout)
- ``503``    answer every request with ``HTTP/1.1 503 Service Unavailable`` (throttled/unavailable service)

Runs on an asyncio loop (the daemon's); :meth:`set_mode` is a coroutine so callers know the
mode is in force when it returns. A connection whose first request is signed for RDS
(SigV4 scope ``…/rds/aws4_request``) goes to ``rds_target`` (the emulated RDS control plane,
:mod:`scripts.sandbox.rds`) instead of moto: boto3 keeps one connection pool per client, so a
connection carries one service. Either way it passes this proxy, so its fault modes apply. Built to be reused by a reliability suite for fault injection.
"""
from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

RDS_SCOPE = b"/rds/aws4_request"
MODES = ("pass", "refuse", "reset", "stall", "503")
CHUNK = 256 * 1024
_503 = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/xml\r\nContent-Length: 118\r\n"
        b"Connection: close\r\n\r\n<?xml version=\"1.0\"?><Error><Code>ServiceUnavailable</Code>"
        b"<Message>sandbox fault injection</Message></Error>\n")


class Proxy:
    """Forward 127.0.0.1:``port`` to ``target``; ``port`` 0 picks a free one and keeps it across modes."""

    def __init__(self, name: str, target: tuple[str, int], port: int = 0, rds_target: tuple[str, int] | None = None):
        self.name = name
        self.target = target
        self.rds_target = rds_target
        self.port = port
        self.mode = "pass"
        self.connections = 0
        self._server: asyncio.base_events.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        await self._listen()

    async def stop(self) -> None:
        await self._close_listener()
        self._reset_open()

    async def set_mode(self, mode: str) -> None:
        """Switch behaviour; every connection opened before the switch is reset unless the mode is pass."""
        if mode not in MODES:
            raise ValueError(f"unknown proxy mode {mode!r}; use one of {', '.join(MODES)}")
        self.mode = mode
        if mode == "refuse":
            await self._close_listener()
        elif self._server is None:
            await self._listen()
        if mode != "pass":
            self._reset_open()

    def describe(self) -> dict:
        return {"name": self.name, "port": self.port, "mode": self.mode, "open": len(self._open),
                "connections": self.connections}

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _reset_open(self) -> None:
        for writer in list(self._open):
            _abort(writer)
        self._open.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        mode = self.mode
        if mode in ("reset", "refuse"):
            _abort(writer)
            return
        self._open.add(writer)
        try:
            if mode == "stall":
                while await reader.read(CHUNK):
                    pass
            elif mode == "503":
                await reader.read(CHUNK)
                writer.write(_503)
                await writer.drain()
            else:
                await self._forward(reader, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._open.discard(writer)
            _close(writer)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, target = b"", self.target
        if self.rds_target is not None:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                head = b""  # headers beyond the reader's limit: not a boto3 RDS request
            if RDS_SCOPE in head:
                target = self.rds_target
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            _abort(writer)
            return
        self._open.add(up_writer)
        up_writer.write(head)
        try:
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        finally:
            self._open.discard(up_writer)
            _close(up_writer)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        _abort(writer)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0) so the peer sees a reset, not a clean end of stream."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
