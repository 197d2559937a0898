"""A real Envoy's ext_authz filter (gRPC and HTTP flavours) calling meshguard authz."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from meshguard.authz.runtime import build_runtime
from meshguard.common import envoy as cfg
from meshguard.common.server import ServiceRuntime
from tests.authz.support import ISSUER, Signer, ap
from tests.authz.test_grpc_api import settings
from tests.harness.envoy import EnvoyFactory

SIGNER = Signer("RSA")
_EXT_AUTHZ = "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"
_PER_ROUTE = "envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute"

POLICIES = (
    ap(
        "{action: DENY, rules: [{to: [{operation: {paths: ['/internal/*']}}]}, "
        "{when: [{key: 'request.headers[x-block]', values: ['yes']}]}, "
        "{when: [{key: remote.ip, values: ['203.0.113.0/24']}]}]}",
        name="deny",
    )
    + ap(
        "{selector: {matchLabels: {app: web}}, rules: ["
        "{to: [{operation: {paths: ['/public*']}}]}, "
        "{from: [{source: {requestPrincipals: ['*']}}], to: [{operation: {paths: ['/api/*']}}]}, "
        "{to: [{operation: {paths: ['/admin/*']}}], "
        "when: [{key: 'request.auth.claims[groups]', values: [admin]}]}]}",
        name="allow",
    )
    + "---\napiVersion: security.istio.io/v1\nkind: RequestAuthentication\n"
    "metadata: {name: jwt, namespace: foo}\n"
    f"spec:\n  jwtRules:\n  - issuer: {ISSUER}\n    jwks: '{SIGNER.jwks}'\n"
    "    outputClaimToHeaders: [{header: x-user, claim: sub}]\n"
)


@pytest.fixture
async def upstream() -> AsyncIterator[int]:
    """Echoes the request headers it received as JSON."""

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({k.lower(): v for k, v in request.headers.items()})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await runner.cleanup()


def grpc_filter(cluster: str) -> cfg.JsonObject:
    return {
        "name": "envoy.filters.http.ext_authz",
        "typed_config": cfg.typed(
            _EXT_AUTHZ,
            grpc_service={"envoy_grpc": {"cluster_name": cluster}, "timeout": "1s"},
            transport_api_version="V3",
            failure_mode_allow=False,
        ),
    }


def http_filter(cluster: str, port: int) -> cfg.JsonObject:
    return {
        "name": "envoy.filters.http.ext_authz",
        "typed_config": cfg.typed(
            _EXT_AUTHZ,
            transport_api_version="V3",
            failure_mode_allow=False,
            http_service={
                "server_uri": {
                    "uri": f"http://127.0.0.1:{port}",
                    "cluster": cluster,
                    "timeout": "1s",
                },
                "path_prefix": "/check",
                "authorization_request": {
                    "headers_to_add": [
                        {"key": "x-meshguard-namespace", "value": "foo"},
                        {"key": "x-meshguard-labels", "value": "app=web"},
                    ],
                },
                "authorization_response": {
                    "allowed_upstream_headers": {
                        "patterns": [
                            {"exact": "x-user"},
                            {"exact": "x-envoy-auth-headers-to-remove"},
                        ]
                    },
                },
            },
            allowed_headers={
                "patterns": [
                    {"exact": "x-block"},
                    {"exact": "x-forwarded-for"},
                    {"exact": "cookie"},
                ]
            },
        ),
    }


def workload_route() -> cfg.JsonObject:
    route = cfg.cluster_route("upstream")
    route["typed_per_filter_config"] = {
        "envoy.filters.http.ext_authz": cfg.typed(
            _PER_ROUTE,
            check_settings={"context_extensions": {"namespace": "foo", "labels": "app=web"}},
        )
    }
    return route


@dataclasses.dataclass
class Stack:
    proxy: Any
    runtime: ServiceRuntime
    folder: Path
    http_port: int

    async def get(self, listener: str, path: str, **headers: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.proxy.listener_port(listener)}{path}"
        async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as r:
            return r.status, await r.text()


@pytest.fixture
async def stack(
    envoy: EnvoyFactory, upstream: int, tmp_path: Path, free_port: Callable[[], int]
) -> AsyncIterator[Stack]:
    (tmp_path / "policies.yaml").write_text(POLICIES)
    grpc_port, http_port = free_port(), free_port()
    runtime = build_runtime(settings(tmp_path, grpc_port=grpc_port, http_port=http_port))
    await runtime.start()
    listeners = [
        cfg.http_listener("grpc", routes=[workload_route()], http_filters=[grpc_filter("authz")]),
        cfg.http_listener(
            "http",
            routes=[cfg.cluster_route("upstream")],
            http_filters=[http_filter("authz_http", http_port)],
        ),
    ]
    clusters = [
        cfg.static_cluster("upstream", upstream),
        cfg.grpc_cluster("authz", grpc_port),
        cfg.static_cluster("authz_http", http_port),
    ]
    proxy = await envoy(cfg.bootstrap(listeners=listeners, clusters=clusters))
    current = Stack(proxy, runtime, tmp_path, http_port)
    yield current
    await current.runtime.stop()


@pytest.mark.parametrize("listener", ["grpc", "http"])
async def test_decisions_through_envoy(stack: Stack, listener: str) -> None:
    status, body = await stack.get(listener, "/public")
    assert status == 200
    status, body = await stack.get(listener, "/internal/x")
    assert (status, body) == (403, "RBAC: access denied")
    assert (await stack.get(listener, "/public", **{"x-block": "yes"}))[0] == 403
    assert (await stack.get(listener, "/public", **{"x-forwarded-for": "203.0.113.7"}))[0] == 403
    assert (await stack.get(listener, "/api/x"))[0] == 403  # no token: no identity
    assert (await stack.get(listener, "/api/x", authorization="Bearer a.b.c"))[0] == 401
    token = SIGNER.token(groups=["dev"])
    status, body = await stack.get(listener, "/api/x", authorization=f"Bearer {token}")
    assert status == 200
    seen = json.loads(body)
    assert seen["x-user"] == "alice" and "authorization" not in seen
    assert (await stack.get(listener, "/admin/x", authorization=f"Bearer {token}"))[0] == 403
    admin = SIGNER.token(groups=["admin"])
    assert (await stack.get(listener, "/admin/x", authorization=f"Bearer {admin}"))[0] == 200


@pytest.mark.parametrize("listener", ["grpc", "http"])
async def test_head_requests_keep_the_connection_usable(stack: Stack, listener: str) -> None:
    url = f"http://127.0.0.1:{stack.proxy.listener_port(listener)}"
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.head(f"{url}/internal/x") as r:
                assert r.status == 403
            async with session.head(f"{url}/public") as r:
                assert r.status == 200
            async with session.get(f"{url}/internal/x") as r:
                assert (r.status, await r.text()) == (403, "RBAC: access denied")


async def test_fail_closed_while_down_and_recovery(stack: Stack) -> None:
    assert (await stack.get("grpc", "/public"))[0] == 200
    port = stack.runtime.grpc_ports[0]
    http_port = stack.http_port
    await stack.runtime.stop()
    assert (await stack.get("grpc", "/public"))[0] == 403
    assert (await stack.get("http", "/public"))[0] == 403
    stack.runtime = build_runtime(settings(stack.folder, grpc_port=port, http_port=http_port))
    await stack.runtime.start()
    for _ in range(50):
        if (await stack.get("grpc", "/public"))[0] == 200:
            break
        await asyncio.sleep(0.1)
    assert (await stack.get("grpc", "/public"))[0] == 200
    assert (await stack.get("http", "/public"))[0] == 200


async def test_hot_reload_under_traffic(stack: Stack) -> None:
    statuses: list[int] = []
    stop = asyncio.Event()

    async def traffic() -> None:
        while not stop.is_set():
            statuses.append((await stack.get("grpc", "/public"))[0])

    task = asyncio.create_task(traffic())
    for index in range(5):
        extra = ap("{action: AUDIT, rules: [{}]}", name=f"audit-{index}")
        (stack.folder / "policies.yaml").write_text(POLICIES + extra)
        await asyncio.sleep(0.4)
    (stack.folder / "policies.yaml").write_text(
        POLICIES + ap("{action: DENY, rules: [{}]}", name="z")
    )
    await asyncio.sleep(1.0)
    stop.set()
    await task
    first_deny = statuses.index(403)
    assert first_deny > 10
    assert set(statuses[:first_deny]) == {200}
    assert set(statuses[first_deny:]) == {403}
