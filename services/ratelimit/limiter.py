"""Fixed-window decisions and their stats, exactly as the reference counts them.

Given a counter's value before and after this call's addend, decide OK / OVER_LIMIT and split
the addend over within / near / over stats (section 4.1 of the reference notes): a call that
crosses a threshold only counts the part above it.
"""

from __future__ import annotations

import collections
import math
import struct
import time
from collections.abc import Callable

from meshguard.ratelimit.algorithms import Outcome
from meshguard.ratelimit.config import RateLimit
from meshguard.ratelimit.model import Code, Status
from meshguard.ratelimit.stats import LimitStats

_F32 = struct.Struct("f")


def _float32(value: float) -> float:
    result: float = _F32.unpack(_F32.pack(value))[0]
    return result


class NearLimit:
    """``floor(limit * NEAR_LIMIT_RATIO)`` computed in float32 like the Go service."""

    __slots__ = ("_cache", "_ratio")

    def __init__(self, ratio: float) -> None:
        self._ratio = _float32(ratio)
        self._cache: dict[int, int] = {}

    def threshold(self, limit: int) -> int:
        value = self._cache.get(limit)
        if value is None:
            value = math.floor(_float32(_float32(float(limit)) * self._ratio))
            if len(self._cache) < 65536:
                self._cache[limit] = value
        return value


def decide(
    limit: RateLimit,
    before: int,
    after: int,
    addend: int,
    duration: int,
    stats: LimitStats,
    near: NearLimit,
) -> Status:
    """The status of one counted descriptor, recording its stats."""
    over_threshold = limit.requests_per_unit
    near_threshold = near.threshold(over_threshold)
    if after > over_threshold:
        if before >= over_threshold:
            stats.over_limit += addend
        else:
            stats.over_limit += after - over_threshold
            stats.near_limit += over_threshold - max(near_threshold, before)
        if limit.shadow_mode:
            stats.shadow_mode += addend
            return Status(Code.OK, limit, 0, duration)
        return Status(Code.OVER_LIMIT, limit, 0, duration)
    if after > near_threshold:
        stats.near_limit += addend if before >= near_threshold else after - near_threshold
    stats.within_limit += addend
    return Status(Code.OK, limit, over_threshold - after, duration)


def decide_outcome(
    limit: RateLimit, outcome: Outcome, addend: int, stats: LimitStats, near: NearLimit
) -> Status:
    """The status of a sliding-window or GCRA limit. A denied call was not stored, so its whole
    addend is ``over_limit``; an admitted one splits within / near like the fixed window."""
    if not outcome.allowed:
        stats.over_limit += addend
        if limit.shadow_mode:
            stats.shadow_mode += addend
            return Status(Code.OK, limit, 0, outcome.reset_seconds)
        return Status(Code.OVER_LIMIT, limit, 0, outcome.reset_seconds)
    before = outcome.used_before
    after = before + addend
    near_threshold = near.threshold(limit.requests_per_unit)
    if after > near_threshold:
        stats.near_limit += addend if before >= near_threshold else after - near_threshold
    stats.within_limit += addend
    return Status(Code.OK, limit, outcome.remaining, outcome.reset_seconds)


def decide_from_cache(limit: RateLimit, addend: int, duration: int, stats: LimitStats) -> Status:
    """A counter known to be over its limit in this window, answered without the store."""
    stats.over_limit += addend
    stats.over_limit_with_local_cache += addend
    if limit.shadow_mode:
        stats.shadow_mode += addend
        return Status(Code.OK, limit, 0, duration)
    return Status(Code.OVER_LIMIT, limit, 0, duration)


# What one cached key costs in this process (dict slot, key string, deadline float), used to turn
# the reference's LOCAL_CACHE_SIZE_IN_BYTES into an entry count.
CACHE_ENTRY_BYTES = 128


def cache_entries(size_in_bytes: int) -> int:
    """Entries that fit in ``size_in_bytes`` (0 turns the cache off, as in the reference)."""
    return max(1, size_in_bytes // CACHE_ENTRY_BYTES) if size_in_bytes > 0 else 0


class OverLimitCache:
    """Counters known to be over their limit until their window ends (per replica).

    Bounded by entry count: when full, expired entries are dropped first, then the oldest.
    ``counters`` receives the reference's ``ratelimit.localcache.*`` counts (hitCount, missCount,
    lookupCount, entryCount, expiredCount, evacuateCount).
    """

    __slots__ = ("_clock", "_entries", "counters", "max_entries")

    def __init__(
        self,
        max_entries: int,
        clock: Callable[[], float] = time.time,
        counters: collections.Counter[str] | None = None,
    ) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, float] = {}
        self.counters = counters if counters is not None else collections.Counter()

    def __contains__(self, key: str) -> bool:
        counters = self.counters
        counters["lookupCount"] += 1
        deadline = self._entries.get(key)
        if deadline is not None and deadline <= self._clock():
            del self._entries[key]
            counters["expiredCount"] += 1
            counters["entryCount"] = len(self._entries)
            deadline = None
        counters["hitCount" if deadline is not None else "missCount"] += 1
        return deadline is not None

    def add(self, key: str, ttl: int) -> None:
        entries = self._entries
        if key not in entries and len(entries) >= self.max_entries:
            now = self._clock()
            stale = [k for k, d in entries.items() if d <= now]
            for k in stale:
                del entries[k]
            self.counters["expiredCount"] += len(stale)
            while len(entries) >= self.max_entries:
                del entries[next(iter(entries))]
                self.counters["evacuateCount"] += 1
        entries[key] = self._clock() + ttl
        self.counters["entryCount"] = len(entries)
