"""The `helm test` pod's script, run for real against stand-ins for the cluster.

Admin endpoints are small aiohttp apps; the API server is an HTTPS app that authenticates the
token and answers a dry-run create the way kube-apiserver does when a validating webhook runs
meshguard's validators: 400 "admission webhook ... denied the request" on errors, 201 otherwise.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from meshguard.common.resources import from_dict
from meshguard.common.tls import TlsFiles
from meshguard.registry import default_registry
from tests.chart.helm import CHART

SCRIPT = CHART / "files" / "helm-test.py"
WEBHOOK = "validation.meshguard.io"
TOKEN = "test-token"

Verdict = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


def _meshguard_webhook(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    errors = [str(f) for f in default_registry().validate(from_dict(body)) if f.is_error]
    if not errors:
        return 201, body
    message = f'admission webhook "{WEBHOOK}" denied the request: {"; ".join(errors)}'
    return 400, {"kind": "Status", "status": "Failure", "message": message, "code": 400}


def _forbidden(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    message = 'virtualservices.networking.istio.io is forbidden: User "x" cannot create'
    return 403, {"kind": "Status", "status": "Failure", "message": message, "code": 403}


def _accepting(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 201, body


class Cluster:
    """Stand-ins started on free localhost ports; stopped at teardown."""

    def __init__(self, tls: TlsFiles, sa_dir: Path) -> None:
        self.tls = tls
        self.sa_dir = sa_dir
        self.runners: list[web.AppRunner] = []
        self.verdict: Verdict = _meshguard_webhook
        self.ready = True
        self.requests: list[web.Request] = []

    async def _serve(self, app: web.Application, context: ssl.SSLContext | None = None) -> str:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"{'https' if context else 'http'}://127.0.0.1:{port}"

    async def admin(self) -> str:
        async def healthz(_: web.Request) -> web.Response:
            return web.Response(text="ok")

        async def readyz(_: web.Request) -> web.Response:
            return web.Response(
                text="ready" if self.ready else "loading", status=200 if self.ready else 503
            )

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", readyz)
        return await self._serve(app)

    async def api(self) -> str:
        async def create(request: web.Request) -> web.Response:
            self.requests.append(request)
            if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                return web.json_response({"message": "Unauthorized"}, status=401)
            if request.query.get("dryRun") != "All":
                return web.json_response(
                    {"message": "the test must not create objects"}, status=500
                )
            status, body = self.verdict(await request.json())
            return web.json_response(body, status=status)

        app = web.Application()
        app.router.add_post(
            "/apis/networking.istio.io/v1/namespaces/{namespace}/virtualservices", create
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        assert self.tls.cert and self.tls.key
        context.load_cert_chain(self.tls.cert, self.tls.key)
        return await self._serve(app, context)

    async def run_script(self, env: dict[str, str]) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            env={"PATH": "/usr/bin:/bin", "MESHGUARD_TEST_SA_DIR": str(self.sa_dir), **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode is not None
        return proc.returncode, out.decode()


@pytest.fixture
async def cluster(server_tls: TlsFiles, tmp_path: Path) -> AsyncIterator[Cluster]:
    sa_dir = tmp_path / "serviceaccount"
    sa_dir.mkdir()
    (sa_dir / "token").write_text(TOKEN + "\n")
    assert server_tls.ca is not None
    shutil.copy(server_tls.ca, sa_dir / "ca.crt")
    stand_ins = Cluster(server_tls, sa_dir)
    try:
        yield stand_ins
    finally:
        for runner in stand_ins.runners:
            await runner.cleanup()


async def _env(cluster: Cluster) -> dict[str, str]:
    admins = [await cluster.admin(), await cluster.admin()]
    api = await cluster.api()
    return {
        "MESHGUARD_TEST_ADMIN_URLS": ",".join(admins),
        "MESHGUARD_TEST_WEBHOOK": WEBHOOK,
        "MESHGUARD_TEST_NAMESPACE": "default",
        "MESHGUARD_TEST_API": api.replace("127.0.0.1", "localhost"),
    }


async def test_passes_when_healthy_and_the_webhook_denies(cluster: Cluster) -> None:
    code, out = await cluster.run_script(await _env(cluster))
    assert code == 0, out
    assert out.count("healthy and ready") == 2
    assert f'admission webhook "{WEBHOOK}" denied the request' in out
    assert "spec.http[0].route[0].destination.host" in out
    assert len(cluster.requests) == 1


async def test_fails_when_a_service_is_not_ready(cluster: Cluster) -> None:
    cluster.ready = False
    code, out = await cluster.run_script(await _env(cluster))
    assert code == 1
    assert "/readyz: HTTP 503, expected 200" in out


async def test_fails_when_the_bad_object_is_accepted(cluster: Cluster) -> None:
    cluster.verdict = _accepting
    code, out = await cluster.run_script(await _env(cluster))
    assert code == 1
    assert "dry-run create of a bad VirtualService was accepted (HTTP 201)" in out


async def test_fails_when_something_else_refuses(cluster: Cluster) -> None:
    cluster.verdict = _forbidden
    code, out = await cluster.run_script(await _env(cluster))
    assert code == 1
    assert f"not by {WEBHOOK}: HTTP 403" in out


async def test_fails_when_a_service_is_unreachable(cluster: Cluster) -> None:
    env = await _env(cluster)
    env["MESHGUARD_TEST_ADMIN_URLS"] = "http://127.0.0.1:9"
    code, out = await cluster.run_script(env)
    assert code == 1
    assert "http://127.0.0.1:9/healthz: unreachable" in out


def test_the_chart_wires_the_script_and_its_settings() -> None:
    """The pod runs this very file with the env names the script reads."""
    text = (CHART / "templates" / "tests" / "helm-test.yaml").read_text()
    script = SCRIPT.read_text()
    for name in ("MESHGUARD_TEST_ADMIN_URLS", "MESHGUARD_TEST_WEBHOOK", "MESHGUARD_TEST_NAMESPACE"):
        assert name in text and name in script
    assert '.Files.Get "files/helm-test.py"' in text
    assert 'command: ["python", "/scripts/helm-test.py"]' in text
