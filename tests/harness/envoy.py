"""The ``envoy`` fixture's factory: start Envoys for one test, stop all of them at teardown."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshguard.common.envoy import EnvoyProcess


class EnvoyFactory:
    """``await envoy(config, **options)`` starts an Envoy (see EnvoyProcess) and waits for LIVE.

    Put port 0 in the config and ask ``listener_port(name)``: no port can be stolen between
    choosing and binding it.
    """

    def __init__(self) -> None:
        self.started: list[EnvoyProcess] = []

    async def __call__(self, config: Mapping[str, Any], **options: Any) -> EnvoyProcess:
        process = EnvoyProcess(config, **options)
        self.started.append(process)
        return await process.start_async()

    def close(self) -> None:
        for process in self.started:
            process.stop()
