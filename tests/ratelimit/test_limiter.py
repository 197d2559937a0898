"""Fixed-window accounting with NEAR_LIMIT_RATIO, and the bounded local over-limit cache."""

from __future__ import annotations

import pytest

from meshguard.common.sources import SourceFile
from meshguard.ratelimit.config import compile_sources
from meshguard.ratelimit.limiter import CACHE_ENTRY_BYTES, OverLimitCache, cache_entries
from meshguard.ratelimit.memory_store import MemoryStore
from meshguard.ratelimit.model import Descriptor, Request
from meshguard.ratelimit.service import RateLimitService, ServiceOptions

CONFIG = (
    "domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: hour, requests_per_unit: 10}\n"
)


@pytest.mark.parametrize(("ratio", "near"), [(0.8, 2), (0.5, 5), (0.25, 8)])
async def test_near_limit_counts_hits_above_the_ratio(ratio: float, near: int) -> None:
    config = compile_sources([SourceFile("c.yaml", CONFIG)])
    service = RateLimitService(
        lambda: config, MemoryStore(), ServiceOptions(near_limit_ratio=ratio)
    )
    request = Request("d", (Descriptor((("k", "v"),)),))
    for _ in range(12):
        await service.should_rate_limit(request)
    stats = service.stats.snapshot()
    assert stats["ratelimit.service.rate_limit.d.k.near_limit"] == near
    assert stats["ratelimit.service.rate_limit.d.k.within_limit"] == 10
    assert stats["ratelimit.service.rate_limit.d.k.over_limit"] == 2


def test_cache_size_in_bytes_maps_to_entries() -> None:
    assert cache_entries(0) == 0
    assert cache_entries(1) == 1
    assert cache_entries(1024 * CACHE_ENTRY_BYTES) == 1024


def test_cache_expires_and_stays_bounded() -> None:
    now = [0.0]
    cache = OverLimitCache(2, clock=lambda: now[0])
    cache.add("a", 10)
    cache.add("b", 5)
    assert "a" in cache and "b" in cache
    now[0] = 6
    assert "b" not in cache  # its window is over
    cache.add("c", 10)
    cache.add("d", 10)  # full: the oldest ("a") makes room
    assert "a" not in cache and "c" in cache and "d" in cache
    assert cache.counters["evacuateCount"] == 1
    assert cache.counters["entryCount"] == 2
    assert cache.counters["hitCount"] == 4 and cache.counters["missCount"] == 2
