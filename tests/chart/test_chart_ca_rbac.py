"""The mesh CA's rendered ClusterRole lets its root-bundle publisher do its job, and no more.

The publisher runs against the fake API server of its own unit tests, behind a middleware that
authorizes every call with the chart's rules the way the API server's RBAC does (verb, resource,
resourceNames); a call the role does not allow gets 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from meshguard.webhook.ca.rootpublisher import CONFIGMAP, RootCertPublisher
from tests.chart.helm import find
from tests.harness.fakekube import FakeApiServer
from tests.webhook.ca.test_ca_rootpublisher import ROOT

Rendered = dict[str, list[dict[str, Any]]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def _attributes(request: web.Request) -> tuple[str, str, str]:
    """(verb, resource, name) of a core/v1 request, as the API server's authorizer sees it."""
    parts = request.path.removeprefix("/api/v1/").split("/")
    if parts[0] == "namespaces" and len(parts) >= 3:
        parts = parts[2:]
    resource, name = parts[0], (parts[1] if len(parts) > 1 else "")
    verb = _VERBS.get(request.method) or ("get" if name else "list")
    return verb, resource, name


def _allowed(rules: list[dict[str, Any]], verb: str, resource: str, name: str) -> bool:
    return any(
        "" in r["apiGroups"]
        and resource in r["resources"]
        and verb in r["verbs"]
        and (not r.get("resourceNames") or name in r["resourceNames"])
        for r in rules
    )


async def test_ca_role_covers_root_publishing_exactly(rendered: Rendered, tmp_path: Path) -> None:
    (role,) = [r for r in find(rendered["defaults"], "ClusterRole", "-ca-meshguard-system")]
    core_rules = [r for r in role["rules"] if "" in r["apiGroups"]]
    used: list[tuple[str, str, str]] = []

    @web.middleware
    async def rbac(request: web.Request, handler: Handler) -> web.StreamResponse:
        attributes = _attributes(request)
        used.append(attributes)
        if not _allowed(core_rules, *attributes):
            return web.json_response({"reason": "Forbidden"}, status=403)
        return await handler(request)

    fake = FakeApiServer()
    app = fake.app()
    app.middlewares.append(rbac)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        token = tmp_path / "token"
        token.write_text("t")
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        publisher = RootCertPublisher(url, ROOT, credential_file=token)
        assert await publisher.sync_once() == ["shop"]
        publisher.root_pem = ROOT.replace("root", "rotated")
        assert await publisher.sync_once() == ["shop"]
    finally:
        await runner.cleanup()
    assert fake.writes == ["create shop", "replace shop"]
    # Every rule was needed: the publisher used each verb the role grants on core resources.
    granted = {(v, res) for r in core_rules for res in r["resources"] for v in r["verbs"]}
    assert granted == {(verb, resource) for verb, resource, _ in used}
    assert {name for _, resource, name in used if resource == "configmaps"} <= {"", CONFIGMAP}
    # A ConfigMap of another name is out of reach.
    assert not _allowed(core_rules, "get", "configmaps", "kube-root-ca.crt")
