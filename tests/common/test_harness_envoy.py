from __future__ import annotations

import asyncio
import os

import pytest

from meshguard.common import envoy as cfg
from meshguard.common.netutil import port_open
from tests.harness.envoy import EnvoyFactory


def config(name: str) -> cfg.JsonObject:
    listener = cfg.http_listener(name, routes=[cfg.direct_response_route(200, name)])
    return cfg.bootstrap(listeners=[listener])


async def answer(port: int) -> tuple[bytes, bytes]:
    """One HTTP/1.1 GET over a plain socket: the status line and the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    status, *headers = head.decode().split("\r\n")
    length = next(int(h.split(":")[1]) for h in headers if h.lower().startswith("content-length"))
    body = await reader.readexactly(length)
    writer.close()
    await writer.wait_closed()
    return status.encode(), body


async def test_envoy_fixture_starts_a_live_envoy(envoy: EnvoyFactory) -> None:
    first = await envoy(config("first"))
    second = await envoy(config("second"), concurrency=2)
    assert first.admin_get("/ready").strip() == "LIVE"
    for process, name in ((first, "first"), (second, "second")):
        assert await answer(process.listener_port(name)) == (b"HTTP/1.1 200 OK", name.encode())
    assert first.pid != second.pid


async def test_factory_close_stops_every_envoy() -> None:
    factory = EnvoyFactory()
    try:
        processes = [await factory(config(f"l{i}")) for i in range(2)]
        ports = [p.listener_port(f"l{i}") for i, p in enumerate(processes)]
        pids = [p.pid for p in processes]
    finally:
        factory.close()
    for pid, port in zip(pids, ports, strict=True):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert not port_open(port)
