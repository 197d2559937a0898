"""Which asyncio event loop ``authz serve`` runs on.

uvloop (libuv) cuts the per-request cost of the event loop and of the HTTP flavour's transport
work; benchmarks/RESULTS.md (section ``authz``) has the measured difference. ``auto`` picks it
when it is installed and falls back to the standard loop otherwise.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable

CHOICES = ("auto", "uvloop", "asyncio")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(choice: str) -> LoopFactory | None:
    """The factory for ``asyncio.Runner`` (None = the standard loop)."""
    if choice not in CHOICES:
        raise ValueError(f"event loop must be one of {', '.join(CHOICES)}, got {choice!r}")
    if choice == "asyncio" or (choice == "auto" and importlib.util.find_spec("uvloop") is None):
        return None
    import uvloop

    factory: LoopFactory = uvloop.new_event_loop
    return factory
