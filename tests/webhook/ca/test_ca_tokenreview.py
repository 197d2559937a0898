"""The TokenReview verifier against a small fake API server (no real cluster here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from meshguard.webhook.ca.tokenreview import TokenReviewVerifier
from meshguard.webhook.ca.tokens import ServiceAccountIdentity, TokenRejected, VerifierUnavailable

PATH = "/apis/authentication.k8s.io/v1/tokenreviews"


class FakeApiServer:
    def __init__(self) -> None:
        self.reviews: list[tuple[str, dict[str, Any]]] = []
        self.answers: dict[str, dict[str, Any]] = {}
        self.http_status = 201

    async def handle(self, request: web.Request) -> web.Response:
        review = await request.json()
        self.reviews.append((request.headers.get("Authorization", ""), review))
        status = self.answers.get(review["spec"]["token"], {"authenticated": False})
        return web.json_response({**review, "status": status}, status=self.http_status)


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeApiServer, str]]:
    fake = FakeApiServer()
    app = web.Application()
    app.router.add_post(PATH, fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield fake, f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
def credential(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("ca-own-token\n")
    return path


async def test_authenticated_review_gives_the_identity(
    api: tuple[FakeApiServer, str], credential: Path
) -> None:
    fake, url = api
    fake.answers["pod-token"] = {
        "authenticated": True,
        "user": {"username": "system:serviceaccount:shop:web"},
        "audiences": ["meshguard-ca"],
    }
    verifier = TokenReviewVerifier(url, credential_file=credential)
    try:
        assert await verifier.verify("pod-token") == ServiceAccountIdentity("shop", "web")
    finally:
        await verifier.close()
    auth, review = fake.reviews[0]
    assert auth == "Bearer ca-own-token"
    assert review["spec"] == {"token": "pod-token", "audiences": ["meshguard-ca"]}


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ({"authenticated": False, "error": "token expired"}, "not-authenticated"),
        (
            {
                "authenticated": True,
                "user": {"username": "system:serviceaccount:shop:web"},
                "audiences": ["other"],
            },
            "wrong-audience",
        ),
        (
            {"authenticated": True, "user": {"username": "alice"}, "audiences": ["meshguard-ca"]},
            "not-service-account",
        ),
    ],
)
async def test_refusals(
    api: tuple[FakeApiServer, str], credential: Path, status: dict[str, Any], reason: str
) -> None:
    fake, url = api
    fake.answers["t"] = status
    verifier = TokenReviewVerifier(url, credential_file=credential)
    try:
        with pytest.raises(TokenRejected) as caught:
            await verifier.verify("t")
    finally:
        await verifier.close()
    assert caught.value.reason == reason


async def test_api_errors_are_unavailable_not_rejections(
    api: tuple[FakeApiServer, str], credential: Path
) -> None:
    fake, url = api
    fake.http_status = 500
    verifier = TokenReviewVerifier(url, credential_file=credential)
    try:
        with pytest.raises(VerifierUnavailable, match="500"):
            await verifier.verify("t")
    finally:
        await verifier.close()
    unreachable = TokenReviewVerifier("http://127.0.0.1:1", credential_file=credential)
    try:
        with pytest.raises(VerifierUnavailable):
            await unreachable.verify("t")
    finally:
        await unreachable.close()
