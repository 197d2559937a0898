"""Root bundle publishing against a small fake API server: create, leave alone, repair."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from meshguard.webhook.ca.rootpublisher import CONFIGMAP, DATA_KEY, RootCertPublisher
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
