"""The process fixtures stop their processes even when the test using them fails."""

from __future__ import annotations

import json
import os

import pytest

INNER_CONFTEST = """
from tests.conftest import envoy, redis_factory, redis_server  # noqa: F401
"""

INNER_TEST = """
import json
import pathlib

from meshguard.common import envoy as cfg


async def test_fails_while_processes_run(envoy, redis_server):
    listener = cfg.http_listener("l", routes=[cfg.direct_response_route(200, "x")])
    process = await envoy(cfg.bootstrap(listeners=[listener]))
    pathlib.Path("pids.json").write_text(json.dumps([process.pid, redis_server.pid]))
    raise AssertionError("the test fails with Envoy and Redis running")
"""


def test_processes_are_stopped_when_the_test_fails(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TEST)
    result = pytester.runpytest_inprocess(
        "-o",
        "asyncio_mode=auto",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(failed=1)
    pids = json.loads((pytester.path / "pids.json").read_text())
    assert len(pids) == 2
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
