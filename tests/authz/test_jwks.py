"""Remote JWKS: fetch, cache, refresh on unknown kid, stale keys on failure, SSRF guard."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from meshguard.authz.jwks import DEFAULT_BLOCKED, JwksCache, is_blocked
from tests.authz.support import Signer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def issuer() -> AsyncIterator[dict[str, object]]:
    state: dict[str, object] = {"jwks": Signer("RSA", kid="a").jwks, "status": 200, "hits": 0}

    async def jwks(request: web.Request) -> web.Response:
        state["hits"] = int(state["hits"]) + 1  # type: ignore[call-overload]
        return web.Response(text=str(state["jwks"]), status=int(state["status"]))  # type: ignore[call-overload]

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response({"jwks_uri": f"{state['base']}/keys"})

    app = web.Application()
    app.router.add_get("/keys", jwks)
    app.router.add_get("/.well-known/openid-configuration", discovery)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state["base"] = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


async def test_fetch_and_cache(issuer: dict[str, object]) -> None:
    cache = JwksCache()
    uri = f"{issuer['base']}/keys"
    keys = await cache.get(uri, "", 2.0)
    assert keys is not None and keys.keys[0].kid == "a"
    await cache.get(uri, "", 2.0)
    assert issuer["hits"] == 1
    await cache.close()


async def test_oidc_discovery(issuer: dict[str, object]) -> None:
    cache = JwksCache()
    keys = await cache.get("", str(issuer["base"]), 2.0)
    assert keys is not None and keys.keys[0].kid == "a"
    await cache.close()


async def test_unknown_kid_refreshes_at_most_once_per_gap(issuer: dict[str, object]) -> None:
    clock = Clock()
    cache = JwksCache(clock=clock, min_refresh_gap=30)
    uri = f"{issuer['base']}/keys"
    await cache.get(uri, "", 2.0)
    issuer["jwks"] = Signer("RSA", kid="b").jwks
    keys = await cache.get(uri, "", 2.0, unknown_kid=True)
    assert keys is not None and keys.keys[0].kid == "b"
    await cache.get(uri, "", 2.0, unknown_kid=True)
    assert issuer["hits"] == 2
    await cache.close()


async def test_stale_keys_kept_with_backoff_while_endpoint_down(issuer: dict[str, object]) -> None:
    clock = Clock()
    cache = JwksCache(clock=clock, refresh_interval=10, initial_backoff=60)
    uri = f"{issuer['base']}/keys"
    await cache.get(uri, "", 2.0)
    issuer["status"] = 503
    clock.now += 11
    await cache.get(uri, "", 2.0)
    # The refresh runs in the background; wait for it through an unknown-kid refresh.
    keys = await cache.get(uri, "", 2.0, unknown_kid=True)
    assert keys is not None and keys.keys[0].kid == "a"
    hits = issuer["hits"]
    clock.now += 5
    await cache.get(uri, "", 2.0)
    assert issuer["hits"] == hits  # backing off
    await cache.close()


async def test_never_fetched_returns_none(issuer: dict[str, object]) -> None:
    issuer["status"] = 500
    cache = JwksCache()
    assert await cache.get(f"{issuer['base']}/keys", "", 2.0) is None
    await cache.close()


async def test_metadata_address_is_refused() -> None:
    cache = JwksCache()
    assert await cache.get("http://169.254.169.254/keys", "", 0.5) is None
    assert await cache.get("http://[fe80::1]/keys", "", 0.5) is None
    await cache.close()


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        ("169.254.169.254", True),
        ("::ffff:169.254.169.254", True),
        ("fd00:ec2::254", True),
        ("100.100.100.200", True),
        ("10.0.0.1", False),
        ("example.com", False),
    ],
)
def test_is_blocked(address: str, blocked: bool) -> None:
    assert is_blocked(address, DEFAULT_BLOCKED) is blocked
