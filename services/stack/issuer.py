"""The demo token issuer of ``meshguard up``: an RS256 key made at start, its JWKS served over
HTTP like an IdP's, and ready-made tokens so a newcomer can try the JWT-protected paths."""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web

from meshguard.stack.signing import RsaSigner

ISSUER = "https://issuer.meshguard.example"
AUDIENCE = "demo-api"


class DemoIssuer:
    def __init__(self) -> None:
        self._signer = RsaSigner(uuid.uuid4().hex[:12])

    def jwks(self) -> dict[str, Any]:
        return self._signer.jwks()

    def token(self, subject: str, groups: list[str], lifetime: int = 3600) -> str:
        now = int(time.time())
        return self._signer.sign(
            {
                "iss": ISSUER,
                "sub": subject,
                "aud": AUDIENCE,
                "groups": groups,
                "iat": now,
                "exp": now + lifetime,
            }
        )

    def build_app(self) -> web.Application:
        async def jwks(request: web.Request) -> web.Response:
            return web.json_response(self.jwks())

        app = web.Application()
        app.router.add_get("/jwks.json", jwks)
        return app
