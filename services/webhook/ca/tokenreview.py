"""Verify projected ServiceAccount tokens with the Kubernetes TokenReview API (production).

The API server is the authority on a token: it knows revoked service accounts and deleted pods,
which offline key checks cannot. The CA posts ``authentication.k8s.io/v1`` TokenReviews with
its own service-account credentials and the audience it expects.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiohttp

from meshguard.webhook.ca.tokens import (
    DEFAULT_AUDIENCE,
    ServiceAccountIdentity,
    TokenRejected,
    VerifierUnavailable,
    identity_from_username,
)

IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
IN_CLUSTER_CA = Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"


class TokenReviewVerifier:
    """A :class:`~meshguard.webhook.ca.tokens.TokenVerifier` asking the API server."""

    def __init__(
        self,
        api_url: str,
        *,
        credential_file: Path = IN_CLUSTER_TOKEN,
        ssl_context: ssl.SSLContext | None = None,
        audience: str = DEFAULT_AUDIENCE,
        timeout: float = 5.0,
    ) -> None:
        self._url = api_url.rstrip("/") + _PATH
        self._credential_file = credential_file
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._audience = audience
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def verify(self, token: str) -> ServiceAccountIdentity:
        review = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, "audiences": [self._audience]},
        }
        # The CA's own token is re-read per call: the kubelet rotates it in place.
        headers = {"Authorization": f"Bearer {self._credential_file.read_text().strip()}"}
        try:
            async with self._client().post(
                self._url, json=review, headers=headers, ssl=self._ssl
            ) as response:
                if response.status != 201 and response.status != 200:
                    raise VerifierUnavailable(f"TokenReview answered HTTP {response.status}")
                body: dict[str, Any] = await response.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise VerifierUnavailable(f"TokenReview request failed: {exc!r}") from exc
        return self._identity(body.get("status") or {})

    def _identity(self, status: dict[str, Any]) -> ServiceAccountIdentity:
        if not status.get("authenticated"):
            message = status.get("error") or "the token is not authenticated"
            raise TokenRejected("not-authenticated", f"TokenReview: {message}")
        if self._audience not in (status.get("audiences") or []):
            raise TokenRejected(
                "wrong-audience", f"the token is not for audience {self._audience!r}"
            )
        return identity_from_username(str((status.get("user") or {}).get("username", "")))

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
