"""A lean asyncio Redis client for the limiter's hot path: pipelined, coalescing, fail-fast.

Every caller hands over a whole pipeline (the INCRBY+EXPIRE pairs of one call). Pipelines of
concurrent callers are written together: they are buffered and flushed once per event-loop
turn, or after ``window`` seconds when one is set, so at high concurrency many decisions share
one write and one read syscall. Replies come back in order and are handed to their pipelines.

Failure behaviour is what Envoy's 20 ms budget needs: a caller never waits longer than
``timeout``; while the connection is down calls fail at once (no queueing behind a dead
socket) and one background task reconnects with capped exponential backoff. A caller that is
cancelled (Envoy gave up) leaves its replies to be read and dropped, keeping the stream aligned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

log = logging.getLogger("meshguard.ratelimit.redis")

Reply = int | bytes | str | None | list[Any] | Exception


class RedisError(Exception):
    """The connection is down, a call timed out, or Redis answered with an error."""


class ReplyError(RedisError):
    """An error reply (``-ERR ...``) for one command."""


def encode(*parts: bytes | str | int) -> bytes:
    """One command in RESP."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        if isinstance(part, int):
            data = b"%d" % part
        elif isinstance(part, str):
            data = part.encode()
        else:
            data = part
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Pending:
    __slots__ = ("future", "remaining", "replies")

    def __init__(self, future: asyncio.Future[list[Reply]], count: int) -> None:
        self.future = future
        self.remaining = count
        self.replies: list[Reply] = []


