"""The embedded counter store: exact fixed-window counters in this process.

Right for one replica (and for ``meshguard up``): no network hop, so a decision is a few dict
operations. Counters expire like Redis keys (TTL refreshed on every increment). Expiry is
amortised: keys are kept in touch order per TTL, so the oldest key of each TTL is the next to
expire and a sweep only looks at the front of each queue, never at the whole table. The table
is bounded; when it is full the key closest to expiry goes first.

The opt-in algorithms keep their small states in a second table, bounded the same way (least
recently touched first), and run the same step functions the Redis scripts mirror.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from meshguard.ratelimit import algorithms
from meshguard.ratelimit.algorithms import Algorithm
from meshguard.ratelimit.store import Increment, ScriptOp, StepReply

_SWEEP_BATCH = 256


class MemoryStore:
    def __init__(
        self, max_keys: int = 1_000_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_keys = max_keys
        self._clock = clock
        self._counts: dict[str, int] = {}
        self._deadline: dict[str, float] = {}
        self._queues: dict[int, dict[str, None]] = {}  # ttl -> keys in touch order
        # No queue front expires before this: the next sweep waits for it.
        self._next_sweep = math.inf
        self._states: dict[str, tuple[int, Any]] = {}  # key -> (deadline µs, state), touch order

    def __len__(self) -> int:
        return len(self._counts)

    async def increment(self, ops: Sequence[Increment]) -> list[int]:
        return self.increment_now(ops)

    def increment_now(self, ops: Sequence[Increment]) -> list[int]:
        """Synchronous increment: the whole call is atomic on the event loop."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        counts, deadlines, queues = self._counts, self._deadline, self._queues
        results: list[int] = []
        for key, addend, ttl in ops:
            deadline = deadlines.get(key)
            value = addend if deadline is None or deadline <= now else counts[key] + addend
            if deadline is None and len(counts) >= self.max_keys:
                self._evict_one()
            counts[key] = value
            expires = deadlines[key] = now + ttl
            if expires < self._next_sweep:
                self._next_sweep = expires
            queue = queues.get(ttl)
            if queue is None:
                queue = queues[ttl] = {}
            queue.pop(key, None)
            queue[key] = None
            results.append(value)
        return results

    async def advance(self, ops: Sequence[ScriptOp]) -> list[StepReply]:
        return [self._step(*op) for op in ops]

    def _step(
        self, algorithm: Algorithm, key: str, now_us: int, addend: int, window_us: int, limit: int
    ) -> StepReply:
        states = self._states
        saved = states.get(key)
        state = saved[1] if saved is not None and saved[0] > now_us else None
        if algorithm is Algorithm.GCRA:
            allowed, base, new = algorithms.gcra_step(state, now_us, addend, window_us, limit)
            if allowed and new > now_us and addend > 0:
                self._keep(key, now_us, new, new)
            return int(allowed), base, new
        allowed, current, previous, after = algorithms.sliding_step(
            state, now_us, addend, window_us, limit
        )
        if allowed:
            self._keep(key, now_us, now_us + 2 * window_us, after)
        return int(allowed), current, previous

    def _keep(self, key: str, now_us: int, deadline_us: int, state: Any) -> None:
        """Store a state as most recently touched; drop the least recent if expired or full."""
        states = self._states
        states.pop(key, None)
        while len(states) >= self.max_keys:
            del states[next(iter(states))]
        if states:
            oldest = next(iter(states))
            if states[oldest][0] <= now_us:
                del states[oldest]
        states[key] = (deadline_us, state)

    async def read(self, keys: Sequence[str]) -> list[int]:
        now = self._clock()
        return [self._counts[k] if self._deadline.get(k, 0.0) > now else 0 for k in keys]

    async def close(self) -> None:
        self._states.clear()
        self._counts.clear()
        self._deadline.clear()
        self._queues.clear()
        self._next_sweep = math.inf

    def _sweep(self, now: float) -> None:
        """Drop up to a batch of expired keys; the next sweep is due when the earliest front
        left expires (at once if the batch ran out)."""
        budget = _SWEEP_BATCH
        upcoming = math.inf
        for queue in self._queues.values():
            while queue and budget:
                key = next(iter(queue))
                deadline = self._deadline.get(key)
                if deadline is not None and deadline > now:
                    upcoming = min(upcoming, deadline)
                    break
                del queue[key]
                if deadline is not None:
                    del self._counts[key]
                    del self._deadline[key]
                budget -= 1
        self._next_sweep = upcoming if budget else now

    def _evict_one(self) -> None:
        fronts = [
            (self._deadline.get(next(iter(q)), 0.0), ttl) for ttl, q in self._queues.items() if q
        ]
        if not fronts:
            return
        _, ttl = min(fronts)
        key = next(iter(self._queues[ttl]))
        del self._queues[ttl][key]
        self._counts.pop(key, None)
        self._deadline.pop(key, None)
