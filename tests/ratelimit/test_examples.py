"""examples/ratelimit loads as `meshguard up` loads it, and limits what its comments say."""

from __future__ import annotations

from meshguard.common.sources import discover, read
from meshguard.ratelimit.config import compile_sources
from meshguard.ratelimit.memory_store import MemoryStore
from meshguard.ratelimit.model import Code, Descriptor, Request
from meshguard.ratelimit.service import RateLimitService
from tests.harness.paths import REPO

EXAMPLES = REPO / "examples" / "ratelimit"


def service() -> RateLimitService:
    config = compile_sources(read(discover([str(EXAMPLES)], None)))
    assert set(config.domains) == {"meshguard-up", "api"}
    return RateLimitService(lambda: config, MemoryStore())


async def codes(svc: RateLimitService, request: Request, count: int) -> list[Code]:
    return [(await svc.should_rate_limit(request)).overall_code for _ in range(count)]


async def test_demo_route_allows_five_a_minute() -> None:
    request = Request("meshguard-up", (Descriptor((("generic_key", "demo"),)),))
    assert await codes(service(), request, 6) == [Code.OK] * 5 + [Code.OVER_LIMIT]


async def test_per_user_header_limit() -> None:
    svc = service()

    def user(name: str) -> Request:
        entries = (("generic_key", "per_user"), ("user", name))
        return Request("meshguard-up", (Descriptor(entries),))

    assert await codes(svc, user("alice"), 11) == [Code.OK] * 10 + [Code.OVER_LIMIT]
    assert await codes(svc, user("bob"), 1) == [Code.OK]
    assert await codes(svc, user("load-tester"), 20) == [Code.OK] * 20


async def test_api_extensions() -> None:
    svc = service()

    def key(value: str) -> Request:
        return Request("api", (Descriptor((("generic_key", "api"), ("api_key", value))),))

    assert await codes(svc, key("k1"), 11) == [Code.OK] * 10 + [Code.OVER_LIMIT]
    burst = (await svc.should_rate_limit(key("k1"))).statuses[0]
    assert burst.current_limit is not None and burst.current_limit.name == "burst"
    assert await codes(svc, key("batch"), 11) == [Code.OK] * 10 + [Code.OVER_LIMIT]
    assert await codes(svc, key("partner-acme"), 3) == [Code.OK] * 3
