"""run_eagerly: finished coroutines answer in place, suspended ones continue in a Task."""

from __future__ import annotations

import asyncio

import pytest

from meshguard.authz.eager import run_eagerly


async def immediate() -> str:
    return "now"


async def after(future: asyncio.Future[str]) -> str:
    return "got " + await future


async def bare_yield() -> int:
    await asyncio.sleep(0)
    return 2


async def failing(future: asyncio.Future[str]) -> str:
    await future
    raise RuntimeError("boom")


async def test_a_coroutine_that_never_waits_runs_in_place() -> None:
    assert run_eagerly(immediate()) == "now"


async def test_a_waiting_coroutine_finishes_in_a_task() -> None:
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = run_eagerly(after(future))
    assert isinstance(task, asyncio.Task) and not task.done()
    future.set_result("key")
    assert await task == "got key"
    sleeper = run_eagerly(bare_yield())
    assert isinstance(sleeper, asyncio.Task) and await sleeper == 2


async def test_errors_and_cancellation_reach_the_task() -> None:
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = run_eagerly(failing(future))
    assert isinstance(task, asyncio.Task)
    future.set_result("x")
    with pytest.raises(RuntimeError, match="boom"):
        await task
    pending: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    cancelled = run_eagerly(after(pending))
    assert isinstance(cancelled, asyncio.Task)
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
