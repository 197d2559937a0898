"""Choosing the event loop of ``authz serve``."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from meshguard.common.eventloop import loop_factory


def test_asyncio_means_the_standard_loop() -> None:
    assert loop_factory("asyncio") is None


@pytest.mark.parametrize("choice", ["auto", "uvloop"])
def test_uvloop_when_installed(choice: str) -> None:
    factory = loop_factory(choice)
    assert factory is not None
    with asyncio.Runner(loop_factory=factory) as runner:
        assert isinstance(runner.get_loop(), uvloop.Loop)
        assert runner.run(asyncio.sleep(0, "ran")) == "ran"


def test_auto_falls_back_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert loop_factory("auto") is None


def test_unknown_choice_is_refused() -> None:
    with pytest.raises(ValueError, match="event loop"):
        loop_factory("trio")
