"""Envoy's HTTP ext_authz contract on aiohttp, backed by the same Authorizer.

Envoy sends the original method, ``Host`` and headers it is allowed to forward, to
``<path prefix><original path>``. Peer facts only reach an HTTP authorizer when Envoy adds them
(``authorization_request.headers_to_add`` with command operators), so this flavour reads:

* ``x-meshguard-namespace`` / ``x-meshguard-labels`` (``k=v,k2=v2``): the workload;
* ``x-meshguard-source-ip``, ``x-meshguard-source-principal``, ``x-meshguard-destination-ip``,
  ``x-meshguard-destination-port``, ``x-meshguard-sni``: the connection.

Those control headers are hidden from policies. Allow is 200 with the headers to set upstream
(list them in ``allowed_upstream_headers``) and ``x-envoy-auth-headers-to-remove``; deny is the
policy status (403/401) with Istio's body.
"""

from __future__ import annotations

import time
from types import MappingProxyType

from aiohttp import web

from meshguard.authz.attributes import HttpRequest, RequestAttributes
from meshguard.authz.authorizer import Authorizer
from meshguard.authz.checkrequest import InvalidRequest, parse_ip, parse_labels, remote_ip
from meshguard.authz.decision_log import DecisionLog
from meshguard.authz.metrics import DECISIONS, LATENCY

CONTROL_PREFIX = "x-meshguard-"
REMOVE_HEADER = "x-envoy-auth-headers-to-remove"
_LATENCY = LATENCY.labels("http")


def to_attributes(
    request: web.Request, path_prefix: str, xff_trusted_hops: int
) -> RequestAttributes:
    headers: dict[str, str] = {}
    control: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        target = control if key.startswith(CONTROL_PREFIX) else headers
        target[key] = f"{target[key]},{value}" if key in target else value
    path = request.raw_path
    if path_prefix and path.startswith(path_prefix):
        path = path[len(path_prefix) :] or "/"
    host = request.headers.get("host", "")
    headers[":authority"] = host
    headers[":method"] = request.method
    headers[":path"] = path
    source = parse_ip(control.get("x-meshguard-source-ip", ""), "x-meshguard-source-ip")
    port_text = control.get("x-meshguard-destination-port", "")
    if port_text and not port_text.isdigit():
        raise InvalidRequest(f"x-meshguard-destination-port: {port_text!r} is not a port")
    labels_text = control.get("x-meshguard-labels")
    return RequestAttributes(
        namespace=control.get("x-meshguard-namespace", ""),
        labels=MappingProxyType(parse_labels(labels_text)) if labels_text is not None else None,
        source_principal=control.get("x-meshguard-source-principal", ""),
        source_ip=source,
        remote_ip=remote_ip(headers, source, xff_trusted_hops),
        destination_ip=parse_ip(
            control.get("x-meshguard-destination-ip", ""), "x-meshguard-destination-ip"
        ),
        destination_port=int(port_text) if port_text else None,
        sni=control.get("x-meshguard-sni", ""),
        http=HttpRequest(host, request.method, path, MappingProxyType(headers), request.scheme),
    )


class HttpAuthorization:
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

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            attrs = to_attributes(request, self.path_prefix, self.xff_trusted_hops)
        except InvalidRequest:
            DECISIONS.labels("deny", "invalid_request").inc()
            return web.Response(status=400, text="invalid authorization request")
        outcome = await self.authorizer.check(attrs)
        elapsed = time.perf_counter() - started
        _LATENCY.observe(elapsed)
        self.decisions.record(attrs, outcome, elapsed)
        if not outcome.allowed:
            return web.Response(
                status=outcome.status, text=outcome.body, headers=dict(outcome.response_headers)
            )
        authn = outcome.authn
        headers = dict(authn.headers_to_set)
        removed = [h for h in authn.headers_to_remove if h not in headers]
        if removed:
            headers[REMOVE_HEADER] = ",".join(removed)
        return web.Response(status=200, headers=headers)

    def app(self) -> web.Application:
        application = web.Application()
        application.router.add_route("*", "/{tail:.*}", self.handle)
        return application
