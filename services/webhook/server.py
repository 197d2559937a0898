"""The HTTPS side: ``POST /validate`` and ``POST /mutate`` on the lean HTTP/1.1 server, and the
process around it.

Why not aiohttp: every microsecond of a review's CPU adds ~16 to the latency at concurrency
16 (the process is CPU-bound on one core), and aiohttp's request and response objects and its
TLS read path cost ~40-50 µs per review beyond this server's (benchmarks/webhook/history.md,
round 3). Here a request is parsed into a header list and a body and answered with one
pre-formatted head and the answer's bytes, over the event loop's own TLS transport with the
reloading certificate.

The handler only moves bytes: route, method, size and content-type checks, then
:mod:`admission` decides. Validation is pure CPU work bounded by the body limit, so it runs
inline on the event loop. Refusals are JSON ``{"error": reason}`` with the HTTP status.
"""

from __future__ import annotations

import json
import time

from meshguard.common.leanhttp import HttpEndpoint, LeanHttpServer, Limits, Request, render
from meshguard.common.server import ServiceRuntime
from meshguard.common.tls import ReloadingTls, TlsFiles
from meshguard.common.validation import ValidatorRegistry
from meshguard.webhook import admission, metrics
from meshguard.webhook.decisions import DecisionLog
from meshguard.webhook.injection.config import InjectionConfig
from meshguard.webhook.injection.review import mutate_review
from meshguard.webhook.settings import WebhookSettings

JSON = "application/json"
_JSON_HEADERS = (("content-type", JSON),)
_OK_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
_CONTENT_TYPE = b"content-type"


def media_type(value: str | None) -> str:
    """``application/json; charset=utf-8`` → ``application/json``."""
    return (value or "").partition(";")[0].strip().lower()


class Reviews:
    """``/validate`` from content type and body to (status, JSON bytes)."""

    def __init__(
        self,
        registry: ValidatorRegistry,
        max_body_bytes: int,
        decisions: DecisionLog,
        *,
        reject_unknown_fields: bool = True,
    ) -> None:
        self.registry = registry
        self.max_body_bytes = max_body_bytes
        self.decisions = decisions
        self.reject_unknown_fields = reject_unknown_fields

    def validate(self, content_type: str, body: bytes) -> tuple[int, bytes]:
        started = time.perf_counter()
        try:
            if content_type != JSON:
                raise admission.ReviewError(415, f"Content-Type must be {JSON}, got "
                                            f"{content_type!r}")  # fmt: skip
            if len(body) > self.max_body_bytes:
                raise admission.ReviewError(413, self.too_large())
            review = admission.parse_review(body)
        except admission.ReviewError as exc:
            metrics.BAD_REVIEWS.labels(str(exc.status)).inc()
            return exc.status, error_body(exc.reason)
        verdict = admission.decide(
            review, self.registry, reject_unknown_fields=self.reject_unknown_fields
        )
        answer = admission.encode_response(review, verdict)
        self.decisions.record(review, verdict, time.perf_counter() - started)
        return 200, answer

    def too_large(self) -> str:
        return f"review body is larger than the {self.max_body_bytes}-byte limit"


def error_body(reason: str) -> bytes:
    return json.dumps({"error": reason}).encode()


class WebhookHttp:
    """The lean server's responder: routes, then :class:`Reviews` or the injector."""

    PATHS = ("/validate", "/mutate")

    def __init__(self, reviews: Reviews, injection: InjectionConfig | None = None) -> None:
        self.reviews = reviews
        self.injection = injection or InjectionConfig()
        self.endpoint = HttpEndpoint(
            self.respond,
            limits=Limits(max_body_bytes=reviews.max_body_bytes),
            refusal=self.refusal,
        )

    def respond(self, request: Request) -> bytes:
        """The response bytes for one request; never raises."""
        path = request.target.partition("?")[0]
        if path not in self.PATHS:
            return _answer(404, error_body(f"no route {path}"), request)
        if request.method != "POST":
            return _answer(405, error_body("only POST is served"), request)
        content_type = ""
        for name, value in request.headers:
            if len(name) == 12 and name.lower() == _CONTENT_TYPE:
                content_type = media_type(value.decode("latin-1"))
        if path == "/validate":
            status, body = self.reviews.validate(content_type, request.body)
        else:
            status, body = self._mutate(content_type, request.body)
        return _answer(status, body, request)

    def _mutate(self, content_type: str, body: bytes) -> tuple[int, bytes]:
        if content_type != JSON:
            return 415, error_body(f"expected Content-Type: {JSON}")
        try:
            review = json.loads(body)
        except (ValueError, RecursionError):
            return 400, error_body("body is not JSON")
        if not isinstance(review, dict):
            return 400, error_body("body is not an AdmissionReview")
        return 200, json.dumps(mutate_review(review, self.injection)).encode()

    def refusal(self, status: int, reason: str) -> bytes:
        """A request the connection could not read (malformed, or its body over the limit)."""
        if status == 413:
            reason = self.reviews.too_large()
        return render(status, _JSON_HEADERS, error_body(reason), keep_alive=False)

    def server(self, host: str, port: int, tls: ReloadingTls) -> LeanHttpServer:
        return LeanHttpServer(self.endpoint, host, port, ssl_context=tls.server_context())


def _answer(status: int, body: bytes, request: Request) -> bytes:
    if status == 200 and request.keep_alive:
        return _OK_HEAD % len(body) + b"\r\n" + body
    return render(status, _JSON_HEADERS, body, keep_alive=request.keep_alive, head=request.head)


def build_runtime(
    settings: WebhookSettings,
    registry: ValidatorRegistry,
    injection: InjectionConfig | None = None,
) -> ServiceRuntime:
    """Admin endpoints plus ``/validate`` and ``/mutate`` over TLS whose files are watched for
    rotation."""
    tls = ReloadingTls.server(
        TlsFiles(cert=settings.tls_cert, key=settings.tls_key),
        poll_interval=settings.tls_poll_interval,
    )
    runtime = ServiceRuntime("webhook", admin_port=settings.admin_port, host=settings.host)
    decisions = DecisionLog(
        allow_rate=settings.log_allow_sample, deny_rate=settings.log_deny_sample
    )
    reviews = Reviews(
        registry,
        settings.max_body_bytes,
        decisions,
        reject_unknown_fields=settings.reject_unknown_fields,
    )
    runtime.add_http_server(
        WebhookHttp(reviews, injection).server(settings.host, settings.port, tls)
    )
    runtime.add_background(tls.watch)
    return runtime
