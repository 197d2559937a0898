"""Several limits on one descriptor, custom windows and the scripted algorithms, through the
service on the memory store: decisions, statuses, counter names and stat keys."""

from __future__ import annotations

from collections.abc import Sequence

from meshguard.common.sources import SourceFile
from meshguard.ratelimit.config import compile_sources
from meshguard.ratelimit.memory_store import MemoryStore
from meshguard.ratelimit.model import Code, Descriptor, Request
from meshguard.ratelimit.service import RateLimitService, ServiceOptions
from meshguard.ratelimit.store import Increment, ScriptOp, StepReply

CONFIG = """
domain: api
descriptors:
  - key: user
    rate_limits:
      - {unit: second, requests_per_unit: 2, name: burst}
      - {unit: minute, requests_per_unit: 3, name: sustained}
  - key: plain
    rate_limit: {unit: minute, requests_per_unit: 2}
  - key: five_minutes
    rate_limit: {unit: minute, unit_multiplier: 5, requests_per_unit: 1}
  - key: sliding
    rate_limit: {unit: minute, requests_per_unit: 2, algorithm: sliding_window}
  - key: gcra
    rate_limits:
      - {unit: minute, requests_per_unit: 2, algorithm: gcra}
      - {unit: hour, requests_per_unit: 100}
"""
T0 = 1_700_000_040.0  # a minute boundary, 240 s into a five-minute window


class Recording(MemoryStore):
    """The memory store, remembering every key it was asked to touch."""

    def __init__(self, clock: object) -> None:
        super().__init__(clock=lambda: 0.0)
        self.keys: list[str] = []

    async def increment(self, ops: Sequence[Increment]) -> list[int]:
        self.keys.extend(op[0] for op in ops)
        return await super().increment(ops)

    async def advance(self, ops: Sequence[ScriptOp]) -> list[StepReply]:
        self.keys.extend(op[1] for op in ops)
        return await super().advance(ops)


def make(now: list[float]) -> tuple[RateLimitService, Recording]:
    config = compile_sources([SourceFile("c.yaml", CONFIG)])
    store = Recording(now)
    options = ServiceOptions(expiration_jitter_max_seconds=0)
    return RateLimitService(lambda: config, store, options, clock=lambda: now[0]), store


def call(key: str, value: str = "a") -> Request:
    return Request("api", (Descriptor(((key, value),)),))


async def test_burst_and_sustained_limits_both_apply() -> None:
    now = [T0]
    service, _ = make(now)
    first = (await service.should_rate_limit(call("user"))).statuses[0]
    assert first.code is Code.OK and first.limit_remaining == 1
    assert first.current_limit is not None and first.current_limit.name == "burst"
    second = (await service.should_rate_limit(call("user"))).statuses[0]
    assert second.limit_remaining == 0
    third = (await service.should_rate_limit(call("user"))).statuses[0]
    assert third.code is Code.OVER_LIMIT and third.current_limit.name == "burst"  # type: ignore[union-attr]
    now[0] += 1
    fourth = (await service.should_rate_limit(call("user"))).statuses[0]
    # The second's budget is back, but the minute (3, with the denied hit counted) is over.
    assert fourth.code is Code.OVER_LIMIT and fourth.current_limit.name == "sustained"  # type: ignore[union-attr]
    assert fourth.duration_until_reset == 59
    snapshot = service.stats.snapshot()
    assert snapshot["ratelimit.service.rate_limit.api.user.burst.total_hits"] == 4
    assert snapshot["ratelimit.service.rate_limit.api.user.sustained.over_limit"] == 1


async def test_counter_names_stay_the_references_unless_opted_in() -> None:
    now = [T0]
    service, store = make(now)
    for key in ("plain", "five_minutes", "user", "sliding", "gcra"):
        await service.should_rate_limit(call(key))
    start = int(T0)
    assert store.keys == [
        f"api_plain_a_{start}",  # byte-compatible with the reference
        f"api_five_minutes_a_{start - 240}_300s",
        f"api_user_a_{start}",
        f"api_user_a_{start}_60s",
        "api_sliding_a_sliding_60s",
        f"api_gcra_a_{start - start % 3600}_3600s",
        "api_gcra_a_gcra_60s",
    ]


async def test_unit_multiplier_window_and_reset() -> None:
    now = [T0]
    service, _ = make(now)
    status = (await service.should_rate_limit(call("five_minutes"))).statuses[0]
    assert status.limit_remaining == 0 and status.duration_until_reset == 60
    now[0] += 59
    assert (await service.should_rate_limit(call("five_minutes"))).overall_code is Code.OVER_LIMIT
    now[0] += 1
    status = (await service.should_rate_limit(call("five_minutes"))).statuses[0]
    assert status.code is Code.OK and status.duration_until_reset == 300


async def test_scripted_algorithms_do_not_count_denied_hits() -> None:
    now = [T0]
    service, _ = make(now)
    codes = [(await service.should_rate_limit(call("gcra"))).overall_code for _ in range(4)]
    assert codes == [Code.OK, Code.OK, Code.OVER_LIMIT, Code.OVER_LIMIT]
    denied = (await service.should_rate_limit(call("gcra"))).statuses[0]
    assert denied.duration_until_reset == 30  # one emission interval (60 s / 2)
    now[0] += 30
    assert (await service.should_rate_limit(call("gcra"))).overall_code is Code.OK
    snapshot = service.stats.snapshot()
    assert snapshot["ratelimit.service.rate_limit.api.gcra.gcra_60s.over_limit"] == 3
    assert snapshot["ratelimit.service.rate_limit.api.gcra.fixed_window_3600s.total_hits"] == 6
