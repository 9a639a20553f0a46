"""The fault-injecting TCP proxy on its own: pass, refuse, reset, stall, 503 against a local echo server."""
from __future__ import annotations

import asyncio

import pytest

from scripts.sandbox.proxy import Proxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _exchange(port: int, payload: bytes = b"GET / HTTP/1.1\r\n\r\n", timeout: float = 1.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.read(4096), timeout)
    finally:
        writer.close()


def test_modes_behave_as_documented():
    async def scenario() -> None:
        echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
        proxy = Proxy("test", ("127.0.0.1", echo.sockets[0].getsockname()[1]))
        await proxy.start()
        try:
            assert await _exchange(proxy.port, b"ping") == b"ping"

            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            await proxy.set_mode("refuse")
            with pytest.raises(ConnectionRefusedError):
                await _exchange(proxy.port)
            with pytest.raises(ConnectionResetError):  # the connection open before the switch is reset
                await reader.read(10)
            writer.close()

            await proxy.set_mode("reset")
            with pytest.raises((ConnectionResetError, ConnectionAbortedError)):
                data = await _exchange(proxy.port)
                if data == b"":
                    raise ConnectionResetError
            await proxy.set_mode("stall")
            with pytest.raises(asyncio.TimeoutError):
                await _exchange(proxy.port, timeout=0.3)
            await proxy.set_mode("503")
            assert (await _exchange(proxy.port)).startswith(b"HTTP/1.1 503 ")
            await proxy.set_mode("pass")
            assert await _exchange(proxy.port, b"back") == b"back"
            with pytest.raises(ValueError):
                await proxy.set_mode("sideways")
        finally:
            await proxy.stop()
            echo.close()

    asyncio.run(scenario())
