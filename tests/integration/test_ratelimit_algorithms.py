"""The opt-in algorithms on a real Redis: the Lua scripts decide exactly like the memory store,
``NOSCRIPT`` (a flushed or failed-over script cache) is healed by reloading, and the Cluster
client runs the scripts on the right nodes."""

from __future__ import annotations

import random
from typing import Any

from meshguard.common.sources import SourceFile
from meshguard.ratelimit.config import compile_sources
from meshguard.ratelimit.memory_store import MemoryStore
from meshguard.ratelimit.model import Code, Descriptor, Request
from meshguard.ratelimit.redis_store import LeanRedisStore, RedisPyStore, RedisSettings
from meshguard.ratelimit.service import RateLimitService, ServiceOptions
from tests.harness.redis import RedisCluster, RedisServer

CONFIG = """
domain: api
descriptors:
  - key: sliding
    rate_limit: {unit: second, unit_multiplier: 10, requests_per_unit: 7, algorithm: sliding_window}
  - key: gcra
    rate_limit: {unit: second, unit_multiplier: 10, requests_per_unit: 5, algorithm: gcra}
  - key: mixed
    rate_limits:
      - {unit: second, requests_per_unit: 3, algorithm: gcra}
      - {unit: minute, requests_per_unit: 20}
      - {unit: minute, requests_per_unit: 12, algorithm: sliding_window}
"""


def service_on(store: Any, now: list[float]) -> RateLimitService:
    config = compile_sources([SourceFile("c.yaml", CONFIG)])
    options = ServiceOptions(expiration_jitter_max_seconds=0)
    return RateLimitService(lambda: config, store, options, clock=lambda: now[0])


def traffic(seed: int, count: int) -> list[tuple[float, Request]]:
    """Bursty calls over a few windows: (clock advance, request)."""
    rng = random.Random(seed)
    calls = []
    for _ in range(count):
        key = rng.choice(["sliding", "gcra", "mixed"])
        descriptor = Descriptor(((key, rng.choice("ab")),), hits_addend=rng.choice([None, 0, 2]))
        calls.append((rng.choice([0.0, 0.0, 0.137, 0.9, 3.3]), Request("api", (descriptor,))))
    return calls


async def test_lua_scripts_decide_like_the_memory_store(redis_server: RedisServer) -> None:
    store = LeanRedisStore.from_settings(RedisSettings(url=redis_server.url, timeout=1.0))
    await store.start()
    now = [1_000_012_345.0]  # fixed, so the windows (and the assertion below) are repeatable
    memory_now = list(now)
    on_redis, in_memory = service_on(store, now), service_on(MemoryStore(), memory_now)
    denied = 0
    try:
        for advance, request in traffic(seed=4, count=400):
            now[0] += advance
            memory_now[0] += advance
            expected = await in_memory.should_rate_limit(request)
            got = await on_redis.should_rate_limit(request)
            assert got == expected
            denied += expected.overall_code is Code.OVER_LIMIT
    finally:
        await store.close()
    assert 40 < denied < 360  # the sequence exercises both outcomes
    assert on_redis.stats.snapshot() == in_memory.stats.snapshot()


async def test_noscript_after_a_flush_reloads_the_scripts(redis_server: RedisServer) -> None:
    store = LeanRedisStore.from_settings(RedisSettings(url=redis_server.url, timeout=1.0))
    await store.start()
    now = [1_000_000_000.0]
    service = service_on(store, now)
    request = Request("api", (Descriptor((("gcra", "x"),)),))
    try:
        assert (await service.should_rate_limit(request)).statuses[0].limit_remaining == 4
        redis_server.client().script_flush()
        assert (await service.should_rate_limit(request)).statuses[0].limit_remaining == 3
        client = redis_server.client()
        assert client.script_exists(*store_script_shas()) == [True, True]
        assert client.get("api_gcra_x_gcra_10s") == b"1000000004000000"  # TAT in µs
        assert 0 < client.pttl("api_gcra_x_gcra_10s") <= 10_000
    finally:
        await store.close()


def store_script_shas() -> list[str]:
    from meshguard.ratelimit.algorithms import SCRIPT_SHAS

    return list(SCRIPT_SHAS.values())


async def test_scripts_on_a_cluster(redis_cluster: RedisCluster) -> None:
    host, port = redis_cluster.startup_nodes[0]
    store = RedisPyStore.from_settings(
        RedisSettings(url=f"{host}:{port}", type="cluster", timeout=1.0)
    )
    now = [1_000_000_000.0]
    service = service_on(store, now)
    users = [f"u{i}" for i in range(6)]  # several slots
    request = Request("api", tuple(Descriptor((("mixed", u),)) for u in users))
    try:
        codes = [(await service.should_rate_limit(request)).overall_code for _ in range(4)]
        assert codes == [Code.OK, Code.OK, Code.OK, Code.OVER_LIMIT]
        for node in redis_cluster.nodes:
            node.client().script_flush()
        now[0] += 1
        assert (await service.should_rate_limit(request)).overall_code is Code.OK
    finally:
        await store.close()
