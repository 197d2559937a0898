"""The demo upstream behind Envoy in ``meshguard up``: echoes what reached it as JSON.

Seeing the headers Envoy forwarded (the authz service's additions, the identity headers) is
the point of the demo, so the echo is the whole app.
"""

from __future__ import annotations

from aiohttp import web


async def echo(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "upstream": "meshguard-demo",
            "method": request.method,
            "path": request.path_qs,
            "headers": dict(request.headers),
        }
    )


def build_app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app
