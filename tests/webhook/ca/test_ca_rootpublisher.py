"""Root bundle publishing against a small fake API server: create, leave alone, repair."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from meshguard.webhook.ca.rootpublisher import CONFIGMAP, DATA_KEY, RootCertPublisher

ROOT = "-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n"


class FakeApiServer:
    """Namespaces with labels and ConfigMaps, enough of the API for the publisher."""

    def __init__(self) -> None:
        self.namespaces = {"shop": {"meshguard-injection": "enabled"}, "kube-system": {}}
        self.configmaps: dict[tuple[str, str], dict[str, Any]] = {}
        self.writes: list[str] = []
        self.auth: set[str] = set()
        self.version = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/namespaces", self.list_namespaces)
        app.router.add_post("/api/v1/namespaces/{ns}/configmaps", self.create)
        app.router.add_get("/api/v1/namespaces/{ns}/configmaps/{name}", self.get)
        app.router.add_put("/api/v1/namespaces/{ns}/configmaps/{name}", self.replace)
        return app

    async def list_namespaces(self, request: web.Request) -> web.Response:
        self.auth.add(request.headers.get("Authorization", ""))
        key, _, value = request.query["labelSelector"].partition("=")
        items = [
            {"metadata": {"name": name, "labels": labels}}
            for name, labels in self.namespaces.items()
            if labels.get(key) == value
        ]
        return web.json_response({"items": items})

    async def get(self, request: web.Request) -> web.Response:
        found = self.configmaps.get((request.match_info["ns"], request.match_info["name"]))
        return web.json_response(found) if found else web.json_response({}, status=404)

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        return self._store(request.match_info["ns"], body, "create", 201)

    async def replace(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = (request.match_info["ns"], request.match_info["name"])
        if (
            body["metadata"].get("resourceVersion")
            != self.configmaps[key]["metadata"]["resourceVersion"]
        ):
            return web.json_response({"reason": "Conflict"}, status=409)
        return self._store(key[0], body, "replace", 200)

    def _store(self, ns: str, body: dict[str, Any], verb: str, status: int) -> web.Response:
        self.version += 1
        body["metadata"]["resourceVersion"] = str(self.version)
        self.configmaps[(ns, body["metadata"]["name"])] = body
        self.writes.append(f"{verb} {ns}")
        return web.json_response(body, status=status)


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeApiServer, str]]:
    fake = FakeApiServer()
    runner = web.AppRunner(fake.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield fake, f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_publishes_to_injected_namespaces_only(
    api: tuple[FakeApiServer, str], tmp_path: Path
) -> None:
    fake, url = api
    token = tmp_path / "token"
    token.write_text("ca-sa-token\n")
    publisher = RootCertPublisher(url, ROOT, credential_file=token)
    assert await publisher.sync_once() == ["shop"]
    assert fake.configmaps[("shop", CONFIGMAP)]["data"] == {DATA_KEY: ROOT}
    assert fake.auth == {"Bearer ca-sa-token"}
    # Up to date: nothing written.
    assert await publisher.sync_once() == []
    # A newly labelled namespace, an edited copy and a rotated root are all caught up.
    fake.namespaces["payments"] = {"meshguard-injection": "enabled"}
    fake.configmaps[("shop", CONFIGMAP)]["data"] = {DATA_KEY: "tampered"}
    assert sorted(await publisher.sync_once()) == ["payments", "shop"]
    publisher.root_pem = ROOT + ROOT
    assert sorted(await publisher.sync_once()) == ["payments", "shop"]
    assert fake.configmaps[("payments", CONFIGMAP)]["data"][DATA_KEY] == ROOT + ROOT
    assert fake.writes == [
        "create shop",
        "replace shop",
        "create payments",
        "replace shop",
        "replace payments",
    ]
    assert ("kube-system", CONFIGMAP) not in fake.configmaps


async def test_api_errors_surface(api: tuple[FakeApiServer, str], tmp_path: Path) -> None:
    _, url = api
    token = tmp_path / "token"
    token.write_text("t")
    publisher = RootCertPublisher(url + "/nowhere", ROOT, credential_file=token)
    with pytest.raises(aiohttp.ClientResponseError):
        await publisher.sync_once()
