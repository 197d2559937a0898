"""Publish the mesh root bundle as ConfigMap ``meshguard-ca-root-cert`` in injected namespaces.

Sidecars must verify the CA before they send it a token, so the root has to reach the pod by a
channel that is already trusted: the Kubernetes API. As istiod does with
``istio-ca-root-cert``, the CA (which holds the root) writes the ConfigMap into every namespace
where pods can be injected (by default the injector's own namespace selection, see
:func:`meshguard.webhook.injection.decision.namespace_selectors`; the chart passes the
selector its webhook uses); the injected pod mounts it. The loop resyncs on an interval, which also
repairs edited or deleted copies and picks up newly labelled namespaces and a rotated root.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from meshguard.webhook.ca.tokenreview import IN_CLUSTER_TOKEN
from meshguard.webhook.injection.decision import SYSTEM_NAMESPACES, namespace_selectors

log = logging.getLogger(__name__)
CONFIGMAP = "meshguard-ca-root-cert"
DATA_KEY = "root-cert.pem"
INJECTION_SELECTORS = namespace_selectors()


class RootCertPublisher:
    def __init__(
        self,
        api_url: str,
        root_pem: str,
        *,
        credential_file: Path = IN_CLUSTER_TOKEN,
        ssl_context: ssl.SSLContext | None = None,
        selectors: Sequence[str] = INJECTION_SELECTORS,
        interval: float = 30.0,
    ) -> None:
        self._api = api_url.rstrip("/")
        self.root_pem = root_pem
        self._credential_file = credential_file
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._selectors = tuple(selectors)
        self._interval = interval

    async def sync_once(self) -> list[str]:
        """Bring every selected namespace's ConfigMap up to date; returns the ones written."""
        headers = {"Authorization": f"Bearer {self._credential_file.read_text().strip()}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            written = []
            for name in await self._namespaces(http):
                try:
                    if await self._upsert(http, name):
                        written.append(name)
                except aiohttp.ClientResponseError as exc:
                    # One namespace (a conflict, a policy refusing the write) must not keep
                    # the root from the others; the next pass retries it.
                    log.warning(
                        "root bundle not published",
                        extra={"namespace": name, "status": exc.status, "error": exc.message},
                    )
            return written

    async def _namespaces(self, http: aiohttp.ClientSession) -> list[str]:
        """Names matching any selector (a label selector cannot OR), system ones left out."""
        names: dict[str, None] = {}
        for selector in self._selectors:
            found = await self._json(
                http, "GET", "/api/v1/namespaces", params={"labelSelector": selector}
            )
            items = found.get("items") or []
            names.update(dict.fromkeys(item["metadata"]["name"] for item in items))
        return [name for name in names if name not in SYSTEM_NAMESPACES]

    async def run(self) -> None:
        while True:
            try:
                written = await self.sync_once()
                if written:
                    log.info("root bundle published", extra={"namespaces": written})
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                log.warning("root bundle publishing failed", extra={"error": repr(exc)})
            await asyncio.sleep(self._interval)

    async def _upsert(self, http: aiohttp.ClientSession, namespace: str) -> bool:
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": CONFIGMAP,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "meshguard-ca"},
            },
            "data": {DATA_KEY: self.root_pem},
        }
        current = await self._json(http, "GET", f"{path}/{CONFIGMAP}", missing_ok=True)
        if not current:
            await self._json(http, "POST", path, json=body)
            return True
        if (current.get("data") or {}).get(DATA_KEY) == self.root_pem:
            return False
        # Optimistic concurrency: a conflicting writer makes this PUT fail; the next sync retries.
        body["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
        await self._json(http, "PUT", f"{path}/{CONFIGMAP}", json=body)
        return True

    async def _json(
        self,
        http: aiohttp.ClientSession,
        method: str,
        path: str,
        *,
        missing_ok: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        async with http.request(method, self._api + path, ssl=self._ssl, **kwargs) as response:
            if response.status == 404 and missing_ok:
                return {}
            if response.status >= 300:
                text = await response.text()
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status, message=text[:200]
                )
            result: dict[str, Any] = await response.json()
            return result
