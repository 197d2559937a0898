"""The HTTPS app: ``POST /validate`` over aiohttp, and the process around it.

The handler only moves bytes: size and content-type checks, then :mod:`admission` decides.
Validation is pure CPU work bounded by the body limit, so it runs inline on the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from meshguard.common.server import ServiceRuntime
from meshguard.common.tls import ReloadingTls, TlsFiles
from meshguard.common.validation import ValidatorRegistry
from meshguard.webhook import admission, metrics
from meshguard.webhook.decisions import DecisionLog
from meshguard.webhook.injection.review import handle_mutate
from meshguard.webhook.settings import WebhookSettings

JSON = "application/json"


class ValidateHandler:
    def __init__(
        self, registry: ValidatorRegistry, max_body_bytes: int, decisions: DecisionLog
    ) -> None:
        self.registry = registry
        self.max_body_bytes = max_body_bytes
        self.decisions = decisions

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            body = await self._read(request)
            review = admission.parse_review(body)
        except admission.ReviewError as exc:
            metrics.BAD_REVIEWS.labels(str(exc.status)).inc()
            return web.json_response({"error": exc.reason}, status=exc.status)
        verdict = admission.decide(review, self.registry)
        body = admission.encode_response(review, verdict)
        self.decisions.record(review, verdict, time.perf_counter() - started)
        return web.Response(body=body, content_type=JSON)

    async def _read(self, request: web.Request) -> bytes:
        if request.content_type != JSON:
            raise admission.ReviewError(415, f"Content-Type must be {JSON}, got "
                                        f"{request.content_type!r}")  # fmt: skip
        declared = request.content_length
        if declared is not None and declared > self.max_body_bytes:
            raise admission.ReviewError(413, self._too_large())
        body = await request.content.read(self.max_body_bytes + 1)
        if len(body) > self.max_body_bytes:
            raise admission.ReviewError(413, self._too_large())
        return body

    def _too_large(self) -> str:
        return f"review body is larger than the {self.max_body_bytes}-byte limit"


Handler = Callable[[web.Request], Awaitable[web.Response]]


def build_app(
    registry: ValidatorRegistry,
    max_body_bytes: int,
    mutate: Handler = handle_mutate,
    *,
    decisions: DecisionLog | None = None,
) -> web.Application:
    app = web.Application(client_max_size=max_body_bytes + 1)
    handler = ValidateHandler(registry, max_body_bytes, decisions or DecisionLog())
    app.router.add_post("/validate", handler.handle)
    app.router.add_post("/mutate", mutate)
    return app


def build_runtime(
    settings: WebhookSettings, registry: ValidatorRegistry, mutate: Handler = handle_mutate
) -> ServiceRuntime:
    """Admin endpoints plus ``/validate`` over TLS whose files are watched for rotation."""
    tls = ReloadingTls.server(
        TlsFiles(cert=settings.tls_cert, key=settings.tls_key),
        poll_interval=settings.tls_poll_interval,
    )
    runtime = ServiceRuntime("webhook", admin_port=settings.admin_port, host=settings.host)
    decisions = DecisionLog(
        allow_rate=settings.log_allow_sample, deny_rate=settings.log_deny_sample
    )
    app = build_app(registry, settings.max_body_bytes, mutate, decisions=decisions)
    runtime.add_http(app, settings.port, tls.server_context())
    runtime.add_background(tls.watch)
    return runtime
