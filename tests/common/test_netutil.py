from __future__ import annotations

import asyncio
import socket

import pytest

from meshguard.common import netutil


def test_free_port_can_be_bound() -> None:
    port = netutil.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_port_open_and_wait_for_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert not netutil.port_open(port)
        with pytest.raises(TimeoutError, match=f"nothing listens on 127.0.0.1:{port}"):
            netutil.wait_for_port(port, timeout=0.05)
        sock.listen()
        assert netutil.port_open(port)
        netutil.wait_for_port(port, timeout=1)


async def test_async_wait_for_port_sees_a_server_start_later() -> None:
    port = netutil.free_port()
    with pytest.raises(TimeoutError):
        await netutil.async_wait_for_port(port, timeout=0.05)

    async def serve_soon() -> asyncio.Server:
        await asyncio.sleep(0.1)
        return await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)

    starting = asyncio.create_task(serve_soon())
    await netutil.async_wait_for_port(port, timeout=5)
    server = await starting
    server.close()
    await server.wait_closed()
