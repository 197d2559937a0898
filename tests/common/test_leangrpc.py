"""The lean gRPC server against a real grpcio client (grpc.aio insecure channel)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshguard.common.leangrpc import GrpcError, LeanGrpcServer

SERVICE = "test.Echo"
LIMIT = 4 * 1024 * 1024


async def echo(request: bytes) -> bytes:
    return request


async def grow(request: bytes) -> bytes:
    """A reply much larger than the request: ``request`` is the size as decimal text."""
    return b"r" * int(request)


async def fail(request: bytes) -> bytes:
    raise GrpcError(grpc.StatusCode.PERMISSION_DENIED, request.decode())


async def crash(request: bytes) -> bytes:
    raise RuntimeError("boom")


class Slow:
    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, request: bytes) -> bytes:
        self.started.set()
        await self.release.wait()
        return b"late:" + request


@pytest.fixture
def slow() -> Slow:
    return Slow()


@pytest.fixture
async def server(slow: Slow) -> AsyncIterator[LeanGrpcServer]:
    methods = {
        f"/{SERVICE}/Echo": echo,
        f"/{SERVICE}/Grow": grow,
        f"/{SERVICE}/Fail": fail,
        f"/{SERVICE}/Crash": crash,
        f"/{SERVICE}/Slow": slow,
    }
    lean = LeanGrpcServer(methods, [SERVICE], host="127.0.0.1", max_receive_message_length=LIMIT)
    await lean.start()
    yield lean
    await lean.stop(0)


@pytest.fixture
async def channel(server: LeanGrpcServer) -> AsyncIterator[grpc.aio.Channel]:
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}", options=options) as ch:
        yield ch


def call(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable:
    return channel.unary_unary(f"/{SERVICE}/{method}")


async def status_of(pending: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await pending  # type: ignore[misc]
    return caught.value.code(), caught.value.details() or ""


async def test_unary_call_returns_the_handlers_bytes(channel: grpc.aio.Channel) -> None:
    assert await call(channel, "Echo")(b"hello", timeout=5) == b"hello"
    assert await call(channel, "Echo")(b"") == b""


async def test_grpc_error_becomes_the_status_with_its_message(channel: grpc.aio.Channel) -> None:
    message = "no entry for ünïcode 100% \n"
    code, details = await status_of(call(channel, "Fail")(message.encode()))
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert details == message


async def test_handler_exception_is_unknown_and_connection_survives(
    channel: grpc.aio.Channel,
) -> None:
    code, details = await status_of(call(channel, "Crash")(b""))
    assert code is grpc.StatusCode.UNKNOWN
    assert "boom" in details
    assert await call(channel, "Echo")(b"still here") == b"still here"


async def test_unknown_method_is_unimplemented(channel: grpc.aio.Channel) -> None:
    code, details = await status_of(channel.unary_unary("/test.Echo/Nope")(b""))
    assert code is grpc.StatusCode.UNIMPLEMENTED
    assert "/test.Echo/Nope" in details


@pytest.mark.parametrize("size", [20_000, 70_000, 3_000_000])
async def test_requests_beyond_frame_and_window_sizes(channel: grpc.aio.Channel, size: int) -> None:
    payload = bytes(range(256)) * (size // 256)
    assert await call(channel, "Echo")(payload) == payload


@pytest.mark.parametrize("size", [20_000, 70_000, 5_000_000])
async def test_replies_beyond_frame_and_window_sizes(channel: grpc.aio.Channel, size: int) -> None:
    assert await call(channel, "Grow")(str(size).encode()) == b"r" * size


async def test_request_over_the_limit_is_resource_exhausted(channel: grpc.aio.Channel) -> None:
    code, details = await status_of(call(channel, "Echo")(b"x" * (LIMIT + 1)))
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(LIMIT) in details
    assert await call(channel, "Echo")(b"after") == b"after"


async def test_many_concurrent_calls_share_one_connection(
    server: LeanGrpcServer, channel: grpc.aio.Channel
) -> None:
    echo_call = call(channel, "Echo")
    replies = await asyncio.gather(*(echo_call(b"%d" % i) for i in range(1500)))
    assert replies == [b"%d" % i for i in range(1500)]
    assert server.connections == 1


async def test_deadline_header_ends_a_slow_call(channel: grpc.aio.Channel, slow: Slow) -> None:
    code, _ = await status_of(call(channel, "Slow")(b"x", timeout=0.2))
    assert code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert slow.started.is_set()


async def test_health_check(server: LeanGrpcServer, channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    code, _ = await status_of(stub.Check(health_pb2.HealthCheckRequest(service="other")))
    assert code is grpc.StatusCode.NOT_FOUND
    server.health.serving = False
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE))
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_compressed_request_is_rejected(server: LeanGrpcServer) -> None:
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{server.port}", compression=grpc.Compression.Gzip
    ) as channel:
        code, _ = await status_of(call(channel, "Echo")(b"x" * 1000))
    assert code in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INTERNAL)


async def test_stop_drains_in_flight_calls_then_refuses(
    server: LeanGrpcServer, channel: grpc.aio.Channel, slow: Slow
) -> None:
    pending = asyncio.ensure_future(call(channel, "Slow")(b"in flight", timeout=10))
    await asyncio.wait_for(slow.started.wait(), 5)
    stopping = asyncio.ensure_future(server.stop(5))
    await asyncio.sleep(0.2)
    assert not stopping.done()  # waiting for the call the GOAWAY admitted
    slow.release.set()
    assert await pending == b"late:in flight"
    await asyncio.wait_for(stopping, 5)
    code, _ = await status_of(call(channel, "Echo")(b"", timeout=2))
    assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


async def test_stop_grace_period_bounds_the_wait(
    server: LeanGrpcServer, channel: grpc.aio.Channel, slow: Slow
) -> None:
    pending = asyncio.ensure_future(call(channel, "Slow")(b"never", timeout=10))
    await asyncio.wait_for(slow.started.wait(), 5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await server.stop(0.3)
    assert loop.time() - started < 2
    code, _ = await status_of(pending)
    assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
