"""The services of ``meshguard up`` as child processes, started exactly as users run them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

import aiohttp

from meshguard.common.netutil import LOCALHOST
from meshguard.common.processes import terminate


class ChildService:
    """``meshguard <args>`` in a child process, ready once its ``ready_path`` answers 200.

    ``env`` is added to this process's environment (the sidecar agent is configured by env,
    as the injected container is).
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        admin_port: int,
        *,
        ready_path: str = "/readyz",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.args = [sys.executable, "-m", "meshguard.cli", *args]
        self.admin_port = admin_port
        self.ready_path = ready_path
        self.env = {**os.environ, **env} if env is not None else None
        self._process: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 30.0) -> None:
        self._process = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, env=self.env)
        url = f"http://{LOCALHOST}:{self.admin_port}{self.ready_path}"
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self._process.returncode} while starting"
                    )
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(url) as resp:
                        if resp.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} not ready after {timeout:g}s")
                await asyncio.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        terminate(process, timeout)
