"""Run the sidecar's Envoy as the agent's child, once the first certificate is on disk.

The injector renders the Envoy bootstrap into the pod spec (``MESHGUARD_ENVOY_BOOTSTRAP``); the
agent writes it next to the SDS files and starts Envoy, so Envoy never starts without its
certificate. If Envoy dies the agent exits too and the kubelet restarts the container.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

log = logging.getLogger(__name__)


async def run_envoy(binary: str, bootstrap_json: str, directory: Path, concurrency: int) -> int:
    """Start Envoy with the bootstrap and wait for it to exit; returns its exit code."""
    bootstrap = directory / "envoy-bootstrap.json"
    bootstrap.write_text(bootstrap_json)
    process = await asyncio.create_subprocess_exec(
        binary,
        "--config-path",
        str(bootstrap),
        "--concurrency",
        str(concurrency),
        "--disable-hot-restart",
        "--log-level",
        "warning",
    )
    log.info("envoy started", extra={"pid": process.pid})
    try:
        return await process.wait()
    finally:
        if process.returncode is None:
            process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 5)
            if process.returncode is None:
                process.kill()
                await process.wait()
