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
import collections
import logging
import time
from types import MappingProxyType
from typing import Final, cast

import httptools

from meshguard.authz.attributes import HttpRequest, RequestAttributes
from meshguard.authz.authorizer import Authorizer, Outcome
from meshguard.authz.checkrequest import InvalidRequest, parse_ip, remote_ip, workload_labels
from meshguard.authz.decision_log import DecisionLog
from meshguard.authz.eager import run_eagerly
from meshguard.authz.metrics import DECISIONS, LATENCY

CONTROL_PREFIX = "x-meshguard-"
REMOVE_HEADER = "x-envoy-auth-headers-to-remove"
MAX_HEAD_BYTES: Final = 64 * 1024  # request line + headers; Envoy's own default limit is 60 KiB
MAX_BODY_BYTES: Final = 1024 * 1024  # only with Envoy's with_request_body; never read
MAX_QUEUED: Final = 32  # pipelined requests waiting behind a suspended one before reads pause
INVALID_BODY = "invalid authorization request"
log = logging.getLogger("meshguard.authz.http")
_LATENCY = LATENCY.labels("http")
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}
_REASONS |= {413: "Content Too Large", 500: "Internal Server Error"}
_TEXT = (("content-type", "text/plain; charset=utf-8"),)
RawHeaders = list[tuple[bytes, bytes]]


def render(
    status: int,
    headers: tuple[tuple[str, str], ...],
    body: str,
    *,
    keep_alive: bool,
    head: bool = False,
) -> bytes:
    """One HTTP/1.1 response; raises ValueError for a header that would split the response.

    ``head``: the answer to a HEAD request, whose body is announced but never sent (the
    client would read it as the start of the next response)."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    for name, value in headers:
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"header {name!r} has a line break")
        lines.append(f"{name}: {value}")
    data = body.encode()
    lines.append(f"content-length: {len(data)}")
    if not keep_alive:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else data)


class _Templates:
    """Responses that do not depend on the request, rendered once per keep-alive choice."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, str, bool, bool], bytes] = {}

    def get(self, status: int, body: str, keep_alive: bool, head: bool) -> bytes:
        key = (status, body, keep_alive, head)
        found = self._cache.get(key)
        if found is None:
            headers = _TEXT if body else ()
            found = render(status, headers, body, keep_alive=keep_alive, head=head)
            self._cache[key] = found
        return found


_TEMPLATES = _Templates()


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
            return _TEMPLATES.get(outcome.status, outcome.body, keep_alive, head)
        headers = (*_TEXT, *outcome.response_headers)
        return render(outcome.status, headers, outcome.body, keep_alive=keep_alive, head=head)
    authn = outcome.authn
    if not authn.headers_to_set and not authn.headers_to_remove:
        return _TEMPLATES.get(200, "", keep_alive, head)
    set_names = {k for k, _ in authn.headers_to_set}
    removed = [h for h in authn.headers_to_remove if h not in set_names]
    extra = ((REMOVE_HEADER, ",".join(removed)),) if removed else ()
    return render(200, (*authn.headers_to_set, *extra), "", keep_alive=keep_alive, head=head)


class HttpAuthorization:
    """What every connection shares: the authorizer, the decision log and the listening socket."""

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
        self.connections: set[_Connection] = set()

    async def respond(self, method: str, target: str, raw: RawHeaders, keep_alive: bool) -> bytes:
        """The response bytes for one request; never raises."""
        started = time.perf_counter()
        head = method == "HEAD"
        try:
            attrs = to_attributes(method, target, raw, self.path_prefix, self.xff_trusted_hops)
        except InvalidRequest:
            DECISIONS.labels("deny", "invalid_request").inc()
            return _TEMPLATES.get(400, INVALID_BODY, keep_alive, head)
        try:
            outcome = await self.authorizer.check(attrs)
            response = outcome_response(outcome, keep_alive, head)
        except Exception:
            log.exception("authorization check failed")
            return _TEMPLATES.get(500, "authorization check failed", keep_alive, head)
        elapsed = time.perf_counter() - started
        _LATENCY.observe(elapsed)
        self.decisions.record(attrs, outcome, elapsed)
        return response

    def connection(self) -> _Connection:
        return _Connection(self)

    def server(self, host: str, port: int) -> HttpServer:
        return HttpServer(self, host, port)


