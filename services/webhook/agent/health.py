"""The agent's status port: readiness of the sidecar and the app probes moved onto it.

``/healthz/ready`` is 200 once a valid certificate is published and, when the agent runs Envoy,
Envoy's admin ``/ready`` says LIVE; the kubelet's readiness probe on the sidecar points here.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

from meshguard.webhook.agent.agent import Agent
from meshguard.webhook.agent.probes import AppProbe, run_probe


def health_app(
    agent: Agent, *, envoy_admin_port: int | None = None, probes: dict[str, AppProbe] | None = None
) -> web.Application:
    app_probes = probes or {}

    async def live(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def ready(request: web.Request) -> web.Response:
        if not agent.ready():
            reason = agent.last_error or "no certificate yet"
            return web.Response(status=503, text=f"not ready: {reason}\n")
        if envoy_admin_port is not None and not await _envoy_live(envoy_admin_port):
            return web.Response(status=503, text="not ready: Envoy is not LIVE\n")
        return web.Response(text="ready\n")

    async def app_health(request: web.Request) -> web.Response:
        probe = app_probes.get(request.path)
        if probe is None:
            return web.Response(status=404, text="no such probe\n")
        if await run_probe(probe):
            return web.Response(text="ok\n")
        return web.Response(status=503, text="app probe failed\n")

    app = web.Application()
    app.router.add_get("/healthz/live", live)
    app.router.add_get("/healthz/ready", ready)
    app.router.add_get("/app-health/{container}/{kind}", app_health)
    return app


async def _envoy_live(admin_port: int) -> bool:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session,
            session.get(f"http://127.0.0.1:{admin_port}/ready") as response,
        ):
            return response.status == 200 and (await response.text()).strip() == "LIVE"
    except (OSError, TimeoutError, aiohttp.ClientError):
        return False
