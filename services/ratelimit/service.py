"""``ShouldRateLimit``: match every descriptor, count, decide, shape the response.

This is the reference's service logic on plain values: request checks, ``replaces``,
``unlimited``, hits addends, the optional stop-increment pass, shadow / quota / global shadow
mode, service-side RateLimit headers and dynamic metadata. The counter store is the only I/O.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from meshguard.ratelimit.algorithms import Algorithm, never_allowed, outcome
from meshguard.ratelimit.config import RateLimit, RateLimitConfig, Unit
from meshguard.ratelimit.limiter import (
    NearLimit,
    OverLimitCache,
    decide,
    decide_from_cache,
    decide_outcome,
)
from meshguard.ratelimit.matcher import Match, match
from meshguard.ratelimit.model import (
    EMPTY_STATUS,
    UNLIMITED_STATUS,
    BackendError,
    Code,
    Request,
    RequestError,
    Response,
    Status,
)
from meshguard.ratelimit.stats import LimitStats, Stats
from meshguard.ratelimit.store import CounterStore, Increment, ScriptOp, StepReply


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceOptions:
    """Behaviour switches, named after the reference's environment variables."""

    shadow_mode: bool = False  # SHADOW_MODE
    quota_mode: bool = False  # QUOTA_MODE
    stop_increment_when_over_limit: bool = False  # STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT
    response_headers: bool = False  # LIMIT_RESPONSE_HEADERS_ENABLED
    limit_header: str = "RateLimit-Limit"  # LIMIT_LIMIT_HEADER
    remaining_header: str = "RateLimit-Remaining"  # LIMIT_REMAINING_HEADER
    reset_header: str = "RateLimit-Reset"  # LIMIT_RESET_HEADER
    dynamic_metadata: bool = False  # RESPONSE_DYNAMIC_METADATA
    near_limit_ratio: float = 0.8  # NEAR_LIMIT_RATIO
    cache_key_prefix: str = ""  # CACHE_KEY_PREFIX
    expiration_jitter_max_seconds: int = 300  # EXPIRATION_JITTER_MAX_SECONDS
    local_cache_entries: int = 0  # over-limit cache size (LOCAL_CACHE_SIZE_IN_BYTES; 0 = off)


T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class _Check:
    """One limit of one descriptor on its way to the store."""

    index: int  # descriptor position in the request
    slot: int  # limit position in the descriptor's limits
    limit: RateLimit
    stats: LimitStats
    key: str
    addend: int
    offset: int  # seconds into the fixed window


def _without(found: Match, replaced: set[str]) -> Match | None:
    """``found`` minus its limits named in ``replaced`` (None when none is left).

    An unlimited limit is never dropped: the reference sets unlimited descriptors aside before
    it applies ``replaces`` (their own ``replaces`` still count), so they keep their status."""
    kept = [
        (limit, key)
        for limit, key in zip(found.limits, found.stat_keys, strict=True)
        if limit.unlimited or not (limit.name and limit.name in replaced)
    ]
    if len(kept) == len(found.limits):
        return found
    if not kept:
        return None
    limits, keys = zip(*kept, strict=True)
    return dataclasses.replace(found, limits=tuple(limits), stat_keys=tuple(keys))


async def _into(target: list[T], positions: list[int], replies: Awaitable[list[T]]) -> None:
    """Await one store call and put its replies at ``positions`` of ``target``."""
    for position, reply in zip(positions, await replies, strict=True):
        target[position] = reply


def _strictest(statuses: list[Status]) -> Status:
    """The status reported for a descriptor with several limits: the first one over, else the
    one with the least left (the first on ties), so Envoy's headers show the binding limit."""
    chosen = statuses[0]
    for status in statuses[1:]:
        if chosen.code is Code.OVER_LIMIT:
            break
        if status.code is Code.OVER_LIMIT or status.limit_remaining < chosen.limit_remaining:
            chosen = status
    return chosen


