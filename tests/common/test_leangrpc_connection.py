"""The lean server's HTTP/2 handling, frame by frame over a raw socket."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import grpc
import hpack
import pytest

from meshguard.common.http2 import frames as h2
from meshguard.common.leangrpc import LeanGrpcServer

PATH = "/test.Echo/Echo"


async def echo(request: bytes) -> bytes:
    return request


@pytest.fixture
async def server() -> AsyncIterator[LeanGrpcServer]:
    lean = LeanGrpcServer({PATH: echo}, host="127.0.0.1")
    await lean.start()
    yield lean
    await lean.stop(0)


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()

    @classmethod
    async def connect(cls, port: int, preface: bytes = h2.PREFACE) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(preface)
        return cls(reader, writer)

    def send(self, ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> None:
        self.writer.write(h2.frame(ftype, flags, stream_id, payload))

    async def read_frame(self) -> tuple[int, int, int, bytes]:
        head = await asyncio.wait_for(self.reader.readexactly(9), 5)
        high, low, ftype, flags, stream_id = h2.HEADER.unpack(head)
        payload = await asyncio.wait_for(self.reader.readexactly(high << 8 | low), 5)
        return ftype, flags, stream_id, payload

    async def frames_until(self, ftype: int) -> list[tuple[int, int, int, bytes]]:
        seen = []
        while True:
            frame = await self.read_frame()
            seen.append(frame)
            if frame[0] == ftype:
                return seen

    async def closed(self) -> bool:
        """True once the server closed the connection (after whatever it still sent)."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), 5):
                pass
        except (ConnectionResetError, TimeoutError):
            return False
        return True

    def request_block(self, path: str = PATH) -> bytes:
        return self.encoder.encode(
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", path),
                (":authority", "test"),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
                ("grpc-timeout", "5S"),
            ]
        )

    def message(self, body: bytes) -> bytes:
        return struct.pack(">BI", 0, len(body)) + body

    async def start(self) -> None:
        self.send(h2.SETTINGS, 0, 0)

    async def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def client(server: LeanGrpcServer) -> AsyncIterator[RawClient]:
    raw = await RawClient.connect(server.port)
    await raw.start()
    yield raw
    await raw.close()


async def answer(client: RawClient, stream_id: int) -> tuple[bytes, dict[bytes, bytes]]:
    """The DATA and trailers of ``stream_id``'s response."""
    body = b""
    headers: dict[bytes, bytes] = {}
    while True:
        ftype, flags, sid, payload = await client.read_frame()
        if sid != stream_id:
            continue
        if ftype == h2.DATA:
            body += payload
        elif ftype == h2.HEADERS:
            headers.update(client.decoder.decode(payload, raw=True))
            if flags & h2.FLAG_END_STREAM:
                return body, headers


async def test_server_preface_then_settings_ack_and_ping(client: RawClient) -> None:
    ftype, flags, _, payload = await client.read_frame()
    assert ftype == h2.SETTINGS and not flags & h2.FLAG_ACK
    assert dict(h2.parse_settings(payload))[h2.SETTINGS_INITIAL_WINDOW_SIZE] > h2.DEFAULT_WINDOW
    client.send(h2.PING, 0, 0, b"12345678")
    frames = await client.frames_until(h2.PING)
    assert (h2.SETTINGS, h2.FLAG_ACK, 0, b"") in frames
    assert frames[-1] == (h2.PING, h2.FLAG_ACK, 0, b"12345678")


async def test_headers_split_over_continuation_and_padded_data(client: RawClient) -> None:
    block = client.request_block()
    client.send(h2.HEADERS, 0, 1, block[:5])
    client.send(h2.CONTINUATION, 0, 1, block[5:9])
    client.send(h2.CONTINUATION, h2.FLAG_END_HEADERS, 1, block[9:])
    padded = bytes((3,)) + client.message(b"split") + b"\0\0\0"
    client.send(h2.DATA, h2.FLAG_END_STREAM | h2.FLAG_PADDED, 1, padded)
    body, trailers = await answer(client, 1)
    assert body == client.message(b"split")
    assert trailers[b"grpc-status"] == b"0"
    assert trailers[b":status"] == b"200"


