"""Root bundle publishing against a small fake API server: create, leave alone, repair."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from meshguard.webhook.ca.rootpublisher import CONFIGMAP, DATA_KEY, RootCertPublisher
from meshguard.webhook.injection.decision import (
    INJECT_KEY,
    SYSTEM_NAMESPACES,
    namespace_selectors,
    webhook_selects,
)
from tests.harness.fakekube import FakeApiServer, serve

ROOT = "-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n"


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeApiServer, str]]:
    fake = FakeApiServer()
    async for url in serve(fake):
        yield fake, url


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


async def test_one_failing_namespace_does_not_stop_the_others(
    api: tuple[FakeApiServer, str], tmp_path: Path
) -> None:
    fake, url = api
    token = tmp_path / "token"
    token.write_text("t")
    injected = {"meshguard-injection": "enabled"}
    # The refused namespace comes first, so a publisher that stops at it skips the rest.
    fake.namespaces = {"aaa-locked": injected, **fake.namespaces, "payments": injected}
    fake.refuse_writes.add("aaa-locked")
    publisher = RootCertPublisher(url, ROOT, credential_file=token)
    assert sorted(await publisher.sync_once()) == ["payments", "shop"]
    fake.refuse_writes.clear()
    assert await publisher.sync_once() == ["aaa-locked"], "the next pass catches up"


async def test_publishes_wherever_the_injector_can_inject(
    api: tuple[FakeApiServer, str], tmp_path: Path
) -> None:
    fake, url = api
    token = tmp_path / "token"
    token.write_text("t")
    fake.namespaces = {
        "shop": {"meshguard-injection": "enabled"},
        "canary": {"meshguard.io/rev": "default"},  # the revision label, no injection label
        "other-rev": {"meshguard.io/rev": "canary"},
        "plain": {},  # pods may opt in one by one (label sidecar.meshguard.io/inject=true)
        "off": {"meshguard-injection": "disabled"},
        "istio": {"istio-injection": "enabled"},
        "istio-rev": {"istio.io/rev": "stable", "meshguard-injection": "enabled"},
        "kube-system": {},
    }
    publisher = RootCertPublisher(url, ROOT, credential_file=token)
    published = set(await publisher.sync_once())
    # The same verdict as the injector's own selection, for a pod that opts in.
    can_inject = {
        name
        for name, labels in fake.namespaces.items()
        if webhook_selects(labels, {INJECT_KEY: "true"}) and name not in SYSTEM_NAMESPACES
    }
    assert published == can_inject == {"shop", "canary", "plain"}
    assert len(fake.selectors) == len(namespace_selectors())


async def test_configured_selectors_are_ored(
    api: tuple[FakeApiServer, str], tmp_path: Path
) -> None:
    fake, url = api
    token = tmp_path / "token"
    token.write_text("t")
    fake.namespaces = {"a": {"mesh": "enabled"}, "b": {"team": "x"}, "c": {"team": "y"}}
    publisher = RootCertPublisher(
        url, ROOT, credential_file=token, selectors=["mesh=enabled", "team=x"]
    )
    assert sorted(await publisher.sync_once()) == ["a", "b"]
    assert fake.selectors == ["mesh=enabled", "team=x"]
