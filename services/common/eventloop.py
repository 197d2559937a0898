"""Which asyncio event loop a service runs on (``--event-loop``).

uvloop (libuv) cuts the per-request cost of the event loop and of the HTTP flavour's transport
work; benchmarks/RESULTS.md has the measured difference. ``auto`` picks it
when it is installed and falls back to the standard loop otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from meshguard.common import settings

T = TypeVar("T")

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


def choice(text: str) -> str:
    """An ``--event-loop`` value, checked (argparse ``type``)."""
    if text not in CHOICES:
        raise ValueError(f"event loop must be one of {', '.join(CHOICES)}, got {text}")
    return text


def add_flag(parser: argparse.ArgumentParser) -> None:
    settings.add_flag(
        parser,
        "--event-loop",
        default="auto",
        type=choice,
        help="asyncio event loop: uvloop when installed (auto), or force one",
    )


def run(coroutine: Coroutine[Any, Any, T], choice: str) -> T:
    """``asyncio.run`` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(coroutine)
