"""Application probes the injector moved onto the agent's status port.

With iptables capturing inbound traffic and STRICT mTLS, the kubelet's plain probes can no longer
reach the app directly; the injector rewrites them to ``/app-health/<container>/<kind>`` on the
agent, and hands the originals over as JSON (``MESHGUARD_APP_PROBERS``). The agent runs them from
inside the pod, where loopback traffic is not captured.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import aiohttp


@dataclasses.dataclass(frozen=True, slots=True)
class AppProbe:
    kind: str  # "http" or "tcp"
    port: int
    path: str = "/"
    timeout: float = 1.0


def parse_probers(text: str) -> dict[str, AppProbe]:
    """``{"/app-health/web/readyz": {"httpGet": {...}, "timeoutSeconds": 1}, ...}``."""
    probes: dict[str, AppProbe] = {}
    for path, spec in (json.loads(text) if text.strip() else {}).items():
        timeout = float(spec.get("timeoutSeconds") or 1)
        if "httpGet" in spec:
            get = spec["httpGet"]
            probes[path] = AppProbe("http", int(get["port"]), get.get("path") or "/", timeout)
        elif "tcpSocket" in spec:
            probes[path] = AppProbe("tcp", int(spec["tcpSocket"]["port"]), timeout=timeout)
        elif "grpc" in spec:
            # A TCP connect is the closest check without a gRPC health client in the agent.
            probes[path] = AppProbe("tcp", int(spec["grpc"]["port"]), timeout=timeout)
    return probes


async def run_probe(probe: AppProbe) -> bool:
    try:
        if probe.kind == "tcp":
            _, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", probe.port), probe.timeout
            )
            writer.close()
            return True
        timeout = aiohttp.ClientTimeout(total=probe.timeout)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"http://127.0.0.1:{probe.port}{probe.path}") as response,
        ):
            return 200 <= response.status < 400
    except (OSError, TimeoutError, aiohttp.ClientError):
        return False


def describe(probes: dict[str, AppProbe]) -> dict[str, Any]:
    return {path: dataclasses.asdict(p) for path, p in probes.items()}