async def test_wrong_content_type_is_http_415(client: RawClient) -> None:
    block = client.encoder.encode(
        [(":method", "POST"), (":scheme", "http"), (":path", PATH), ("content-type", "text/plain")]
    )
    client.send(h2.HEADERS, h2.FLAG_END_HEADERS | h2.FLAG_END_STREAM, 1, block)
    _, headers = await answer(client, 1)
    assert headers[b":status"] == b"415"


async def test_reset_stream_is_forgotten_and_others_continue(client: RawClient) -> None:
    client.send(h2.HEADERS, h2.FLAG_END_HEADERS, 1, client.request_block())
    client.send(h2.RST_STREAM, 0, 1, struct.pack(">I", h2.CANCEL))
    client.send(h2.HEADERS, h2.FLAG_END_HEADERS, 3, client.request_block())
    client.send(h2.DATA, h2.FLAG_END_STREAM, 3, client.message(b"next"))
    body, trailers = await answer(client, 3)
    assert body == client.message(b"next") and trailers[b"grpc-status"] == b"0"


async def test_bad_preface_closes_the_connection(server: LeanGrpcServer) -> None:
    raw = await RawClient.connect(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await raw.closed()
    await raw.close()
    for _ in range(100):
        if server.connections == 0:
            break
        await asyncio.sleep(0.01)
    assert server.connections == 0


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (h2.frame(h2.DATA, 0, 0, b"x"), h2.PROTOCOL_ERROR),
        (h2.frame(h2.HEADERS, h2.FLAG_END_HEADERS, 1, b"\xff\xff\xff\xff"), h2.COMPRESSION_ERROR),
        (h2.frame(h2.HEADERS, h2.FLAG_END_HEADERS, 2, b""), h2.PROTOCOL_ERROR),
        (h2.frame(h2.PING, 0, 0, b"short"), h2.FRAME_SIZE_ERROR),
        (h2.frame(h2.WINDOW_UPDATE, 0, 0, b"\0\0\0\0"), h2.PROTOCOL_ERROR),
        (h2.frame(h2.SETTINGS, 0, 0, b"\0\x05\0\0\0\x01"), h2.PROTOCOL_ERROR),
        (h2.frame(h2.CONTINUATION, h2.FLAG_END_HEADERS, 1, b""), h2.PROTOCOL_ERROR),
        (h2.HEADER.pack(0xFFFF, 0xFF, h2.DATA, 0, 1), h2.FRAME_SIZE_ERROR),
    ],
    ids=[
        "data-on-0",
        "bad-hpack",
        "even-stream",
        "ping-length",
        "zero-window-update",
        "max-frame-size",
        "stray-continuation",
        "oversized",
    ],
)
async def test_malformed_frames_end_the_connection_with_goaway(
    server: LeanGrpcServer, client: RawClient, frame: bytes, code: int
) -> None:
    client.writer.write(frame)
    *_, (_, _, _, payload) = await client.frames_until(h2.GOAWAY)
    assert h2.u32(payload[4:]) == code
    assert await client.closed()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        assert await channel.unary_unary(PATH)(b"alive", timeout=5) == b"alive"


async def test_first_frame_must_be_settings(server: LeanGrpcServer) -> None:
    raw = await RawClient.connect(server.port)
    raw.send(h2.PING, 0, 0, b"12345678")
    *_, (_, _, _, payload) = await raw.frames_until(h2.GOAWAY)
    assert h2.u32(payload[4:]) == h2.PROTOCOL_ERROR
    await raw.close()


async def test_garbage_after_preface_does_not_crash_the_server(server: LeanGrpcServer) -> None:
    for garbage in (b"\0" * 9, bytes(range(256)) * 4):
        raw = await RawClient.connect(server.port)
        raw.writer.write(garbage)
        await raw.closed()
        await raw.close()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        assert await channel.unary_unary(PATH)(b"alive", timeout=5) == b"alive"


async def test_stop_sends_goaway_naming_the_last_stream(
    server: LeanGrpcServer, client: RawClient
) -> None:
    client.send(h2.HEADERS, h2.FLAG_END_HEADERS | h2.FLAG_END_STREAM, 5, client.request_block())
    await answer(client, 5)
    await server.stop(1)
    *_, (_, _, _, payload) = await client.frames_until(h2.GOAWAY)
    assert payload[:8] == struct.pack(">II", 5, h2.NO_ERROR)
    assert await client.closed()
