"""Run a coroutine to its end inside the caller when it never has to wait.

A check almost never suspends (the verified-token cache and the compiled policies answer it
without I/O); wrapping each one in a Task would cost a Task object and an extra event-loop round
per request. Only a check that waits (a JWKS fetch) continues in a Task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_eagerly(coro: Coroutine[Any, Any, T]) -> T | asyncio.Task[T]:
    """The coroutine's result when it finished without waiting, else the Task finishing it.

    Not for coroutines whose result is itself a Task (the caller could not tell them apart).
    """
    try:
        waiting_on = coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    return asyncio.ensure_future(_finish(coro, waiting_on))


async def _finish(coro: Coroutine[Any, Any, T], waiting_on: object) -> T:
    """Drive ``coro`` the way a Task would from the point where it first suspended."""
    try:
        while True:
            if isinstance(waiting_on, asyncio.Future):
                # The coroutine reads the future's outcome itself when resumed.
                await asyncio.wait((waiting_on,))
            else:
                await asyncio.sleep(0)  # a bare yield: give the loop one round
            waiting_on = coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        coro.close()
