"""ServiceRuntime.add_lean_grpc: bound port, health, and drain of in-flight calls on stop."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshguard.common.server import ServiceRuntime

SERVICE = "test.Lean"


async def test_runtime_serves_lean_methods_and_drains_on_stop() -> None:
    release = asyncio.Event()

    async def wait(request: bytes) -> bytes:
        await release.wait()
        return b"done:" + request

    runtime = ServiceRuntime("lean", admin_port=0, host="127.0.0.1", grace_period=5)
    runtime.add_lean_grpc(0, {f"/{SERVICE}/Wait": wait}, [SERVICE])
    await runtime.start()
    (port,) = runtime.grpc_ports
    assert port != 0
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE)
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        pending = asyncio.ensure_future(channel.unary_unary(f"/{SERVICE}/Wait")(b"x", timeout=10))
        await asyncio.sleep(0.2)
        stopping = asyncio.ensure_future(runtime.stop())
        await asyncio.sleep(0.2)
        assert not stopping.done() and not runtime.ready
        release.set()
        assert await pending == b"done:x"
        await asyncio.wait_for(stopping, 5)
