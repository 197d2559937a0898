"""The agent against a real CA: first certificate, renewal at half-life, retries, health."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from meshguard.webhook.agent.agent import Agent, AgentConfig
from meshguard.webhook.agent.health import health_app
from meshguard.webhook.agent.probes import parse_probers
from tests.harness.meshca import RunningCa, start_ca
from tests.harness.satokens import ServiceAccountIssuer

TOKENS = ServiceAccountIssuer.create()


@pytest.fixture
async def ca(tmp_path: Path) -> AsyncIterator[RunningCa]:
    running = await start_ca(tmp_path / "ca", TOKENS, default_ttl=datetime.timedelta(seconds=4))
    yield running
    await running.stop()


def _config(ca: RunningCa, tmp_path: Path, token: str, ttl: int = 0) -> AgentConfig:
    token_file = tmp_path / "token"
    token_file.write_text(token)
    return AgentConfig(ca.endpoint(), token_file, tmp_path / "sds", ttl_seconds=ttl)


@contextlib.asynccontextmanager
async def _running(agent: Agent) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(agent.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _leaf(directory: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates((directory / "cert-chain.pem").read_bytes())[0]


async def test_first_certificate_and_renewal(ca: RunningCa, tmp_path: Path) -> None:
    agent = Agent(_config(ca, tmp_path, TOKENS.token("default", "frontend")))
    async with _running(agent):
        await asyncio.wait_for(agent.first_svid.wait(), 10)
        sds_dir = tmp_path / "sds"
        first = _leaf(sds_dir)
        san = first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
            "spiffe://cluster.local/ns/default/sa/frontend"
        ]
        key = serialization.load_pem_private_key((sds_dir / "key.pem").read_bytes(), None)
        assert key.public_key() == first.public_key()
        assert (sds_dir / "root-cert.pem").read_text() == ca.issuer.root_bundle
        assert agent.ready()
        # 4 s certificates (2 min back-dated): renewal lands well before expiry.
        async with asyncio.timeout(20):
            while agent.renewals == 0:
                await asyncio.sleep(0.1)
        second = _leaf(sds_dir)
        assert second.serial_number != first.serial_number
        assert second.public_key() != first.public_key()  # a new key per certificate


async def test_refused_token_is_retried_and_reported(ca: RunningCa, tmp_path: Path) -> None:
    config = _config(ca, tmp_path, TOKENS.token("default", "frontend", audience="other"))
    agent = Agent(config)
    app = health_app(agent)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with _running(agent), aiohttp.ClientSession() as http:
            async with asyncio.timeout(10):
                while agent.last_error is None:
                    await asyncio.sleep(0.05)
            assert "UNAUTHENTICATED" in agent.last_error
            async with http.get(f"http://127.0.0.1:{port}/healthz/ready") as response:
                assert response.status == 503
                assert "meshguard-ca" in await response.text()
            # The kubelet refreshes the projected token; the next retry succeeds.
            config.token_file.write_text(TOKENS.token("default", "frontend"))
            await asyncio.wait_for(agent.first_svid.wait(), 15)
            async with http.get(f"http://127.0.0.1:{port}/healthz/ready") as response:
                assert response.status == 200
    finally:
        await runner.cleanup()


async def test_app_probes_are_run_from_the_agent(ca: RunningCa, tmp_path: Path) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="fine")

    app_runner = web.AppRunner(web.Application())
    app_runner.app.router.add_get("/ready", ok)
    await app_runner.setup()
    await web.TCPSite(app_runner, "127.0.0.1", 0).start()
    app_port = app_runner.addresses[0][1]
    probes = parse_probers(
        f'{{"/app-health/web/readyz": {{"httpGet": {{"path": "/ready", "port": {app_port}}}}},'
        f' "/app-health/web/livez": {{"tcpSocket": {{"port": {app_port}}}}},'
        ' "/app-health/web/startupz": {"tcpSocket": {"port": 1}}}'
    )
    runner = web.AppRunner(health_app(Agent(_config(ca, tmp_path, "t")), probes=probes))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            for path, status in [("readyz", 200), ("livez", 200), ("startupz", 503), ("x", 404)]:
                async with http.get(f"http://127.0.0.1:{port}/app-health/web/{path}") as r:
                    assert r.status == status, path
    finally:
        await runner.cleanup()
        await app_runner.cleanup()
