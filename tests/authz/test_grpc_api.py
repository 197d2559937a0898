"""The gRPC flavour in-process: CheckRequest → CheckResponse, malformed input, hot reload."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc

from meshguard.authz import grpc_api
from meshguard.authz.authn import AuthnResult
from meshguard.authz.authorizer import Outcome
from meshguard.authz.runtime import build_runtime
from meshguard.authz.settings import AuthzSettings
from meshguard.common.server import ServiceRuntime
from tests.authz.support import ISSUER, Signer, ap

SIGNER = Signer("RSA")

POLICIES = (
    ap("{action: DENY, rules: [{to: [{operation: {paths: ['/internal/*']}}]}]}", name="deny")
    + ap(
        "{rules: [{to: [{operation: {paths: [/public]}}]}, "
        "{from: [{source: {requestPrincipals: ['*']}}], to: [{operation: {paths: ['/api/*']}}]}]}",
        name="allow",
    )
    + "---\napiVersion: security.istio.io/v1\nkind: RequestAuthentication\n"
    "metadata: {name: jwt, namespace: foo}\n"
    f"spec:\n  jwtRules:\n  - issuer: {ISSUER}\n    jwks: '{SIGNER.jwks}'\n"
    "    outputClaimToHeaders: [{header: x-user, claim: sub}]\n"
)


def settings(policy_dir: Path, **overrides: Any) -> AuthzSettings:
    base = AuthzSettings(
        policies=(str(policy_dir),),
        host="127.0.0.1",
        grpc_port=0,
        http_port=0,
        http_path_prefix="/check",
        admin_port=0,
        root_namespace="istio-system",
        trust_domain="cluster.local",
        trust_domain_aliases=(),
        xff_trusted_hops=0,
        log_allow_sample=1.0,
        log_deny_sample=1.0,
        jwks_refresh_interval=1200.0,
    )
    return AuthzSettings(**{**{f: getattr(base, f) for f in base.__slots__}, **overrides})


@pytest.fixture(params=["lean", "grpcio"])
async def running(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[ServiceRuntime, Path]]:
    (tmp_path / "policies.yaml").write_text(POLICIES)
    runtime = build_runtime(settings(tmp_path, grpc_server=request.param))
    await runtime.start()
    yield runtime, tmp_path
    await runtime.stop()


def check_request(path: str, headers: dict[str, str] | None = None) -> Any:
    req = external_auth_pb2.CheckRequest()
    a = req.attributes
    a.context_extensions["namespace"] = "foo"
    a.context_extensions["labels"] = "app=web"
    a.source.address.socket_address.address = "10.0.0.1"
    a.destination.address.socket_address.address = "10.0.0.2"
    a.destination.address.socket_address.port_value = 8080
    h = a.request.http
    h.host, h.method, h.path = "svc", "GET", path
    for k, v in (headers or {}).items():
        h.headers[k] = v
    return req


async def call(runtime: ServiceRuntime, request: Any) -> Any:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_ports[0]}") as channel:
        stub = external_auth_pb2_grpc.AuthorizationStub(channel)
        return await stub.Check(request, timeout=5)


async def test_allow_deny_and_jwt(running: tuple[ServiceRuntime, Path]) -> None:
    runtime, _ = running
    ok = await call(runtime, check_request("/public?x=1"))
    assert ok.status.code == 0
    assert ok.dynamic_metadata.fields["meshguard"].struct_value.fields["policy"].string_value == (
        "foo/allow"
    )
    denied = await call(runtime, check_request("/internal/x"))
    assert denied.status.code == 7
    assert denied.denied_response.status.code == 403
    assert denied.denied_response.body == "RBAC: access denied"
    anonymous = await call(runtime, check_request("/api/x"))
    assert anonymous.denied_response.status.code == 403
    token = SIGNER.token()
    authed = await call(runtime, check_request("/api/x", {"authorization": f"Bearer {token}"}))
    assert authed.status.code == 0
    headers = {h.header.key: h.header.value for h in authed.ok_response.headers}
    assert headers == {"x-user": "alice"}
    assert list(authed.ok_response.headers_to_remove) == ["authorization"]
    bad = await call(runtime, check_request("/public", {"authorization": "Bearer a.b.c"}))
    assert bad.status.code == 16 and bad.denied_response.status.code == 401
    assert any(h.header.key == "www-authenticate" for h in bad.denied_response.headers)


async def test_malformed_request_is_invalid_argument(running: tuple[ServiceRuntime, Path]) -> None:
    runtime, _ = running
    req = check_request("/public")
    req.attributes.context_extensions["labels"] = "no-equals-sign"
    response = await call(runtime, req)
    assert response.status.code == 3 and response.denied_response.status.code == 400


async def test_hot_reload_changes_decision_and_config_version(
    running: tuple[ServiceRuntime, Path],
) -> None:
    runtime, folder = running
    admin = f"http://127.0.0.1:{runtime.admin_port}/config"
    async with aiohttp.ClientSession() as session:
        async with session.get(admin) as r:
            before = json.loads(await r.text())["version"]
        (folder / "policies.yaml").write_text(
            POLICIES + ap("{action: DENY, rules: [{}]}", name="all")
        )
        for _ in range(40):
            await asyncio.sleep(0.05)
            if (await call(runtime, check_request("/public"))).status.code != 0:
                break
        assert (await call(runtime, check_request("/public"))).status.code == 7
        async with session.get(admin) as r:
            assert json.loads(await r.text())["version"] != before
        # A broken file keeps the last good snapshot.
        (folder / "policies.yaml").write_text(ap("{action: NOPE}"))
        await asyncio.sleep(0.6)
        assert (await call(runtime, check_request("/public"))).status.code == 7


def test_responses_are_reused_per_decision_shape() -> None:
    cache = grpc_api._ResponseCache(limit=2)
    allow = Outcome(True, 200, "allow_policy")
    first = cache.get(allow)
    assert cache.get(Outcome(True, 200, "allow_policy")) is first
    assert first == grpc_api.to_response(allow).SerializeToString()
    assert cache.get(Outcome(True, 200, "no_allow_policy")) is not first
    unauthenticated = Outcome(False, 401, "jwt_invalid", "bad", None, AuthnResult(), (("a", "b"),))
    once = cache.get(unauthenticated)
    assert (
        external_auth_pb2.CheckResponse.FromString(once).denied_response.headers[0].header.key
        == "a"
    )
    assert cache.get(unauthenticated) is not once  # per-request headers are never kept


async def test_undecodable_request_is_invalid_argument(
    running: tuple[ServiceRuntime, Path],
) -> None:
    runtime, _ = running
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_ports[0]}") as channel:
        check = channel.unary_unary(grpc_api.METHOD_PATH)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await check(b"\xff\xff\xff", timeout=5)
    # lean: INVALID_ARGUMENT; grpc.aio reports its deserializer's failure as UNKNOWN.
    assert failed.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNKNOWN)
