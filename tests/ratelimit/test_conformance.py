"""Every scenario of the shared conformance corpus: in-process, over gRPC, and (see
tests/integration) against a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
from envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc

from meshguard.common.findings import FindingsError
from meshguard.common.leangrpc import LeanGrpcServer
from meshguard.ratelimit import grpc_api
from meshguard.ratelimit.memory_store import MemoryStore
from meshguard.ratelimit.model import Request, RequestError
from meshguard.ratelimit.service import RateLimitService
from tests.ratelimit.conformance import (
    Scenario,
    StoreFactory,
    pb_view,
    response_view,
    run_scenario,
    scenarios,
)

ALL = scenarios()
VALID = [s for s in ALL if s.valid]
INVALID = [s for s in ALL if not s.valid]

Call = Callable[[RateLimitService, Request], Awaitable[dict[str, Any]]]


def test_corpus_is_present() -> None:
    assert len(VALID) >= 21 and len(INVALID) >= 19


@pytest.mark.parametrize("scenario", INVALID, ids=lambda s: s.name)
def test_invalid_config_is_rejected_with_the_reference_message(scenario: Scenario) -> None:
    with pytest.raises(FindingsError) as caught:
        scenario.compile()
    messages = [f.message for f in caught.value.findings]
    assert any(scenario.cases["load"]["message_contains"] in m for m in messages), messages


def memory_stores(clock: Callable[[], float]) -> StoreFactory:
    async def fresh() -> MemoryStore:
        return MemoryStore(clock=clock)

    return fresh


async def direct_call(service: RateLimitService, request: Request) -> dict[str, Any]:
    try:
        return response_view(await service.should_rate_limit(request))
    except RequestError as exc:
        return {"error": {"grpc_code": "UNKNOWN", "message": str(exc)}}


@asynccontextmanager
async def grpc_transport(kind: str) -> AsyncIterator[Call]:
    """Calls through a real gRPC server of ``kind`` (lean or grpcio) and a grpcio client."""
    rpc = grpc_api.RateLimitRpc(None)  # type: ignore[arg-type]
    lean = LeanGrpcServer({grpc_api.METHOD_PATH: rpc.raw}, host="127.0.0.1")
    server = grpc.aio.server()
    if kind == "lean":
        await lean.start()
        port = lean.port
    else:
        servicer = grpc_api.RateLimitServicer(None)  # type: ignore[arg-type]
        servicer.rpc = rpc
        rls_pb2_grpc.add_RateLimitServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = rls_pb2_grpc.RateLimitServiceStub(channel)

    async def call(service: RateLimitService, request: Request) -> dict[str, Any]:
        rpc.service = service
        try:
            return pb_view(await stub.ShouldRateLimit(to_pb_request(request)))
        except grpc.aio.AioRpcError as exc:
            return {"error": {"grpc_code": exc.code().name, "message": exc.details()}}

    try:
        yield call
    finally:
        await channel.close()
        await server.stop(None)
        await lean.stop(None)


def to_pb_request(request: Request) -> Any:
    message = rls_pb2.RateLimitRequest(domain=request.domain, hits_addend=request.hits_addend)
    for d in request.descriptors:
        pb = message.descriptors.add()
        for key, value in d.entries:
            pb.entries.add(key=key, value=value)
        if d.limit is not None:
            pb.limit.requests_per_unit = d.limit.requests_per_unit
            pb.limit.unit = d.limit.unit
        if d.hits_addend is not None:
            pb.hits_addend.value = d.hits_addend
    return message


@pytest.mark.parametrize("scenario", VALID, ids=lambda s: s.name)
async def test_valid_scenario_in_process(scenario: Scenario) -> None:
    await run_scenario(scenario, memory_stores, direct_call)


@pytest.mark.parametrize("scenario", VALID, ids=lambda s: s.name)
@pytest.mark.parametrize("kind", ["lean", "grpcio"])
async def test_valid_scenario_over_grpc(scenario: Scenario, kind: str) -> None:
    async with grpc_transport(kind) as call:
        await run_scenario(scenario, memory_stores, call)
