"""On upgrade the chart reuses its Secrets (Helm ``lookup``), so the caBundle and the mesh CA stay.

Helm renders with ``--dry-run=server`` against a fake API server that holds the Secrets a first
install created.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.fakeapi import FakeApiServer
from tests.chart.helm import CHART, NAMESPACE, RELEASE, Helm, find, one


@pytest.fixture
async def api() -> AsyncIterator[FakeApiServer]:
    server = FakeApiServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _render(helm: Helm, api: FakeApiServer, tmp_path: Path) -> list[dict[str, Any]]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(api.kubeconfig(NAMESPACE))
    proc = await asyncio.create_subprocess_exec(
        str(helm.binary),
        "template",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--dry-run=server",
        "--disable-openapi-validation",
        "--kubeconfig",
        str(kubeconfig),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()
    return [d for d in yaml.safe_load_all(out.decode()) if d]


def _ca_bundles(manifests: list[dict[str, Any]]) -> set[str]:
    return {
        hook["clientConfig"]["caBundle"]
        for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
        for hook in one(manifests, kind)["webhooks"]
    }


def _store(api: FakeApiServer, manifests: list[dict[str, Any]]) -> None:
    """The Secrets as `helm install` leaves them: with the release's ownership annotations."""
    for secret in find(manifests, "Secret"):
        annotations = secret["metadata"].setdefault("annotations", {})
        annotations["meta.helm.sh/release-name"] = RELEASE
        annotations["meta.helm.sh/release-namespace"] = NAMESPACE
        api.secrets[(NAMESPACE, secret["metadata"]["name"])] = secret


async def test_upgrade_keeps_the_webhook_certificate_and_the_mesh_ca(
    helm: Helm, api: FakeApiServer, tmp_path: Path
) -> None:
    first = await _render(helm, api, tmp_path)
    _store(api, first)
    second = await _render(helm, api, tmp_path)
    assert _ca_bundles(second) == _ca_bundles(first)
    assert len(_ca_bundles(first)) == 1
    for suffix in ("-webhook-tls", "-mesh-ca"):
        assert one(second, "Secret", suffix)["data"] == one(first, "Secret", suffix)["data"]


async def test_without_existing_secrets_each_install_gets_its_own_ca(
    helm: Helm, api: FakeApiServer, tmp_path: Path
) -> None:
    first = await _render(helm, api, tmp_path)
    second = await _render(helm, api, tmp_path)
    assert _ca_bundles(first) != _ca_bundles(second)


async def test_an_incomplete_secret_is_replaced(
    helm: Helm, api: FakeApiServer, tmp_path: Path
) -> None:
    first = await _render(helm, api, tmp_path)
    _store(api, first)
    tls = api.secrets[(NAMESPACE, one(first, "Secret", "-webhook-tls")["metadata"]["name"])]
    del tls["data"]["tls.key"]
    second = await _render(helm, api, tmp_path)
    bundle = _ca_bundles(second)
    assert bundle != _ca_bundles(first)
    assert bundle == {one(second, "Secret", "-webhook-tls")["data"]["ca.crt"]}
    assert base64.b64decode(bundle.pop()).startswith(b"-----BEGIN CERTIFICATE-----")
