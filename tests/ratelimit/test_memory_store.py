"""The memory store counts like INCRBY+EXPIRE, expires windows and stays bounded."""

from __future__ import annotations

from meshguard.ratelimit.memory_store import MemoryStore


async def test_counts_expire_and_refresh() -> None:
    now = [100.0]
    store = MemoryStore(clock=lambda: now[0])
    assert await store.increment([("a", 2, 10), ("a", 0, 10), ("b", 1, 1)]) == [2, 2, 1]
    now[0] += 5
    assert await store.read(["a", "b"]) == [2, 0]
    assert await store.increment([("a", 1, 10)]) == [3]
    now[0] += 11
    assert await store.increment([("a", 1, 10)]) == [1]
    now[0] += 100
    await store.increment([("c", 1, 10)])
    assert len(store) == 1  # expired keys were swept


async def test_a_shorter_ttl_on_a_later_touch_is_swept_on_time() -> None:
    now = [0.0]
    store = MemoryStore(clock=lambda: now[0])
    await store.increment([("long", 1, 1000), ("a", 1, 1000)])
    await store.increment([("a", 1, 5)])  # same key, now due long before the first deadline
    now[0] = 10.0
    await store.increment([("long", 1, 1000)])
    assert len(store) == 1


async def test_bounded_table_drops_the_key_closest_to_expiry() -> None:
    store = MemoryStore(max_keys=2, clock=lambda: 0.0)
    await store.increment([("short", 1, 1), ("long", 1, 100)])
    await store.increment([("new", 1, 50)])
    assert len(store) == 2
    assert await store.read(["short", "long", "new"]) == [0, 1, 1]