class _Parser:
    """Incremental RESP2 reply parser."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        if self._pos:
            del self._buffer[: self._pos]
            self._pos = 0
        self._buffer += data

    def replies(self) -> list[Reply]:
        out: list[Reply] = []
        while True:
            start = self._pos
            reply = self._parse()
            if reply is _INCOMPLETE:
                self._pos = start
                return out
            out.append(reply)

    def _line(self) -> bytes | None:
        end = self._buffer.find(b"\r\n", self._pos)
        if end < 0:
            return None
        line = bytes(self._buffer[self._pos : end])
        self._pos = end + 2
        return line

    def _parse(self) -> Any:
        line = self._line()
        if line is None:
            return _INCOMPLETE
        kind, body = line[:1], line[1:]
        if kind == b":":
            return int(body)
        if kind == b"+":
            return body.decode()
        if kind == b"-":
            return ReplyError(body.decode(errors="replace"))
        if kind == b"$":
            size = int(body)
            if size < 0:
                return None
            end = self._pos + size
            if len(self._buffer) < end + 2:
                return _INCOMPLETE
            data = bytes(self._buffer[self._pos : end])
            self._pos = end + 2
            return data
        if kind == b"*":
            count = int(body)
            if count < 0:
                return None
            items = []
            for _ in range(count):
                item = self._parse()
                if item is _INCOMPLETE:
                    return _INCOMPLETE
                items.append(item)
            return items
        raise RedisError(f"unexpected reply from Redis: {line[:40]!r}")


_INCOMPLETE = object()


class _Protocol(asyncio.Protocol):
    def __init__(self, client: LeanRedis) -> None:
        self.client = client
        self.parser = _Parser()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's does not subclass asyncio.Transport, so no isinstance.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        try:
            replies = self.parser.replies()
        except (RedisError, ValueError) as exc:
            self.client._connection_lost(self, exc)
            return
        self.client._deliver(replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._connection_lost(self, exc)


class LeanRedis:
    """One connection to one Redis, shared by every caller of this process."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        password: str | None = None,
        username: str | None = None,
        db: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 0.015,
        connect_timeout: float = 1.0,
        window: float = 0.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.host, self.port = host, port
        self.password, self.username, self.db = password, username, db
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.window = window
        self.max_backoff = max_backoff
        self._protocol: _Protocol | None = None
        self._waiting: deque[_Pending] = deque()
        self._buffer: list[bytes] = []
        self._batch: list[_Pending] = []
        self._flush_scheduled = False
        self._reconnect: asyncio.Task[None] | None = None
        self._closed = False
        self.last_error: str | None = None
        self.writes = 0  # flushes written (round trips shared by coalesced callers)
        self.pipelines = 0

    @property
    def connected(self) -> bool:
        return self._protocol is not None

    async def connect(self) -> None:
        """First connection; on failure the background reconnect loop keeps trying."""
        try:
            await self._open()
        except (TimeoutError, OSError, RedisError) as exc:
            self._down(exc)

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        _, protocol = await asyncio.wait_for(
            loop.create_connection(
                lambda: _Protocol(self), self.host, self.port, ssl=self.ssl_context
            ),
            self.connect_timeout,
        )
        handshake: list[bytes] = []
        if self.password is not None:
            auth = (self.username, self.password) if self.username else (self.password,)
            handshake.append(encode("AUTH", *auth))
        if self.db:
            handshake.append(encode("SELECT", self.db))
        handshake.append(encode("PING"))
        self._protocol = protocol
        try:
            replies = await asyncio.wait_for(
                self._submit(handshake, len(handshake)), self.connect_timeout
            )
        except BaseException:
            self._drop(RedisError("handshake failed"))
            raise
        errors = [r for r in replies if isinstance(r, Exception)]
        if errors:
            self._drop(RedisError(str(errors[0])))
            raise RedisError(f"Redis handshake failed: {errors[0]}")
        if self.last_error is not None:
            log.warning("redis connection restored", extra={"redis": f"{self.host}:{self.port}"})
        self.last_error = None

    async def execute(self, commands: Sequence[bytes], replies: int | None = None) -> list[Reply]:
        """Send encoded ``commands`` as one pipeline; their replies in order.

        Raises RedisError when disconnected, on timeout, or when any reply is an error.
        """
        if self._protocol is None:
            raise RedisError(f"redis unavailable: {self.last_error or 'not connected'}")
        future = self._submit(commands, len(commands) if replies is None else replies)
        try:
            result = await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            raise RedisError(f"redis call timed out after {self.timeout * 1000:.0f} ms") from None
        for reply in result:
            if isinstance(reply, Exception):
                raise ReplyError(str(reply))
        return result

    def _submit(self, commands: Sequence[bytes], count: int) -> asyncio.Future[list[Reply]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Reply]] = loop.create_future()
        self._buffer.extend(commands)
        self._batch.append(_Pending(future, count))
        self.pipelines += 1
        if not self._flush_scheduled:
            self._flush_scheduled = True
            if self.window > 0:
                loop.call_later(self.window, self._flush)
            else:
                loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        protocol = self._protocol
        batch, data = self._batch, self._buffer
        self._batch, self._buffer = [], []
        if not batch:
            return
        if protocol is None or protocol.transport is None:
            error = RedisError(f"redis unavailable: {self.last_error or 'not connected'}")
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(error)
            return
        self._waiting.extend(batch)
        self.writes += 1
        protocol.transport.write(b"".join(data))

    def _deliver(self, replies: list[Reply]) -> None:
        waiting = self._waiting
        for reply in replies:
            if not waiting:
                log.error("redis sent a reply nobody asked for; reconnecting")
                if self._protocol is not None:
                    self._drop(RedisError("protocol out of sync"))
                return
            pending = waiting[0]
            pending.replies.append(reply)
            pending.remaining -= 1
            if pending.remaining <= 0:
                waiting.popleft()
                if not pending.future.done():
                    pending.future.set_result(pending.replies)

    def _connection_lost(self, protocol: _Protocol, exc: Exception | None) -> None:
        if protocol is not self._protocol:
            return
        self._down(exc or RedisError("connection closed by Redis"))

    def _down(self, exc: BaseException) -> None:
        self._drop(exc)
        if not self._closed and (self._reconnect is None or self._reconnect.done()):
            self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_loop())

    def _drop(self, exc: BaseException) -> None:
        message = str(exc) or type(exc).__name__
        if self.last_error is None:
            log.error(
                "redis connection lost: %s", message, extra={"redis": f"{self.host}:{self.port}"}
            )
        self.last_error = message
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.abort()
        error = RedisError(f"redis unavailable: {message}")
        while self._waiting:
            pending = self._waiting.popleft()
            if not pending.future.done():
                pending.future.set_exception(error)
        # Anything buffered but not yet written fails at the next flush (no protocol).

    async def _reconnect_loop(self) -> None:
        delay = 0.05
        while not self._closed and self._protocol is None:
            await asyncio.sleep(delay)
            started = time.monotonic()
            try:
                await self._open()
            except (TimeoutError, OSError, RedisError) as exc:
                self.last_error = str(exc) or type(exc).__name__
                delay = min(self.max_backoff, delay * 2)
                log.debug("redis reconnect failed after %.3fs", time.monotonic() - started)

    async def close(self) -> None:
        self._closed = True
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect
        if self._protocol is not None:
            self.last_error = self.last_error or "client closed"  # a chosen close is no outage
            self._drop(RedisError("client closed"))
