"""A real Envoy calling the lean gRPC server: RLS ShouldRateLimit over an ``envoy_grpc``
cluster (h2c) and Envoy's gRPC health checking of the same cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from envoy.service.ratelimit.v3 import rls_pb2

from meshguard.common import envoy as cfg
from meshguard.common.leangrpc import LeanGrpcServer
from tests.harness.envoy import EnvoyFactory

RLS = "envoy.service.ratelimit.v3.RateLimitService"
_RL = "envoy.extensions.filters.http.ratelimit.v3.RateLimit"


async def should_rate_limit(request: bytes) -> bytes:
    """OVER_LIMIT for user ``blocked``, OK otherwise."""
    message = rls_pb2.RateLimitRequest.FromString(request)
    users = {e.value for d in message.descriptors for e in d.entries if e.key == "user"}
    code = rls_pb2.RateLimitResponse.OVER_LIMIT if "blocked" in users else 1
    reply: bytes = rls_pb2.RateLimitResponse(overall_code=code).SerializeToString()
    return reply


@pytest.fixture
async def rls() -> AsyncIterator[LeanGrpcServer]:
    server = LeanGrpcServer({f"/{RLS}/ShouldRateLimit": should_rate_limit}, [RLS], host="127.0.0.1")
    await server.start()
    yield server
    await server.stop(1)


def proxy_config(upstream_port: int, rls_port: int) -> cfg.JsonObject:
    route = cfg.cluster_route("upstream")
    route["route"]["rate_limits"] = [
        {"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user"}}]}
    ]
    ratelimit = {
        "name": "envoy.filters.http.ratelimit",
        "typed_config": cfg.typed(
            _RL,
            domain="edge",
            timeout="1s",
            failure_mode_deny=True,
            rate_limit_service={
                "grpc_service": {"envoy_grpc": {"cluster_name": "rls"}},
                "transport_api_version": "V3",
            },
        ),
    }
    rls_cluster = cfg.grpc_cluster("rls", rls_port)
    rls_cluster["health_checks"] = [
        {
            "timeout": "1s",
            "interval": "0.2s",
            "unhealthy_threshold": 1,
            "healthy_threshold": 1,
            "grpc_health_check": {"service_name": RLS},
        }
    ]
    listeners = [
        cfg.http_listener("upstream", upstream_port, routes=[cfg.direct_response_route(200)]),
        cfg.http_listener("front", routes=[route], http_filters=[ratelimit]),
    ]
    clusters = [cfg.static_cluster("upstream", upstream_port), rls_cluster]
    return cfg.bootstrap(listeners=listeners, clusters=clusters)


async def test_envoy_rate_limits_through_the_lean_server(
    envoy: EnvoyFactory, rls: LeanGrpcServer, free_port: Callable[[], int]
) -> None:
    proxy = await envoy(proxy_config(free_port(), rls.port))
    url = f"http://127.0.0.1:{proxy.listener_port('front')}/"

    async def status(user: str) -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers={"x-user": user}) as response,
        ):
            return response.status

    statuses = await asyncio.gather(*(status(f"u{i}") for i in range(50)))
    assert statuses == [200] * 50
    assert await status("blocked") == 429
    stats = proxy.stats("")
    assert stats["cluster.upstream.ratelimit.ok"] >= 50
    assert stats["cluster.upstream.ratelimit.over_limit"] == 1
    assert stats["cluster.rls.health_check.success"] >= 1
    assert stats.get("cluster.rls.health_check.failure", 0) == 0
