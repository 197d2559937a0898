"""The validating webhook through its real HTTPS endpoint, spoken to like the API server does:
AdmissionReview v1 JSON over TLS verified against the CA bundle generated for the test."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from meshguard.common.tls import TlsFiles
from meshguard.registry import default_registry
from meshguard.webhook.server import build_runtime
from meshguard.webhook.settings import WebhookSettings
from tests.harness.tlsgen import CertificateAuthority, write_atomic
from tests.webhook.support import CONFORMANCE, load_case

CASES = sorted(p for p in CONFORMANCE.glob("*/*.yaml") if p.parent.name != "pods")
MAX_BODY = 64 * 1024
JSON = "application/json"


class Webhook:
    def __init__(self, port: int, admin_port: int, ca: Path) -> None:
        self.url = f"https://localhost:{port}/validate"
        self.admin = f"http://127.0.0.1:{admin_port}"
        self.ca = ca

    def client_ssl(self, ca: Path | None = None) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(ca or self.ca))


def review_body(obj: Any, *, uid: str = "uid-1", operation: str = "CREATE", **extra: Any) -> bytes:
    api_version = obj.get("apiVersion", "") if isinstance(obj, dict) else ""
    group, _, version = api_version.rpartition("/")
    kind = obj.get("kind", "") if isinstance(obj, dict) else ""
    request = {
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": kind},
        "operation": operation,
        "namespace": "shop",
        "object": obj,
        **extra,
    }
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    return json.dumps(review).encode()


async def post(
    session: aiohttp.ClientSession,
    hook: Webhook,
    body: bytes,
    *,
    content_type: str = "application/json",
) -> tuple[int, Any]:
    async with session.post(
        hook.url, data=body, headers={"Content-Type": content_type}, ssl=hook.client_ssl()
    ) as response:
        return response.status, await response.json(content_type=None)


@pytest.fixture
async def webhook(server_tls: TlsFiles) -> AsyncIterator[Webhook]:
    assert server_tls.cert and server_tls.key and server_tls.ca
    settings = WebhookSettings(
        tls_cert=server_tls.cert,
        tls_key=server_tls.key,
        port=0,
        admin_port=0,
        host="127.0.0.1",
        max_body_bytes=MAX_BODY,
        tls_poll_interval=0.05,
        log_level="warning",
    )
    runtime = build_runtime(settings, default_registry())
    await runtime.start()
    try:
        yield Webhook(runtime.http_ports[0], runtime.admin_port, server_tls.ca)
    finally:
        await runtime.stop()


async def test_conformance_corpus_over_https(webhook: Webhook) -> None:
    assert CASES, "conformance corpus not available"
    async with aiohttp.ClientSession() as session:
        for index, case in enumerate(CASES):
            header, resource = load_case(case)
            uid = f"case-{index}"
            status, answer = await post(session, webhook, review_body(dict(resource.raw), uid=uid))
            assert status == 200, case.name
            response = answer["response"]
            assert response["uid"] == uid and answer["kind"] == "AdmissionReview"
            expect = header["expect"][0]
            if expect == "allow":
                assert response == {"uid": uid, "allowed": True}, case.name
            elif expect.startswith("allow-with-warning"):
                assert response["allowed"] is True and response["warnings"], case.name
            else:
                assert response["allowed"] is False, case.name
                message = response["status"]["message"]
                assert message.startswith("configuration is invalid: "), case.name
                assert "spec" in message or "metadata" in message, case.name


async def test_every_error_is_in_the_message(webhook: Webhook) -> None:
    vs = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "r"},
        "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "r"}}],
                                                 "timeout": "0s", "retries": {"attempts": -1}}]},
    }  # fmt: skip
    async with aiohttp.ClientSession() as session:
        status, answer = await post(session, webhook, review_body(vs, dryRun=True))
    message = answer["response"]["status"]["message"]
    assert status == 200 and "2 errors occurred" in message
    assert "spec.http[0].timeout: duration must be at least 1ms, got 0s" in message
    assert "spec.http[0].retries.attempts" in message


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{oops", "application/json", 400),
        (b'{"apiVersion": "admission.k8s.io/v2", "kind": "AdmissionReview"}', JSON, 400),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', JSON, 400),
        (b"", "application/json", 400),
        (b"{}", "text/plain", 415),
        (b"x" * (MAX_BODY + 1), "application/json", 413),
    ],
)  # fmt: skip
async def test_refused_requests(
    webhook: Webhook, body: bytes, content_type: str, status: int
) -> None:
    async with aiohttp.ClientSession() as session:
        got, answer = await post(session, webhook, body, content_type=content_type)
        assert got == status and answer["error"]
        # the server is still answering real reviews afterwards
        ok, _ = await post(session, webhook, review_body({"kind": "Pod", "apiVersion": "v1"}))
        assert ok == 200


async def test_delete_and_unknown_kinds_are_allowed(webhook: Webhook) -> None:
    async with aiohttp.ClientSession() as session:
        _, deleted = await post(session, webhook, review_body(None, operation="DELETE"))
        _, pod = await post(session, webhook, review_body({"apiVersion": "v1", "kind": "Pod"}))
    assert deleted["response"]["allowed"] is True and pod["response"]["allowed"] is True


async def test_metrics_and_health(webhook: Webhook) -> None:
    bad = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "g"},
           "spec": {}}  # fmt: skip
    async with aiohttp.ClientSession() as session:
        await post(session, webhook, review_body(bad))
        for path in ("/healthz", "/readyz"):
            async with session.get(webhook.admin + path) as response:
                assert response.status == 200
        async with session.get(webhook.admin + "/metrics") as response:
            text = await response.text()
    assert (
        'meshguard_webhook_admissions_total{allowed="false",kind="Gateway",operation="CREATE"}'
        in text
    )
    assert "meshguard_webhook_admission_duration_seconds_bucket" in text


async def test_certificate_rotation_without_restart(webhook: Webhook, server_tls: TlsFiles) -> None:
    assert server_tls.cert and server_tls.key
    new_ca = CertificateAuthority.create("rotated CA")
    new_bundle = new_ca.write(server_tls.cert.parent, "new-ca")
    issued = new_ca.issue_server()
    write_atomic(server_tls.key, issued.key_pem)
    write_atomic(server_tls.cert, issued.cert_pem)
    body = review_body({"apiVersion": "v1", "kind": "Pod"})
    deadline = time.monotonic() + 5
    while True:
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    webhook.url,
                    data=body,
                    headers={"Content-Type": "application/json"},
                    ssl=webhook.client_ssl(new_bundle),
                ) as response,
            ):
                assert response.status == 200
                break
        except aiohttp.ClientConnectorCertificateError:
            assert time.monotonic() < deadline, "the new certificate was never served"
            await asyncio.sleep(0.05)
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        async with aiohttp.ClientSession() as session:
            await post(session, webhook, body)  # trusts only the old CA


def test_serve_command_runs_over_tls(server_tls: TlsFiles, free_port: Callable[[], int]) -> None:
    assert server_tls.cert and server_tls.key and server_tls.ca
    port, admin = free_port(), free_port()
    command = [sys.executable, "-m", "meshguard.cli", "webhook", "serve",
               "--tls-cert", str(server_tls.cert), "--tls-key", str(server_tls.key),
               "--port", str(port), "--admin-port", str(admin), "--host", "127.0.0.1"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        hook = Webhook(port, admin, server_tls.ca)
        answer = asyncio.run(_first_answer(hook))
        assert answer["response"]["allowed"] is False
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0


async def _first_answer(hook: Webhook) -> Any:
    body = review_body({"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
                        "metadata": {"name": "s"}, "spec": {}})  # fmt: skip
    deadline = time.monotonic() + 15
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                _, answer = await post(session, hook, body)
                return answer
            except aiohttp.ClientConnectorError:
                assert time.monotonic() < deadline, "meshguard webhook serve did not start"
                await asyncio.sleep(0.1)
