"""What the limiter needs from a counter store (memory or Redis)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from meshguard.ratelimit.algorithms import Algorithm

# (counter name, addend, time to live in seconds). Addend 0 reads without changing.
Increment = tuple[str, int, int]
# (algorithm, key, now in µs, addend, window in µs, limit) for the scripted algorithms.
ScriptOp = tuple[Algorithm, str, int, int, int, int]
# A step's reply: (allowed 0/1, a, b) as documented in :mod:`algorithms`.
StepReply = tuple[int, int, int]


class CounterStore(Protocol):
    async def increment(self, ops: Sequence[Increment]) -> list[int]:
        """Add each addend (INCRBY semantics, TTL refreshed); the counts after, in order.

        Raises :class:`meshguard.ratelimit.model.BackendError` when the store is unusable.
        """
        ...

    async def advance(self, ops: Sequence[ScriptOp]) -> list[StepReply]:
        """Run one sliding-window or GCRA step per op, each atomic; the replies in order."""
        ...

    async def read(self, keys: Sequence[str]) -> list[int]:
        """Current counts (0 for missing keys)."""
        ...

    async def close(self) -> None: ...
