"""What the limiter needs from a counter store (memory or Redis)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

# (counter name, addend, time to live in seconds). Addend 0 reads without changing.
Increment = tuple[str, int, int]


class CounterStore(Protocol):
    async def increment(self, ops: Sequence[Increment]) -> list[int]:
        """Add each addend (INCRBY semantics, TTL refreshed); the counts after, in order.

        Raises :class:`meshguard.ratelimit.model.BackendError` when the store is unusable.
        """
        ...

    async def read(self, keys: Sequence[str]) -> list[int]:
        """Current counts (0 for missing keys)."""
        ...

    async def close(self) -> None: ...
