"""The reference's HTTP side: ``POST /json``, ``GET /rlconfig`` and ``GET /healthcheck``.

``/json`` takes a RateLimitRequest in protobuf JSON (camelCase or snake_case) and answers with
the RateLimitResponse in protobuf JSON: 200 for OK, 429 for OVER_LIMIT, 400 for a bad body or a
failed call, 500 for an UNKNOWN overall code.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from envoy.service.ratelimit.v3 import rls_pb2
from google.protobuf import json_format  # type: ignore[import-untyped]

from meshguard.ratelimit.config import RateLimitConfig
from meshguard.ratelimit.grpc_api import fail_open_response, from_pb, to_pb
from meshguard.ratelimit.model import BackendError, Code, RequestError
from meshguard.ratelimit.service import RateLimitService

_STATUS = {Code.OK: 200, Code.OVER_LIMIT: 429, Code.UNKNOWN: 500}


def build_app(
    service: RateLimitService,
    current_config: Callable[[], RateLimitConfig | None],
    *,
    healthy: Callable[[], bool] = lambda: True,
    fail_open: bool = False,
) -> web.Application:
    async def json_endpoint(request: web.Request) -> web.Response:
        try:
            message = json_format.Parse(await request.text(), rls_pb2.RateLimitRequest())
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            return web.Response(status=400, text=f"invalid request body: {exc}\n")
        call = from_pb(message)
        try:
            response = await service.should_rate_limit(call)
        except RequestError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        except BackendError as exc:
            if not fail_open:
                return web.Response(status=400, text=f"{exc}\n")
            response = fail_open_response(call)
        body = json_format.MessageToJson(to_pb(response), indent=None)
        return web.Response(
            status=_STATUS[response.overall_code], text=body, content_type="application/json"
        )

    async def rlconfig(request: web.Request) -> web.Response:
        config = current_config()
        return web.Response(text=config.dump() if config is not None else "")

    async def healthcheck(request: web.Request) -> web.Response:
        if healthy():
            return web.Response(text="OK")
        return web.Response(status=500, text="unhealthy")

    app = web.Application()
    app.router.add_post("/json", json_endpoint)
    app.router.add_get("/rlconfig", rlconfig)
    app.router.add_get("/healthcheck", healthcheck)
    return app
