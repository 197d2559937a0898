"""ServiceRuntime: admin endpoints, gRPC health, and SIGTERM drain of in-flight calls."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshguard.common.configstore import ConfigStore
from meshguard.common.server import ServiceRuntime
from meshguard.common.sources import SourceFile

from .slow_service import SERVICE, register

HERE = Path(__file__).parent


def count_files(files: list[SourceFile]) -> int:
    return len(files)


async def call_wait(port: int, seconds: float) -> bytes:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        method = channel.unary_unary(f"/{SERVICE}/Wait")
        result: bytes = await method(str(seconds).encode(), timeout=10)
        return result


async def test_admin_endpoints_and_grpc_health(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("x: 1\n")
    store = ConfigStore("t-runtime", [tmp_path], count_files, poll_interval=0.05)
    store.load()
    runtime = ServiceRuntime("test", admin_port=0, host="127.0.0.1")
    runtime.add_grpc(0, register, [SERVICE])
    runtime.add_store(store)
    await runtime.start()
    try:
        base = f"http://127.0.0.1:{runtime.admin_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as resp:
                assert resp.status == 200
            async with http.get(f"{base}/readyz") as resp:
                assert resp.status == 200
            async with http.get(f"{base}/metrics") as resp:
                text = await resp.text()
                assert 'meshguard_config_last_success_timestamp_seconds{store="t-runtime"}' in text
            async with http.get(f"{base}/config") as resp:
                first = await resp.json()
            assert first["version"] == store.current.version
            assert first["stores"][0]["files"] == [str(tmp_path / "a.yaml")]

            (tmp_path / "b.yaml").write_text("y: 2\n")
            for _ in range(100):
                async with http.get(f"{base}/config") as resp:
                    second = await resp.json()
                if second["version"] != first["version"]:
                    break
                await asyncio.sleep(0.02)
            assert second["version"] != first["version"]

        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_ports[0]}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for name in ("", SERVICE):
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=name))
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert await call_wait(runtime.grpc_ports[0], 0) == b"done:0"
    finally:
        await runtime.stop()
    assert not runtime.ready


async def test_readyz_is_503_until_every_store_loaded(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("x: 1\n")
    store = ConfigStore("t-unloaded", [tmp_path], count_files)
    runtime = ServiceRuntime("test", admin_port=0, host="127.0.0.1")
    runtime.add_store(store)
    await runtime.start()
    try:
        url = f"http://127.0.0.1:{runtime.admin_port}/readyz"
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            assert resp.status == 503
    finally:
        await runtime.stop()


@pytest.fixture
def slow_service() -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.common.slow_service"],
        cwd=HERE.parent.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


async def test_sigterm_drains_in_flight_calls(slow_service: subprocess.Popen[str]) -> None:
    assert slow_service.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(slow_service.stdout.readline), 30)
    ports = json.loads(line)

    in_flight = asyncio.create_task(call_wait(ports["grpc"], 1.0))
    await asyncio.sleep(0.3)  # the call is now being served
    started = time.monotonic()
    slow_service.send_signal(signal.SIGTERM)

    assert await in_flight == b"done:1.0", "an in-flight call must complete during drain"
    code = await asyncio.wait_for(asyncio.to_thread(slow_service.wait), 10)
    assert code == 0
    assert time.monotonic() - started < 5.0, "exit within the grace period"
    with pytest.raises(grpc.aio.AioRpcError):
        await call_wait(ports["grpc"], 0)


class RecordingServer:
    """A ManagedServer that listens for real and records how it was stopped."""

    def __init__(self) -> None:
        self.port = 0
        self.stopped_with: float | None = None
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self, grace: float) -> None:
        self.stopped_with = grace
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


async def test_managed_servers_are_started_listed_and_drained() -> None:
    managed = RecordingServer()
    runtime = ServiceRuntime("test", admin_port=0, host="127.0.0.1", grace_period=3.0)
    runtime.add_http_server(managed)
    await runtime.start()
    try:
        assert runtime.http_ports == [managed.port] and managed.port != 0
        _, writer = await asyncio.open_connection("127.0.0.1", managed.port)
        writer.close()
    finally:
        await runtime.stop()
    assert managed.stopped_with == 3.0
