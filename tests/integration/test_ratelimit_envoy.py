"""A real Envoy with the ratelimit filter and route rate_limits actions, calling meshguard."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import grpc
import pytest

from meshguard.common import envoy as cfg
from meshguard.common.leangrpc import LeanGrpcServer
from meshguard.common.sources import SourceFile
from meshguard.ratelimit import grpc_api
from meshguard.ratelimit.config import compile_sources
from meshguard.ratelimit.memory_store import MemoryStore
from meshguard.ratelimit.service import RateLimitService
from tests.harness.envoy import EnvoyFactory

CONFIG = """
domain: edge
descriptors:
  - key: generic_key
    value: per_user
    descriptors:
      - key: user
        rate_limit: {unit: minute, requests_per_unit: 2, name: per-user}
  - key: remote_address
    rate_limit: {unit: minute, requests_per_unit: 1000}
"""
_RL = "envoy.extensions.filters.http.ratelimit.v3.RateLimit"


def ratelimit_filter(cluster: str, *, deny_on_failure: bool) -> cfg.JsonObject:
    return {
        "name": "envoy.filters.http.ratelimit",
        "typed_config": cfg.typed(
            _RL,
            domain="edge",
            timeout="0.5s",
            failure_mode_deny=deny_on_failure,
            enable_x_ratelimit_headers="DRAFT_VERSION_03",
            rate_limit_service={
                "grpc_service": {"envoy_grpc": {"cluster_name": cluster}},
                "transport_api_version": "V3",
            },
        ),
    }


def limited_route() -> cfg.JsonObject:
    route = cfg.cluster_route("upstream")
    route["route"]["rate_limits"] = [
        {
            "actions": [
                {"generic_key": {"descriptor_value": "per_user"}},
                {"request_headers": {"header_name": "x-user", "descriptor_key": "user"}},
            ]
        },
        {"actions": [{"remote_address": {}}]},
    ]
    return route


@pytest.fixture(params=["lean", "grpcio"])
async def rls_port(request: pytest.FixtureRequest) -> AsyncIterator[int]:
    config = compile_sources([SourceFile("edge.yaml", CONFIG)])
    service = RateLimitService(lambda: config, MemoryStore())
    if request.param == "lean":
        lean = LeanGrpcServer(grpc_api.lean_methods(service), host="127.0.0.1")
        await lean.start()
        yield lean.port
        await lean.stop(None)
        return
    server = grpc.aio.server()
    grpc_api.register(service)(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield port
    await server.stop(None)


async def test_envoy_enforces_limits_and_failure_mode(
    envoy: EnvoyFactory, rls_port: int, free_port: Callable[[], int]
) -> None:
    upstream_port, dead_port = free_port(), free_port()
    listeners = [
        cfg.http_listener("upstream", upstream_port, routes=[cfg.direct_response_route(200, "ok")]),
        cfg.http_listener(
            "front",
            routes=[limited_route()],
            http_filters=[ratelimit_filter("rls", deny_on_failure=False)],
        ),
        cfg.http_listener(
            "dead_open",
            routes=[limited_route()],
            http_filters=[ratelimit_filter("dead", deny_on_failure=False)],
        ),
        cfg.http_listener(
            "dead_closed",
            routes=[limited_route()],
            http_filters=[ratelimit_filter("dead", deny_on_failure=True)],
        ),
    ]
    clusters = [
        cfg.static_cluster("upstream", upstream_port),
        cfg.grpc_cluster("rls", rls_port),
        cfg.grpc_cluster("dead", dead_port),
    ]
    proxy = await envoy(cfg.bootstrap(listeners=listeners, clusters=clusters))

    async def get(listener: str, user: str) -> tuple[int, Any]:
        url = f"http://127.0.0.1:{proxy.listener_port(listener)}/"
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers={"x-user": user}) as response,
        ):
            return response.status, response.headers

    results = [await get("front", "alice") for _ in range(3)]
    assert [status for status, _ in results] == [200, 200, 429]
    _, headers = results[2]
    assert headers["x-ratelimit-remaining"] == "0"
    assert headers["x-ratelimit-limit"].startswith("2, 2;w=60")
    assert 'name="per-user"' in headers["x-ratelimit-limit"]
    assert (await get("front", "bob"))[0] == 200  # per-user budgets

    assert (await get("dead_open", "alice"))[0] == 200
    assert (await get("dead_closed", "alice"))[0] == 500
    stats = proxy.stats("ratelimit")
    assert stats["cluster.upstream.ratelimit.over_limit"] == 1
    assert stats["cluster.upstream.ratelimit.failure_mode_allowed"] >= 1
