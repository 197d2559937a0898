"""Envoy's HTTP ext_authz contract on a bare asyncio Protocol with httptools' parser.

Envoy sends the original method, ``Host`` and headers it is allowed to forward, to
``<path prefix><original path>``. Peer facts only reach an HTTP authorizer when Envoy adds them
(``authorization_request.headers_to_add`` with command operators), so this flavour reads:

* ``x-meshguard-namespace`` / ``x-meshguard-labels`` (``k=v,k2=v2``): the workload;
* ``x-meshguard-source-ip``, ``x-meshguard-source-principal``, ``x-meshguard-destination-ip``,
  ``x-meshguard-destination-port``, ``x-meshguard-sni``: the connection.

Those control headers are hidden from policies. Allow is 200 with the headers to set upstream
(list them in ``allowed_upstream_headers``) and ``x-envoy-auth-headers-to-remove``; deny is the
policy status (403/401) with Istio's body; an unreadable request is 400, an over-long head 400
and an over-long body 413 (both then close the connection).

Why not aiohttp: a decision is ~30 µs of policy work, and a web framework's request and
response objects cost several times that (benchmarks/RESULTS.md, section ``authz``). Here a
request is parsed into a header list, decided, and answered with templated bytes, in order per
connection (pipelining-safe), keep-alive unless the client says otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import MappingProxyType
from typing import Final

from meshguard.authz.attributes import HttpRequest, RequestAttributes
from meshguard.authz.authorizer import Authorizer, Outcome
from meshguard.authz.checkrequest import InvalidRequest, parse_ip, remote_ip, workload_labels
from meshguard.authz.decision_log import DecisionLog
from meshguard.authz.eager import run_eagerly
from meshguard.authz.metrics import DECISIONS, LATENCY
from meshguard.common.leanhttp import (
    TEMPLATES,
    TEXT,
    Connection,
    HttpEndpoint,
    LeanHttpServer,
    Limits,
    RawHeaders,
    Request,
    render,
)

CONTROL_PREFIX = "x-meshguard-"
REMOVE_HEADER = "x-envoy-auth-headers-to-remove"
INVALID_BODY = "invalid authorization request"
LIMITS: Final = Limits()  # the body is only sent with Envoy's with_request_body, and never read
MAX_HEAD_BYTES: Final = LIMITS.max_head_bytes
MAX_BODY_BYTES: Final = LIMITS.max_body_bytes
log = logging.getLogger("meshguard.authz.http")
_LATENCY = LATENCY.labels("http")


_NAMES: dict[bytes, tuple[str, bool]] = {}  # raw name -> (lower-cased name, is a control header)
_NAMES_LIMIT: Final = 512  # few distinct names arrive; bounded against a client sending many


def _name(raw: bytes) -> tuple[str, bool]:
    name = raw.decode("latin-1").lower()
    found = (name, name.startswith(CONTROL_PREFIX))
    if len(_NAMES) < _NAMES_LIMIT:
        _NAMES[raw] = found
    return found


def to_attributes(
    method: str, target: str, raw: RawHeaders, path_prefix: str, xff_trusted_hops: int
) -> RequestAttributes:
    headers: dict[str, str] = {}
    control: dict[str, str] = {}
    names = _NAMES
    for raw_name, raw_value in raw:
        key, is_control = names.get(raw_name) or _name(raw_name)
        value = raw_value.decode("utf-8", "surrogateescape")
        target_map = control if is_control else headers
        target_map[key] = f"{target_map[key]},{value}" if key in target_map else value
    path = target
    if path_prefix and path.startswith(path_prefix):
        path = path[len(path_prefix) :] or "/"
    host = headers.get("host", "")
    headers[":authority"] = host
    headers[":method"] = method
    headers[":path"] = path
    source = parse_ip(control.get("x-meshguard-source-ip", ""), "x-meshguard-source-ip")
    port_text = control.get("x-meshguard-destination-port", "")
    if port_text and not port_text.isdigit():
        raise InvalidRequest(f"x-meshguard-destination-port: {port_text!r} is not a port")
    labels_text = control.get("x-meshguard-labels")
    return RequestAttributes(
        namespace=control.get("x-meshguard-namespace", ""),
        labels=workload_labels(labels_text) if labels_text is not None else None,
        source_principal=control.get("x-meshguard-source-principal", ""),
        source_ip=source,
        remote_ip=remote_ip(headers, source, xff_trusted_hops),
        destination_ip=parse_ip(
            control.get("x-meshguard-destination-ip", ""), "x-meshguard-destination-ip"
        ),
        destination_port=int(port_text) if port_text else None,
        sni=control.get("x-meshguard-sni", ""),
        http=HttpRequest(host, method, path, MappingProxyType(headers), "http"),
    )


def outcome_response(outcome: Outcome, keep_alive: bool, head: bool) -> bytes:
    if not outcome.allowed:
        if not outcome.response_headers:
            return TEMPLATES.get(outcome.status, outcome.body, keep_alive, head)
        headers = (*TEXT, *outcome.response_headers)
        return render(outcome.status, headers, outcome.body, keep_alive=keep_alive, head=head)
    authn = outcome.authn
    if not authn.headers_to_set and not authn.headers_to_remove:
        return TEMPLATES.get(200, "", keep_alive, head)
    set_names = {k for k, _ in authn.headers_to_set}
    removed = [h for h in authn.headers_to_remove if h not in set_names]
    extra = ((REMOVE_HEADER, ",".join(removed)),) if removed else ()
    return render(200, (*authn.headers_to_set, *extra), "", keep_alive=keep_alive, head=head)


class HttpAuthorization:
    """What every connection shares: the authorizer, the decision log and the contract's
    options; the HTTP/1.1 machinery is :mod:`meshguard.common.leanhttp`'s."""

    def __init__(
        self,
        authorizer: Authorizer,
        decisions: DecisionLog,
        *,
        path_prefix: str = "",
        xff_trusted_hops: int = 0,
    ) -> None:
        self.authorizer = authorizer
        self.decisions = decisions
        self.path_prefix = path_prefix.rstrip("/")
        self.xff_trusted_hops = xff_trusted_hops
        self.endpoint = HttpEndpoint(self.respond, limits=LIMITS)

    def respond(self, request: Request) -> bytes | asyncio.Task[bytes]:
        """The answer in place when the check did not wait (almost always), else the Task
        finishing it; never raises."""
        return run_eagerly(self._respond(request))

    async def _respond(self, request: Request) -> bytes:
        started = time.perf_counter()
        method, keep_alive, head = request.method, request.keep_alive, request.head
        try:
            attrs = to_attributes(
                method, request.target, request.headers, self.path_prefix, self.xff_trusted_hops
            )
        except InvalidRequest:
            DECISIONS.labels("deny", "invalid_request").inc()
            return TEMPLATES.get(400, INVALID_BODY, keep_alive, head)
        try:
            outcome = await self.authorizer.check(attrs)
            response = outcome_response(outcome, keep_alive, head)
        except Exception:
            log.exception("authorization check failed")
            return TEMPLATES.get(500, "authorization check failed", keep_alive, head)
        elapsed = time.perf_counter() - started
        _LATENCY.observe(elapsed)
        self.decisions.record(attrs, outcome, elapsed)
        return response

    def connection(self) -> Connection:
        return self.endpoint.connection()

    def server(self, host: str, port: int) -> LeanHttpServer:
        """The listening side for ``ServiceRuntime.add_http_server`` (drained on stop)."""
        return LeanHttpServer(self.endpoint, host, port)
