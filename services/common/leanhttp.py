"""HTTP/1.1 on a bare asyncio Protocol with httptools' parser, for services whose per-request
work is small enough that a web framework's request and response objects would dominate it.

A service supplies one ``respond(request) -> bytes`` callable. It may instead return an
awaitable when it has to wait (authz's JWKS fetch); returning bytes directly costs no Task and
no extra event-loop round, which is what makes this server cheap. Per connection, requests are
answered strictly in order (pipelining-safe), keep-alive unless the client says otherwise, and
reads pause while too many pipelined requests wait behind a suspended one. Bodies (with
``Content-Length`` or chunked) are read into the request. An unreadable request or an
over-long head is refused with 400, an over-long body with 413, after the answers still owed,
and the connection is then closed. TLS is the event loop's (``ssl=`` on ``create_server``).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import ssl
from collections.abc import Awaitable, Callable
from typing import Final, cast

import httptools

RawHeaders = list[tuple[bytes, bytes]]
ResponseHeaders = tuple[tuple[str, str], ...]
REASONS: Final = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 413: "Content Too Large", 415: "Unsupported Media Type",
    500: "Internal Server Error",
}  # fmt: skip
TEXT: Final = (("content-type", "text/plain; charset=utf-8"),)
MALFORMED = "malformed request"
TOO_LARGE = "request body too large"


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str  # the request target as sent (path and query)
    headers: RawHeaders  # as received: names in their original case, repeats kept
    body: bytes
    keep_alive: bool

    @property
    def head(self) -> bool:
        """A HEAD request: its answer announces a body but must not send it."""
        return self.method == "HEAD"


Respond = Callable[[Request], bytes | Awaitable[bytes]]
"""The complete response bytes for one request; must not raise."""
Refusal = Callable[[int, str], bytes]
"""The response (with ``connection: close``) to a request that could not be read."""


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    max_head_bytes: int = 64 * 1024  # request line + headers; Envoy's own default is 60 KiB
    max_body_bytes: int = 1024 * 1024
    max_queued: int = 32  # pipelined requests waiting behind a suspended one before reads pause


def render(
    status: int,
    headers: ResponseHeaders,
    body: str | bytes,
    *,
    keep_alive: bool,
    head: bool = False,
) -> bytes:
    """One HTTP/1.1 response; raises ValueError for a header that would split the response.

    ``head``: the answer to a HEAD request, whose body is announced but never sent (the
    client would read it as the start of the next response)."""
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"]
    for name, value in headers:
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"header {name!r} has a line break")
        lines.append(f"{name}: {value}")
    data = body.encode() if isinstance(body, str) else body
    lines.append(f"content-length: {len(data)}")
    if not keep_alive:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else data)


class Templates:
    """Plain-text responses that do not depend on the request, rendered once per variant."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, str, bool, bool], bytes] = {}

    def get(self, status: int, body: str, keep_alive: bool, head: bool = False) -> bytes:
        key = (status, body, keep_alive, head)
        found = self._cache.get(key)
        if found is None:
            found = render(status, TEXT if body else (), body, keep_alive=keep_alive, head=head)
            self._cache[key] = found
        return found


TEMPLATES = Templates()


def text_refusal(status: int, reason: str) -> bytes:
    return TEMPLATES.get(status, reason, False)


class HttpEndpoint:
    """What every connection of one server shares: the responder, the limits, and the open
    connections (so a stop can wait for answers in flight)."""

    def __init__(
        self, respond: Respond, *, limits: Limits = Limits(), refusal: Refusal = text_refusal
    ) -> None:
        self.respond = respond
        self.limits = limits
        self.refusal = refusal
        self.connections: set[Connection] = set()

    def connection(self) -> Connection:
        """The protocol factory for ``loop.create_server``."""
        return Connection(self)

    @property
    def busy(self) -> bool:
        return any(c.busy for c in self.connections)


class LeanHttpServer:
    """The listening side (a ``ManagedServer`` for ``ServiceRuntime.add_http_server``): drains
    in-flight requests on stop like the runtime's other servers."""

    def __init__(
        self,
        endpoint: HttpEndpoint,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.endpoint.connection, self.host, self.port, backlog=1024, ssl=self.ssl_context
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self, grace: float) -> None:
        """Stop accepting; answer what is in flight (up to ``grace`` seconds); close."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.endpoint.busy and loop.time() <= deadline:
            await asyncio.sleep(0.01)
        for connection in list(self.endpoint.connections):
            connection.close()
        await server.wait_closed()


class _HeadTooLarge(Exception):
    pass


class _BodyTooLarge(Exception):
    pass


class Connection(asyncio.Protocol):
    """One keep-alive connection; answers strictly in request order."""

    def __init__(self, endpoint: HttpEndpoint) -> None:
        self._endpoint = endpoint
        self._limits = endpoint.limits
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: RawHeaders = []
        self._body: list[bytes] = []
        self._head_bytes = 0
        self._body_bytes = 0
        self._waiting: asyncio.Future[bytes] | None = None
        self._queue: collections.deque[Request | bytes] = collections.deque()
        self._paused = False

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._endpoint.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._endpoint.connections.discard(self)
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
                self._fail(413, TOO_LARGE)
            else:
                self._fail(400, MALFORMED)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    @property
    def busy(self) -> bool:
        """A request is being answered or queued behind one: closing now would lose it."""
        return self._waiting is not None or bool(self._queue)

    # -- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._body = []
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
        if self._body_bytes > self._limits.max_body_bytes:
            raise _BodyTooLarge
        self._body.append(body)

    def on_message_complete(self) -> None:
        parts = self._body
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        self._enqueue(
            Request(
                self._parser.get_method().decode("ascii"),
                self._url.decode("utf-8", "surrogateescape"),
                self._headers,
                body,
                self._parser.should_keep_alive(),
            )
        )

    def _grow_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self._limits.max_head_bytes:
            raise _HeadTooLarge

    # -- answering in order ---------------------------------------------------------------------

    def _fail(self, status: int, reason: str) -> None:
        """Answer a request that cannot be read (after any still owed), then close."""
        self._stop_reading()
        self._enqueue(self._endpoint.refusal(status, reason))

    def _stop_reading(self) -> None:
        if self._transport is not None and not self._paused:
            self._transport.pause_reading()
            self._paused = True

    def _enqueue(self, item: Request | bytes) -> None:
        """``bytes`` items are a last answer (maybe empty) after which the connection closes."""
        if self._transport is None:
            return
        if self._waiting is not None or self._queue:
            self._queue.append(item)
            if len(self._queue) >= self._limits.max_queued:
                self._stop_reading()
            return
        self._run(item)

    def _run(self, item: Request | bytes) -> None:
        if isinstance(item, bytes):
            self._send(item, keep_alive=False)
            return
        result = self._endpoint.respond(item)
        if isinstance(result, bytes):
            self._send(result, item.keep_alive)
            return
        waiting = asyncio.ensure_future(result)
        self._waiting = waiting
        keep_alive = item.keep_alive
        waiting.add_done_callback(lambda done: self._resumed(done, keep_alive))

    def _resumed(self, done: asyncio.Future[bytes], keep_alive: bool) -> None:
        self._waiting = None
        if done.cancelled():
            return
        self._send(done.result(), keep_alive)
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
