"""A small stand-in for the Kubernetes API server: labelled namespaces and ConfigMaps, enough
for the mesh CA's root-bundle publisher (and the chart's RBAC test, which checks the role
the chart renders lets it do its job). There is no API server on these machines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web


class FakeApiServer:
    """Namespaces with labels and ConfigMaps, enough of the API for the publisher."""

    def __init__(self) -> None:
        self.namespaces = {"shop": {"meshguard-injection": "enabled"}, "kube-system": {}}
        self.configmaps: dict[tuple[str, str], dict[str, Any]] = {}
        self.writes: list[str] = []
        self.auth: set[str] = set()
        self.version = 0
        self.refuse_writes: set[str] = set()  # namespaces whose writes get 403
        self.selectors: list[str] = []  # every labelSelector listed, in order

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/namespaces", self.list_namespaces)
        app.router.add_post("/api/v1/namespaces/{ns}/configmaps", self.create)
        app.router.add_get("/api/v1/namespaces/{ns}/configmaps/{name}", self.get)
        app.router.add_put("/api/v1/namespaces/{ns}/configmaps/{name}", self.replace)
        return app

    async def list_namespaces(self, request: web.Request) -> web.Response:
        self.auth.add(request.headers.get("Authorization", ""))
        selector = request.query["labelSelector"]
        self.selectors.append(selector)
        items = [
            {"metadata": {"name": name, "labels": labels}}
            for name, labels in self.namespaces.items()
            if selects(selector, labels)
        ]
        return web.json_response({"items": items})

    async def get(self, request: web.Request) -> web.Response:
        found = self.configmaps.get((request.match_info["ns"], request.match_info["name"]))
        return web.json_response(found) if found else web.json_response({}, status=404)

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        if request.match_info["ns"] in self.refuse_writes:
            return web.json_response({"reason": "Forbidden"}, status=403)
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


def selects(selector: str, labels: dict[str, str]) -> bool:
    """The API server's equality-based selectors: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``.

    Every comma-separated requirement must hold; ``k!=v`` also matches when ``k`` is absent.
    """
    for requirement in selector.split(","):
        if "!=" in requirement:
            key, value = requirement.split("!=")
            ok = labels.get(key) != value
        elif "=" in requirement:
            key, value = requirement.replace("==", "=").split("=")
            ok = labels.get(key) == value
        elif requirement.startswith("!"):
            ok = requirement[1:] not in labels
        else:
            ok = requirement in labels
        if not ok:
            return False
    return True


async def serve(fake: FakeApiServer) -> AsyncIterator[str]:
    """Run ``fake`` on a free localhost port for the duration of a fixture; yields its URL."""
    runner = web.AppRunner(fake.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