class RateLimitService:
    """Decides calls against whatever config ``current_config`` returns at call time."""

    def __init__(
        self,
        current_config: Callable[[], RateLimitConfig | None],
        store: CounterStore,
        options: ServiceOptions = ServiceOptions(),
        stats: Stats | None = None,
        clock: Callable[[], float] = time.time,
        per_second_store: CounterStore | None = None,
    ) -> None:
        self._current_config = current_config
        self.store = store
        # REDIS_PERSECOND: counters of SECOND-unit limits live in their own store.
        self.per_second_store = per_second_store
        self.options = options
        self.stats = stats if stats is not None else Stats()
        self._clock = clock
        self._near = NearLimit(options.near_limit_ratio)
        self._jitter = random.Random()
        self.local_cache = (
            OverLimitCache(options.local_cache_entries, clock, self.stats.local_cache)
            if options.local_cache_entries > 0
            else None
        )

    async def should_rate_limit(self, request: Request) -> Response:
        try:
            return await self._decide(request)
        except RequestError:
            self.stats.service["call.should_rate_limit.service_error"] += 1
            raise
        except BackendError:
            self.stats.service["call.should_rate_limit.redis_error"] += 1
            raise

    async def _decide(self, request: Request) -> Response:
        if not request.domain:
            raise RequestError("rate limit domain must not be empty")
        if not request.descriptors:
            raise RequestError("rate limit descriptor list must not be empty")
        config = self._current_config()
        if config is None:
            raise RequestError("no rate limit configuration loaded")
        matches = self._matches(config, request)
        count = len(request.descriptors)
        statuses: list[Status] = [EMPTY_STATUS] * count
        counted: list[int] = []
        for index, found in enumerate(matches):
            if found is None:
                continue
            if found.limit.unlimited:
                statuses[index] = UNLIMITED_STATUS
            else:
                counted.append(index)
        if counted:
            await self._count(request, matches, counted, statuses)
        return self._response(request, matches, statuses)

    def _matches(self, config: RateLimitConfig, request: Request) -> list[Match | None]:
        domain = config.domains.get(request.domain)
        if domain is None:
            self.stats.domain_not_found[request.domain] += len(request.descriptors)
            return [None] * len(request.descriptors)
        matches = [match(domain, d) for d in request.descriptors]
        replaced: set[str] = set()
        for found in matches:
            if found is not None:
                for limit in found.limits:
                    replaced.update(limit.replaces)
        if replaced:
            matches = [_without(m, replaced) if m is not None else None for m in matches]
        return matches

    async def _count(
        self,
        request: Request,
        matches: Sequence[Match | None],
        counted: list[int],
        statuses: list[Status],
    ) -> None:
        options = self.options
        clock = self._clock()
        now, now_us = int(clock), int(clock * 1_000_000)
        prefix = f"{options.cache_key_prefix}{request.domain}_"
        default_addend = request.hits_addend or 1
        local_cache = self.local_cache
        decided: dict[int, list[Status | None]] = {}
        fixed: list[_Check] = []
        scripted: list[_Check] = []
        for index in counted:
            found = matches[index]
            assert found is not None
            descriptor = request.descriptors[index]
            addend = default_addend if descriptor.hits_addend is None else descriptor.hits_addend
            slots: list[Status | None] = [None] * len(found.limits)
            decided[index] = slots
            for slot, (limit, stat_key) in enumerate(
                zip(found.limits, found.stat_keys, strict=True)
            ):
                limit_stats = self.stats.for_key(stat_key, request.domain)
                limit_stats.total_hits += addend
                window = limit.window
                if limit.algorithm is Algorithm.FIXED_WINDOW:
                    offset = now % window
                    key = f"{prefix}{found.counter_name}{now - offset}{limit.key_tag}"
                    if local_cache is not None and key in local_cache:
                        slots[slot] = decide_from_cache(limit, addend, window - offset, limit_stats)
                        continue
                    fixed.append(_Check(index, slot, limit, limit_stats, key, addend, offset))
                elif limit.requests_per_unit == 0:
                    slots[slot] = decide_outcome(
                        limit, never_allowed(addend, window), addend, limit_stats, self._near
                    )
                else:
                    key = f"{prefix}{found.counter_name}{limit.key_tag}"
                    scripted.append(_Check(index, slot, limit, limit_stats, key, addend, 0))
        counts, steps = await self._store_calls(fixed, scripted, now_us)
        for check, (addend, after) in zip(fixed, counts, strict=True):
            limit = check.limit
            reset = limit.window - check.offset
            status = decide(limit, after - addend, after, addend, reset, check.stats, self._near)
            if local_cache is not None and after > limit.requests_per_unit:
                local_cache.add(check.key, reset)
            decided[check.index][check.slot] = status
        for check, reply in zip(scripted, steps, strict=True):
            limit = check.limit
            window_us = limit.window * 1_000_000
            found_outcome = outcome(
                limit.algorithm, reply, now_us, check.addend, window_us, limit.requests_per_unit
            )
            decided[check.index][check.slot] = decide_outcome(
                limit, found_outcome, check.addend, check.stats, self._near
            )
        for index, slots in decided.items():
            statuses[index] = _strictest([s for s in slots if s is not None])

    async def _store_calls(
        self, fixed: list[_Check], scripted: list[_Check], now_us: int
    ) -> tuple[list[tuple[int, int]], list[StepReply]]:
        """Fixed-window INCRBYs and script steps; concurrent, so one coalesced round trip."""
        addends = [c.addend for c in fixed]
        if fixed and self.options.stop_increment_when_over_limit:
            addends = await self._stop_increment_addends(fixed)
        jitter = self.options.expiration_jitter_max_seconds
        ops: list[Increment] = [
            (c.key, a, c.limit.window + (self._jitter.randrange(jitter) if jitter > 0 else 0))
            for c, a in zip(fixed, addends, strict=True)
        ]
        script_ops: list[ScriptOp] = [
            (
                c.limit.algorithm,
                c.key,
                now_us,
                c.addend,
                c.limit.window * 1_000_000,
                c.limit.requests_per_unit,
            )
            for c in scripted
        ]
        calls: list[Awaitable[None]] = []
        counts: list[int] = [0] * len(ops)
        steps: list[StepReply] = [(0, 0, 0)] * len(script_ops)
        for store, positions in self._split(fixed):
            calls.append(_into(counts, positions, store.increment([ops[i] for i in positions])))
        for store, positions in self._split(scripted):
            calls.append(_into(steps, positions, store.advance([script_ops[i] for i in positions])))
        if len(calls) == 1:
            await calls[0]
        elif calls:
            await asyncio.gather(*calls)
        return list(zip(addends, counts, strict=True)), steps

    def _split(self, checks: list[_Check]) -> list[tuple[CounterStore, list[int]]]:
        """Positions of ``checks`` per store: all in one unless a per-second store is set."""
        if not checks:
            return []
        second = self.per_second_store
        if second is None:
            return [(self.store, list(range(len(checks))))]
        main = [i for i, c in enumerate(checks) if c.limit.unit is not Unit.SECOND]
        fast = [i for i, c in enumerate(checks) if c.limit.unit is Unit.SECOND]
        return [(store, group) for store, group in ((self.store, main), (second, fast)) if group]

    async def _stop_increment_addends(self, fixed: list[_Check]) -> list[int]:
        """Only the counters this call pushes over their limit are incremented when any is."""
        current = [0] * len(fixed)
        await asyncio.gather(
            *(
                _into(current, positions, store.read([fixed[i].key for i in positions]))
                for store, positions in self._split(fixed)
            )
        )
        over = [
            count + c.addend > c.limit.requests_per_unit
            for c, count in zip(fixed, current, strict=True)
        ]
        if not any(over):
            return [c.addend for c in fixed]
        return [c.addend if o else 0 for c, o in zip(fixed, over, strict=True)]

    def _response(
        self, request: Request, matches: Sequence[Match | None], statuses: list[Status]
    ) -> Response:
        options = self.options
        overall = Code.OK
        quota_total = 0
        quota_over = 0
        for found, status in zip(matches, statuses, strict=True):
            if found is not None and found.limit.unlimited:
                continue  # as in the reference, unlimited descriptors take no part in the verdict
            quota = options.quota_mode or (found is not None and found.limit.quota_mode)
            if quota:
                quota_total += 1
                if status.code is Code.OVER_LIMIT:
                    quota_over += 1
            elif status.code is Code.OVER_LIMIT:
                overall = Code.OVER_LIMIT
        if quota_total and quota_over == quota_total:
            overall = Code.OVER_LIMIT
        if overall is Code.OVER_LIMIT and options.shadow_mode:
            overall = Code.OK
            self.stats.service["global_shadow_mode"] += 1
        headers = self._headers(matches, statuses) if options.response_headers else ()
        metadata = self._metadata(request, matches, statuses) if options.dynamic_metadata else None
        return Response(overall, tuple(statuses), headers, metadata)

    def _headers(
        self, matches: Sequence[Match | None], statuses: list[Status]
    ) -> tuple[tuple[str, str], ...]:
        chosen: Status | None = None
        for found, status in zip(matches, statuses, strict=True):
            if status.current_limit is None:
                continue
            quota = self.options.quota_mode or (found is not None and found.limit.quota_mode)
            if (
                (status.code is Code.OVER_LIMIT and not quota)
                or chosen is None
                or (
                    chosen.code is not Code.OVER_LIMIT
                    and status.limit_remaining < chosen.limit_remaining
                )
            ):
                chosen = status
        if chosen is None or chosen.current_limit is None:
            return ()
        options = self.options
        return (
            (options.limit_header, str(chosen.current_limit.requests_per_unit)),
            (options.remaining_header, str(chosen.limit_remaining)),
            (options.reset_header, str(chosen.duration_until_reset or 0)),
        )

    def _metadata(
        self, request: Request, matches: Sequence[Match | None], statuses: list[Status]
    ) -> dict[str, Any]:
        descriptors: list[dict[str, Any]] = []
        for descriptor in request.descriptors:
            entry: dict[str, Any] = {"entries": [f"{k}={v}" for k, v in descriptor.entries]}
            if descriptor.limit is not None:
                entry["limit"] = {
                    "requestsPerUnit": descriptor.limit.requests_per_unit,
                    "unit": descriptor.limit.unit,
                }
            if descriptor.hits_addend is not None:
                entry["hitsAddend"] = descriptor.hits_addend
            descriptors.append(entry)
        merged: dict[str, Any] = {}
        for found, status in zip(matches, statuses, strict=True):
            # Unlimited descriptors are not among the reference's "passed" ones.
            if found is None or found.metadata is None or found.limit.unlimited:
                continue
            if status.code is Code.OK:
                _merge_metadata(merged, found.metadata)
        out: dict[str, Any] = {"domain": request.domain, "descriptors": descriptors}
        if request.hits_addend:
            out["hitsAddend"] = request.hits_addend
        if merged:
            out["metadata"] = merged
        return out


def _merge_metadata(into: dict[str, Any], more: Mapping[str, Any]) -> None:
    """Add ``more`` to ``into``: mappings on both sides merge key by key, otherwise the value
    already there wins (the reference merges the passed descriptors' blocks this way)."""
    for key, value in more.items():
        present = into.get(key)
        if key not in into:
            into[key] = copy.deepcopy(value)  # later merges must not touch the config
        elif isinstance(present, dict) and isinstance(value, Mapping):
            _merge_metadata(present, value)
