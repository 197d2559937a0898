"""One HTTP/2 connection of the lean gRPC server: frames in, unary calls dispatched, frames out.

An :class:`asyncio.Protocol` (works on uvloop) that parses frames with :mod:`struct` straight
from a ``bytearray`` in ``data_received``. Request header blocks are decoded with the ``hpack``
package (the decoder's table is per connection); responses are precomputed blocks that never
touch an encoder table. Output produced while handling one read, or by calls finishing in the
same event-loop turn, goes out in one ``transport.write``.

Protocol errors end the connection with GOAWAY; errors of one call end that call only. A
handler's exception never reaches the connection: it becomes gRPC ``UNKNOWN``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping

import grpc
import hpack

from meshguard.common.http2 import fields
from meshguard.common.http2 import frames as h2
from meshguard.common.leangrpc_wire import (
    MESSAGE_PREFIX,
    OK_TRAILERS,
    RESPONSE_HEADERS,
    GrpcError,
    parse_timeout,
    trailers_only,
)

log = logging.getLogger("meshguard.leangrpc")

Handler = Callable[[bytes], Awaitable[bytes]]

_HEADER = h2.HEADER
_HEADER_SIZE = h2.HEADER_SIZE
_PREFIX = MESSAGE_PREFIX
_END_HEADERS = h2.FLAG_END_HEADERS
_END_ALL = h2.FLAG_END_HEADERS | h2.FLAG_END_STREAM
_MASK = h2.STREAM_MASK
_TRAILER_LEN = len(OK_TRAILERS)
_HEADERS_LEN = len(RESPONSE_HEADERS)


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """What every connection of one server shares."""

    handlers: Mapping[bytes, Handler]
    max_receive_message_length: int = 4 * 1024 * 1024
    max_concurrent_streams: int = 1000
    max_header_list_size: int = 16 * 1024
    # Our receive window per stream and per connection; WINDOW_UPDATE once half is consumed.
    window: int = 1024 * 1024

    def settings_frame(self) -> bytes:
        return h2.settings(
            {
                h2.SETTINGS_MAX_CONCURRENT_STREAMS: self.max_concurrent_streams,
                h2.SETTINGS_INITIAL_WINDOW_SIZE: self.window,
                h2.SETTINGS_MAX_HEADER_LIST_SIZE: self.max_header_list_size,
            }
        )


class _ConnectionError(Exception):
    def __init__(self, code: int, debug: str) -> None:
        super().__init__(debug)
        self.code = code


class _Stream:
    __slots__ = (
        "body",
        "deadline",
        "encoding",
        "handler",
        "id",
        "pending",
        "recv_unacked",
        "recv_window",
        "remote_closed",
        "responded",
        "send_window",
        "task",
        "timer",
        "trailers",
    )

    def __init__(self, stream_id: int, send_window: int, recv_window: int) -> None:
        self.id = stream_id
        self.handler: Handler | None = None
        self.body = bytearray()
        self.encoding: bytes | None = None
        self.deadline: float | None = None
        self.send_window = send_window
        self.recv_window = recv_window
        self.recv_unacked = 0
        self.remote_closed = False
        self.responded = False
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.pending: memoryview | None = None  # response DATA waiting for window
        self.trailers = b""


def _unpad(payload: bytearray, flags: int) -> bytearray:
    if not flags & h2.FLAG_PADDED:
        return payload
    if not payload or payload[0] >= len(payload):
        raise _ConnectionError(h2.PROTOCOL_ERROR, "bad padding")
    return payload[1 : len(payload) - payload[0]]


class GrpcConnection(asyncio.Protocol):
    """Serves unary gRPC calls on one HTTP/2 (h2c, prior knowledge) connection."""

    def __init__(
        self, options: ConnectionOptions, on_lost: Callable[[GrpcConnection], None]
    ) -> None:
        self._options = options
        self._on_lost = on_lost
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._preface_done = False
        self._settings_seen = False
        self._decoder = hpack.Decoder(max_header_list_size=options.max_header_list_size)
        self._continuation: tuple[int, bytearray, bool] | None = None
        self._streams: dict[int, _Stream] = {}
        self._blocked: dict[int, _Stream] = {}
        self._last_stream_id = 0
        self._send_window = h2.DEFAULT_WINDOW
        self._recv_window = options.window
        self._recv_unacked = 0
        self._peer_initial_window = h2.DEFAULT_WINDOW
        self._peer_max_frame = h2.DEFAULT_MAX_FRAME
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._draining = False
        self.closed = False

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        extra = self._options.window - h2.DEFAULT_WINDOW
        self._out.append(self._options.settings_frame())
        if extra > 0:
            self._out.append(h2.window_update(0, extra))
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for stream in self._streams.values():
            self._cancel(stream)
        self._streams.clear()
        self._blocked.clear()
        self._on_lost(self)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._preface_done:
            if len(buf) < len(h2.PREFACE):
                if not h2.PREFACE.startswith(buf):
                    self._abort()
                return
            if not buf.startswith(h2.PREFACE):
                self._abort()
                return
            del buf[: len(h2.PREFACE)]
            self._preface_done = True
        try:
            self._read_frames(buf)
        except _ConnectionError as exc:
            self._fail(exc.code, str(exc))
            return
        self._flush()

    # -- frame dispatch ------------------------------------------------------------------

    def _read_frames(self, buf: bytearray) -> None:
        pos = 0
        size = len(buf)
        unpack = _HEADER.unpack_from
        try:
            while size - pos >= _HEADER_SIZE and not self.closed:
                high, low, ftype, flags, stream_id = unpack(buf, pos)
                length = high << 8 | low
                if length > h2.DEFAULT_MAX_FRAME:
                    raise _ConnectionError(h2.FRAME_SIZE_ERROR, "frame larger than advertised")
                end = pos + _HEADER_SIZE + length
                if end > size:
                    break
                payload = buf[pos + _HEADER_SIZE : end]
                pos = end
                stream_id &= _MASK
                if self._continuation is not None and ftype != h2.CONTINUATION:
                    raise _ConnectionError(h2.PROTOCOL_ERROR, "expected CONTINUATION")
                if not self._settings_seen:
                    if ftype != h2.SETTINGS or flags & h2.FLAG_ACK:
                        raise _ConnectionError(h2.PROTOCOL_ERROR, "preface without SETTINGS")
                    self._settings_seen = True
                if ftype == h2.DATA:
                    self._on_data(flags, stream_id, payload)
                elif ftype == h2.HEADERS:
                    self._on_headers(flags, stream_id, payload)
                elif ftype == h2.CONTINUATION:
                    self._on_continuation(flags, stream_id, payload)
                elif ftype == h2.WINDOW_UPDATE:
                    self._on_window_update(stream_id, payload)
                elif ftype == h2.SETTINGS:
                    self._on_settings(flags, stream_id, payload)
                elif ftype == h2.PING:
                    self._on_ping(flags, stream_id, payload)
                elif ftype == h2.RST_STREAM:
                    self._on_rst_stream(stream_id, payload)
                elif ftype == h2.GOAWAY:
                    self._on_goaway(stream_id)
                elif ftype == h2.PUSH_PROMISE:
                    raise _ConnectionError(h2.PROTOCOL_ERROR, "PUSH_PROMISE from a client")
                elif ftype == h2.PRIORITY and stream_id == 0:
                    raise _ConnectionError(h2.PROTOCOL_ERROR, "PRIORITY on stream 0")
                # PRIORITY and unknown frame types are ignored.
        finally:
            del buf[:pos]

    def _on_data(self, flags: int, stream_id: int, payload: bytearray) -> None:
        if stream_id == 0:
            raise _ConnectionError(h2.PROTOCOL_ERROR, "DATA on stream 0")
        consumed = len(payload)
        self._recv_window -= consumed
        if self._recv_window < 0:
            raise _ConnectionError(h2.FLOW_CONTROL_ERROR, "connection window exceeded")
        self._recv_unacked += consumed
        if self._recv_unacked >= self._options.window >> 1:
            self._out.append(h2.window_update(0, self._recv_unacked))
            self._recv_window += self._recv_unacked
            self._recv_unacked = 0
        stream = self._streams.get(stream_id)
        if stream is None:
            if stream_id > self._last_stream_id:
                raise _ConnectionError(h2.PROTOCOL_ERROR, "DATA on an idle stream")
            return  # a stream we already answered or reset
        if stream.remote_closed:
            self._reset(stream, h2.STREAM_CLOSED)
            return
        stream.recv_window -= consumed
        if stream.recv_window < 0:
            self._reset(stream, h2.FLOW_CONTROL_ERROR)
            return
        if not stream.responded:
            body = stream.body
            body += _unpad(payload, flags)
            if len(body) >= 5:
                declared = _PREFIX.unpack_from(body)[1]
                limit = self._options.max_receive_message_length
                if declared > limit:
                    self._finish_error(
                        stream,
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"Received message larger than max ({declared} vs. {limit})",
                    )
                    return
        if flags & h2.FLAG_END_STREAM:
            stream.remote_closed = True
            self._end_of_request(stream)
            return
        stream.recv_unacked += consumed
        if stream.recv_unacked >= self._options.window >> 1:
            self._out.append(h2.window_update(stream_id, stream.recv_unacked))
            stream.recv_window += stream.recv_unacked
            stream.recv_unacked = 0

    def _on_headers(self, flags: int, stream_id: int, payload: bytearray) -> None:
        if stream_id == 0 or not stream_id & 1:
            raise _ConnectionError(h2.PROTOCOL_ERROR, "HEADERS on a server stream id")
        block = _unpad(payload, flags)
        if flags & h2.FLAG_PRIORITY:
            block = block[5:]
        end_stream = bool(flags & h2.FLAG_END_STREAM)
        if flags & _END_HEADERS:
            self._on_header_block(stream_id, block, end_stream)
        else:
            self._continuation = (stream_id, block, end_stream)

    def _on_continuation(self, flags: int, stream_id: int, payload: bytearray) -> None:
        if self._continuation is None or self._continuation[0] != stream_id:
            raise _ConnectionError(h2.PROTOCOL_ERROR, "unexpected CONTINUATION")
        _, block, end_stream = self._continuation
        block += payload
        if len(block) > 2 * self._options.max_header_list_size:
            raise _ConnectionError(h2.PROTOCOL_ERROR, "header block too large")
        if flags & _END_HEADERS:
            self._continuation = None
            self._on_header_block(stream_id, block, end_stream)

    def _on_header_block(self, stream_id: int, block: bytearray, end_stream: bool) -> None:
        try:
            headers = self._decoder.decode(bytes(block), raw=True)
        except hpack.HPACKError as exc:
            raise _ConnectionError(h2.COMPRESSION_ERROR, f"bad header block: {exc}") from None
        stream = self._streams.get(stream_id)
        if stream is not None:  # trailers: only as the end of the request
            if not end_stream:
                self._reset(stream, h2.PROTOCOL_ERROR)
                return
            stream.remote_closed = True
            self._end_of_request(stream)
            return
        if stream_id <= self._last_stream_id:
            raise _ConnectionError(h2.STREAM_CLOSED, "HEADERS on a closed stream")
        if self._draining:
            return  # above the GOAWAY's last stream id: the client retries elsewhere
        self._last_stream_id = stream_id
        if len(self._streams) >= self._options.max_concurrent_streams:
            self._out.append(h2.rst_stream(stream_id, h2.REFUSED_STREAM))
            return
        stream = _Stream(stream_id, self._peer_initial_window, self._options.window)
        self._streams[stream_id] = stream
        self._start_call(stream, headers)
        if end_stream and stream_id in self._streams:
            stream.remote_closed = True
            self._end_of_request(stream)

    def _start_call(self, stream: _Stream, headers: Iterable[tuple[bytes, bytes]]) -> None:
        path = method = content_type = timeout = b""
        for name, value in headers:
            if name == b":path":
                path = value
            elif name == b":method":
                method = value
            elif name == b"content-type":
                content_type = value
            elif name == b"grpc-timeout":
                timeout = value
            elif name == b"grpc-encoding":
                stream.encoding = value
        if method != b"POST" or not content_type.startswith(b"application/grpc"):
            self._respond_http_error(stream, b"415" if method == b"POST" else b"405")
            return
        handler = self._options.handlers.get(path)
        if handler is None:
            method_name = path.decode("utf-8", "replace")
            self._finish_error(
                stream, grpc.StatusCode.UNIMPLEMENTED, f"Method not found: {method_name}"
            )
            return
        stream.handler = handler
        if timeout:
            seconds = parse_timeout(timeout)
            if seconds is not None:
                stream.deadline = self._loop.time() + seconds

    def _on_window_update(self, stream_id: int, payload: bytearray) -> None:
        if len(payload) != 4:
            raise _ConnectionError(h2.FRAME_SIZE_ERROR, "WINDOW_UPDATE length")
        increment = h2.u32(bytes(payload)) & _MASK
        if stream_id == 0:
            if increment == 0:
                raise _ConnectionError(h2.PROTOCOL_ERROR, "zero window increment")
            self._send_window += increment
            if self._send_window > h2.MAX_WINDOW:
                raise _ConnectionError(h2.FLOW_CONTROL_ERROR, "connection window overflow")
            self._resume_all()
            return
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        if increment == 0:
            self._reset(stream, h2.PROTOCOL_ERROR)
            return
        stream.send_window += increment
        if stream.send_window > h2.MAX_WINDOW:
            self._reset(stream, h2.FLOW_CONTROL_ERROR)
        elif stream.pending is not None:
            self._pump(stream)

    def _on_settings(self, flags: int, stream_id: int, payload: bytearray) -> None:
        if stream_id != 0:
            raise _ConnectionError(h2.PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & h2.FLAG_ACK:
            if payload:
                raise _ConnectionError(h2.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
            return
        if len(payload) % 6:
            raise _ConnectionError(h2.FRAME_SIZE_ERROR, "SETTINGS length")
        for identifier, value in h2.parse_settings(bytes(payload)):
            if identifier == h2.SETTINGS_INITIAL_WINDOW_SIZE:
                if value > h2.MAX_WINDOW:
                    raise _ConnectionError(h2.FLOW_CONTROL_ERROR, "initial window too large")
                delta = value - self._peer_initial_window
                self._peer_initial_window = value
                for stream in self._streams.values():
                    stream.send_window += delta
            elif identifier == h2.SETTINGS_MAX_FRAME_SIZE:
                if not h2.DEFAULT_MAX_FRAME <= value <= h2.MAX_FRAME_LIMIT:
                    raise _ConnectionError(h2.PROTOCOL_ERROR, "MAX_FRAME_SIZE out of range")
                self._peer_max_frame = value
        self._out.append(h2.SETTINGS_ACK)
        self._resume_all()

    def _on_ping(self, flags: int, stream_id: int, payload: bytearray) -> None:
        if stream_id != 0:
            raise _ConnectionError(h2.PROTOCOL_ERROR, "PING on a stream")
        if len(payload) != 8:
            raise _ConnectionError(h2.FRAME_SIZE_ERROR, "PING length")
        if not flags & h2.FLAG_ACK:
            self._out.append(h2.frame(h2.PING, h2.FLAG_ACK, 0, bytes(payload)))

    def _on_rst_stream(self, stream_id: int, payload: bytearray) -> None:
        if stream_id == 0:
            raise _ConnectionError(h2.PROTOCOL_ERROR, "RST_STREAM on stream 0")
        if len(payload) != 4:
            raise _ConnectionError(h2.FRAME_SIZE_ERROR, "RST_STREAM length")
        stream = self._streams.get(stream_id)
        if stream is not None:
            self._drop(stream)

    def _on_goaway(self, stream_id: int) -> None:
        if stream_id != 0:
            raise _ConnectionError(h2.PROTOCOL_ERROR, "GOAWAY on a stream")
        self._draining = True
        self._close_if_idle()

    # -- calls ---------------------------------------------------------------------------

    def _end_of_request(self, stream: _Stream) -> None:
        if stream.responded:
            self._drop(stream)
            return
        body = stream.body
        if len(body) < 5:
            self._finish_error(stream, grpc.StatusCode.INTERNAL, "Missing request message")
            return
        compressed, length = _PREFIX.unpack_from(body)
        if compressed:
            if stream.encoding in (None, b"identity"):
                message = "Compressed message without grpc-encoding"
                self._finish_error(stream, grpc.StatusCode.INTERNAL, message)
            else:
                encoding = (stream.encoding or b"").decode("ascii", "replace")
                message = f"Compression algorithm {encoding!r} not supported"
                self._finish_error(stream, grpc.StatusCode.UNIMPLEMENTED, message)
            return
        if length + 5 != len(body):
            message = "Expected exactly one request message"
            self._finish_error(stream, grpc.StatusCode.INTERNAL, message)
            return
        request = bytes(body[5:])
        stream.body = bytearray()
        stream.task = self._loop.create_task(self._call(stream, request))
        if stream.deadline is not None:
            stream.timer = self._loop.call_at(stream.deadline, self._expire, stream)

    async def _call(self, stream: _Stream, request: bytes) -> None:
        handler = stream.handler
        assert handler is not None
        try:
            reply = await handler(request)
        except GrpcError as exc:
            self._finish_error(stream, exc.code, exc.message)
        except asyncio.CancelledError:
            return  # reset by the client, past its deadline, or the connection went away
        except Exception as exc:
            log.exception("gRPC handler failed", extra={"stream": stream.id})
            message = f"Exception calling application: {exc}"
            self._finish_error(stream, grpc.StatusCode.UNKNOWN, message)
        else:
            self._finish_ok(stream, reply)

    def _expire(self, stream: _Stream) -> None:
        stream.timer = None
        self._finish_error(stream, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")

    def _finish_ok(self, stream: _Stream, reply: bytes) -> None:
        if stream.responded or self.closed:
            return
        stream.responded = True
        if stream.timer is not None:
            stream.timer.cancel()
            stream.timer = None
        sid = stream.id
        size = len(reply) + 5
        head = _HEADER.pack(0, _HEADERS_LEN, h2.HEADERS, _END_HEADERS, sid) + RESPONSE_HEADERS
        trailers = _HEADER.pack(0, _TRAILER_LEN, h2.HEADERS, _END_ALL, sid) + OK_TRAILERS
        if size <= min(self._send_window, stream.send_window, self._peer_max_frame):
            self._send_window -= size
            stream.send_window -= size
            data = _HEADER.pack(size >> 8, size & 0xFF, h2.DATA, 0, sid)
            self._write(b"".join((head, data, _PREFIX.pack(0, len(reply)), reply, trailers)))
            self._done(stream)
            return
        self._write(head)
        stream.pending = memoryview(_PREFIX.pack(0, len(reply)) + reply)
        stream.trailers = trailers
        self._pump(stream)

    def _finish_error(self, stream: _Stream, code: grpc.StatusCode, message: str) -> None:
        if stream.responded or self.closed:
            return
        stream.responded = True
        self._cancel(stream)
        block = trailers_only(code, message)
        self._write(h2.frame(h2.HEADERS, _END_ALL, stream.id, block))
        self._done(stream)

    def _respond_http_error(self, stream: _Stream, status: bytes) -> None:
        stream.responded = True
        block = fields.literal(b":status", status)
        self._write(h2.frame(h2.HEADERS, _END_ALL, stream.id, block))
        self._done(stream)

    def _pump(self, stream: _Stream) -> None:
        """Send as much of the stream's pending DATA as both windows allow, then trailers."""
        pending = stream.pending
        assert pending is not None
        sent = 0
        while sent < len(pending):
            chunk = min(
                len(pending) - sent, self._send_window, stream.send_window, self._peer_max_frame
            )
            if chunk <= 0:
                stream.pending = pending[sent:]
                self._blocked[stream.id] = stream
                return
            self._write(h2.frame(h2.DATA, 0, stream.id, bytes(pending[sent : sent + chunk])))
            self._send_window -= chunk
            stream.send_window -= chunk
            sent += chunk
        stream.pending = None
        self._blocked.pop(stream.id, None)
        self._write(stream.trailers)
        self._done(stream)

    def _resume_all(self) -> None:
        for stream in list(self._blocked.values()):
            if self._send_window <= 0:
                return
            self._pump(stream)

    def _done(self, stream: _Stream) -> None:
        """The response is complete: forget the stream (asking the client to stop sending
        a request body we no longer read)."""
        if stream.pending is not None:
            return
        if not stream.remote_closed:
            self._write(h2.rst_stream(stream.id, h2.NO_ERROR))
        self._streams.pop(stream.id, None)
        self._close_if_idle()

    def _reset(self, stream: _Stream, code: int) -> None:
        self._write(h2.rst_stream(stream.id, code))
        self._drop(stream)

    def _drop(self, stream: _Stream) -> None:
        stream.responded = True
        self._cancel(stream)
        self._streams.pop(stream.id, None)
        self._blocked.pop(stream.id, None)
        self._close_if_idle()

    @staticmethod
    def _cancel(stream: _Stream) -> None:
        if stream.timer is not None:
            stream.timer.cancel()
            stream.timer = None
        task = stream.task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    # -- output and lifecycle ------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self._flush()

    def _flush(self) -> None:
        if self._out and self._transport is not None and not self.closed:
            self._transport.write(b"".join(self._out))
        self._out.clear()

    @property
    def active_streams(self) -> int:
        return len(self._streams)

    def drain(self) -> None:
        """Graceful shutdown: GOAWAY now, close once the streams it admits are answered."""
        if self.closed or self._draining:
            return
        self._draining = True
        self._out.append(h2.goaway(self._last_stream_id, h2.NO_ERROR))
        self._flush()
        self._close_if_idle()

    def _close_if_idle(self) -> None:
        if self._draining and not self._streams and not self.closed:
            self._flush()
            self.close()

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self.closed = True
            self._transport.close()

    def _fail(self, code: int, debug: str) -> None:
        log.info("closing HTTP/2 connection: %s", debug)
        self._out.append(h2.goaway(self._last_stream_id, code, debug.encode()))
        self._flush()
        self.close()

    def _abort(self) -> None:
        """Not HTTP/2 with prior knowledge: nothing we could say would be understood."""
        self.close()