class HttpServer:
    """The listening side, run by the ServiceRuntime (``add_http_server``): drains in-flight
    checks on stop like the runtime's other servers."""

    def __init__(self, service: HttpAuthorization, host: str, port: int) -> None:
        self.service = service
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.service.connection, self.host, self.port, backlog=1024
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self, grace: float) -> None:
        """Stop accepting; answer what is in flight (up to ``grace`` seconds); close."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        deadline = asyncio.get_running_loop().time() + grace
        while any(c.busy for c in self.service.connections):
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.01)
        for connection in list(self.service.connections):
            connection.close()
        await server.wait_closed()


class _HeadTooLarge(Exception):
    pass


class _BodyTooLarge(Exception):
    pass


_Request = tuple[str, str, RawHeaders, bool]


class _Connection(asyncio.Protocol):
    """One keep-alive connection from Envoy; answers strictly in request order."""

    def __init__(self, service: HttpAuthorization) -> None:
        self._service = service
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: RawHeaders = []
        self._head_bytes = 0
        self._body_bytes = 0
        self._waiting: asyncio.Task[bytes] | None = None
        self._queue: collections.deque[_Request | bytes] = collections.deque()
        self._paused = False

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._service.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._service.connections.discard(self)
        self._queue.clear()
        if self._waiting is not None:
            self._waiting.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # The request itself was read and is answered; what follows is not HTTP/1.1.
            self._stop_reading()
            self._enqueue(b"")
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _BodyTooLarge):
                self._fail(413, "request body too large")
            else:
                self._fail(400, "malformed request")

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    @property
    def busy(self) -> bool:
        """A check is being decided or queued behind one: closing now would lose an answer."""
        return self._waiting is not None or bool(self._queue)

    # -- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._head_bytes = 0
        self._body_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._grow_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._grow_head(len(name) + len(value))

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > MAX_BODY_BYTES:
            raise _BodyTooLarge

    def on_message_complete(self) -> None:
        method = self._parser.get_method().decode("ascii")
        target = self._url.decode("utf-8", "surrogateescape")
        self._enqueue((method, target, self._headers, self._parser.should_keep_alive()))

    def _grow_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            raise _HeadTooLarge

    # -- answering in order ---------------------------------------------------------------------

    def _fail(self, status: int, body: str) -> None:
        """Answer a request that cannot be parsed (after any still owed), then close."""
        self._stop_reading()
        self._enqueue(_TEMPLATES.get(status, body, False, False))

    def _stop_reading(self) -> None:
        if self._transport is not None and not self._paused:
            self._transport.pause_reading()
            self._paused = True

    def _enqueue(self, item: _Request | bytes) -> None:
        """``bytes`` items are a last answer (maybe empty) after which the connection closes."""
        if self._transport is None:
            return
        if self._waiting is not None or self._queue:
            self._queue.append(item)
            if len(self._queue) >= MAX_QUEUED:
                self._stop_reading()
            return
        self._run(item)

    def _run(self, item: _Request | bytes) -> None:
        if isinstance(item, bytes):
            self._send(item, keep_alive=False)
            return
        method, target, headers, keep_alive = item
        result = run_eagerly(self._service.respond(method, target, headers, keep_alive))
        if isinstance(result, bytes):
            self._send(result, keep_alive)
        else:
            self._waiting = result
            result.add_done_callback(lambda task: self._resumed(task, keep_alive))

    def _resumed(self, task: asyncio.Task[bytes], keep_alive: bool) -> None:
        self._waiting = None
        if task.cancelled():
            return
        self._send(task.result(), keep_alive)
        while self._queue and self._waiting is None and self._transport is not None:
            self._run(self._queue.popleft())
        if self._paused and not self._queue and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()

    def _send(self, response: bytes, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        if response:
            transport.write(response)
        if not keep_alive:
            transport.close()
            self._transport = None
            self._queue.clear()
