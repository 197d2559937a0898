"""The opt-in algorithms (``sliding_window``, ``gcra``): one state transition, written twice.

Each algorithm is a pure step function on a small state, run by the memory store in-process and
by the Redis stores as a Lua script doing the same arithmetic in the same order (IEEE doubles in
both, integer microseconds as inputs), so both backends decide identically. Unlike the
reference's fixed window, a denied hit is not counted: the decision is check-then-increment,
which is why Redis needs a script (one round trip, atomic).

The script returns the state it decided on; :func:`outcome` turns that into what the service
reports. ``limit_remaining`` is "hits that would still be admitted now"; ``duration_until_reset``
is, for an admitted call, the time until the full budget is back with no further traffic, and
for a denied call the time until this call would be admitted (a retry-after).

``sliding_window`` is the two-bucket sliding counter: the estimate is
``current + previous * (unexpired share of the previous window)``; its state is
``(current window start, current, previous)`` in one Redis hash. ``gcra`` keeps one
theoretical arrival time (TAT) in microseconds; hits are spaced ``window / limit`` apart (rounded
down to a microsecond) with a burst of ``limit``.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import math


class Algorithm(enum.Enum):
    FIXED_WINDOW = "fixed_window"
    SLIDING_WINDOW = "sliding_window"
    GCRA = "gcra"


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """One limit's decision: whether admitted, the budget used before it, what is left, reset."""

    allowed: bool
    used_before: int
    remaining: int
    reset_seconds: int


SlidingState = tuple[int, int, int]  # (window start us, current count, previous count)


def sliding_step(
    state: SlidingState | None, now_us: int, addend: int, window_us: int, limit: int
) -> tuple[bool, int, int, SlidingState]:
    """(allowed, current before, previous, new state). Mirrors :data:`SLIDING_LUA`."""
    start = now_us - now_us % window_us
    current, previous = 0, 0
    if state is not None:
        if state[0] == start:
            current, previous = state[1], state[2]
        elif state[0] == start - window_us:
            previous = state[1]
    elapsed = now_us - start
    estimate = current + float(previous) * (window_us - elapsed) / window_us
    allowed = math.ceil(estimate) + addend <= limit
    after = current + addend if allowed else current
    return allowed, current, previous, (start, after, previous)


def sliding_outcome(
    allowed: bool,
    current: int,
    previous: int,
    now_us: int,
    addend: int,
    window_us: int,
    limit: int,
) -> Outcome:
    elapsed = now_us % window_us
    estimate = current + float(previous) * (window_us - elapsed) / window_us
    used = math.ceil(estimate)
    if allowed:
        if current + addend > 0:
            drained = 2 * window_us - elapsed
        elif previous > 0:
            drained = window_us - elapsed
        else:
            drained = 0
        return Outcome(True, used, limit - used - addend, _seconds(drained))
    budget = limit - addend
    if budget >= current and previous > 0:
        # The previous window's share shrinks linearly until the call fits.
        wait = window_us - (budget - current) * window_us / previous - elapsed
    elif budget >= 0 and current > 0:
        # Only once this window has become the previous one and decayed enough.
        wait = window_us - elapsed + window_us - budget * window_us / current
    else:
        wait = 2 * window_us - elapsed  # never fits (addend above the limit): report full drain
    return Outcome(False, used, 0, max(1, _seconds(wait)))


def gcra_step(
    tat: int | None, now_us: int, addend: int, window_us: int, limit: int
) -> tuple[bool, int, int]:
    """(allowed, base, new TAT). The TAT is stored only when allowed. Mirrors :data:`GCRA_LUA`."""
    base = now_us if tat is None or tat < now_us else tat
    new = math.floor(base + float(addend) * window_us / limit)
    return new - now_us <= window_us, base, new


def gcra_outcome(
    allowed: bool, base: int, new: int, now_us: int, addend: int, window_us: int, limit: int
) -> Outcome:
    used = limit - math.floor((window_us - (base - now_us)) * limit / window_us)
    if allowed:
        remaining = math.floor((window_us - (new - now_us)) * limit / window_us)
        return Outcome(True, used, max(0, remaining), _seconds(new - now_us))
    return Outcome(False, used, 0, max(1, _seconds(new - window_us - now_us)))


def never_allowed(addend: int, window_seconds: int) -> Outcome:
    """``requests_per_unit: 0``: every hit is over (a probe sees 0 left), nothing is stored."""
    return Outcome(addend == 0, 0, 0, window_seconds)


def _seconds(microseconds: float) -> int:
    return max(0, math.ceil(microseconds / 1_000_000))


# KEYS[1] = hash; ARGV = now_us, addend, window_us, limit. Returns {allowed, current, previous}.
SLIDING_LUA = """
local now, addend, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4])
local start = now - now % window
local saved = redis.call('HMGET', KEYS[1], 's', 'c', 'p')
local current, previous = 0, 0
local s = tonumber(saved[1])
if s == start then
  current, previous = tonumber(saved[2]) or 0, tonumber(saved[3]) or 0
elseif s == start - window then
  previous = tonumber(saved[2]) or 0
end
local estimate = current + previous * (window - (now - start)) / window
local allowed = 0
if math.ceil(estimate) + addend <= limit then
  allowed = 1
  if addend > 0 or s ~= start then
    redis.call('HSET', KEYS[1], 's', string.format('%d', start),
      'c', string.format('%d', current + addend), 'p', string.format('%d', previous))
    redis.call('PEXPIRE', KEYS[1], 2 * window / 1000)
  end
end
return {allowed, current, previous}
"""

# KEYS[1] = TAT; ARGV = now_us, addend, window_us, limit. Returns {allowed, base, new}.
GCRA_LUA = """
local now, addend, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4])
local base = tonumber(redis.call('GET', KEYS[1]))
if base == nil or base < now then base = now end
local new = math.floor(base + addend * window / limit)
local allowed = 0
if new - now <= window then
  allowed = 1
  if new > now and addend > 0 then
    redis.call('SET', KEYS[1], string.format('%d', new), 'PX',
      string.format('%d', math.ceil((new - now) / 1000)))
  end
end
return {allowed, base, new}
"""

SCRIPTS = {Algorithm.SLIDING_WINDOW: SLIDING_LUA, Algorithm.GCRA: GCRA_LUA}
SCRIPT_SHAS = {
    algorithm: hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
    for algorithm, source in SCRIPTS.items()
}


def outcome(
    algorithm: Algorithm,
    reply: tuple[int, int, int],
    now_us: int,
    addend: int,
    window_us: int,
    limit: int,
) -> Outcome:
    """The decision from a step's reply (memory or Lua): ``(allowed, a, b)``."""
    allowed, first, second = reply
    if algorithm is Algorithm.GCRA:
        return gcra_outcome(bool(allowed), first, second, now_us, addend, window_us, limit)
    return sliding_outcome(bool(allowed), first, second, now_us, addend, window_us, limit)
