"""The shared HTTP/1.1 connection machinery: bodies, limits, refusals, async answers, TLS."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import pytest

from meshguard.common import leanhttp
from meshguard.common.leanhttp import HttpEndpoint, LeanHttpServer, Limits, Request
from meshguard.common.tls import TlsFiles, read_material, server_context


def echo(request: Request) -> bytes:
    """Answers with what the server read: method, target, body."""
    body = f"{request.method} {request.target} ".encode() + request.body
    return leanhttp.render(200, (), body, keep_alive=request.keep_alive, head=request.head)


@pytest.fixture
async def server() -> AsyncIterator[LeanHttpServer]:
    endpoint = HttpEndpoint(echo, limits=Limits(max_body_bytes=16), refusal=lambda s, r: (
        leanhttp.render(s, (), f"refused: {r}", keep_alive=False)))  # fmt: skip
    running = LeanHttpServer(endpoint, "127.0.0.1", 0)
    await running.start()
    yield running
    await running.stop(1.0)


async def read_all(port: int, data: bytes, context: ssl.SSLContext | None = None) -> bytes:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="localhost" if context else None
    )
    writer.write(data)
    try:
        return await asyncio.wait_for(reader.read(), 5)  # until the server closes
    finally:
        writer.close()


async def test_bodies_with_content_length_and_chunked_reach_the_responder(
    server: LeanHttpServer,
) -> None:
    data = (
        b"POST /a?x=1 HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello"
        b"POST /b HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        b"GET /c HTTP/1.1\r\nconnection: close\r\n\r\n"
    )
    received = await read_all(server.port, data)
    assert received.count(b"HTTP/1.1 200 OK") == 3
    assert received.index(b"POST /a?x=1 hello") < received.index(b"POST /b abcde")
    assert received.endswith(b"GET /c ")


async def test_a_body_over_the_limit_gets_the_refusal_then_a_close(server: LeanHttpServer) -> None:
    data = b"POST /a HTTP/1.1\r\ncontent-length: 17\r\n\r\n" + b"x" * 17
    received = await read_all(server.port, data)
    assert received.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    assert received.endswith(b"refused: " + leanhttp.TOO_LARGE.encode())


async def test_a_malformed_request_after_a_good_one(server: LeanHttpServer) -> None:
    received = await read_all(server.port, b"GET /ok HTTP/1.1\r\n\r\nNOT HTTP\r\n\r\n")
    assert received.index(b"200 OK") < received.index(b"400 Bad Request")
    assert received.endswith(leanhttp.MALFORMED.encode())


async def test_awaitable_answers_keep_request_order() -> None:
    release = asyncio.Event()

    async def slow(request: Request) -> bytes:
        await release.wait()
        return echo(request)

    def respond(request: Request) -> bytes | asyncio.Task[bytes]:
        return asyncio.ensure_future(slow(request)) if request.target == "/slow" else echo(request)

    running = LeanHttpServer(HttpEndpoint(respond), "127.0.0.1", 0)
    await running.start()
    try:
        reading = asyncio.create_task(
            read_all(running.port, b"GET /slow HTTP/1.1\r\n\r\nGET /fast HTTP/1.0\r\n\r\n")
        )
        await asyncio.sleep(0.1)
        assert not reading.done()
        release.set()
        received = await reading
        assert received.index(b"GET /slow") < received.index(b"GET /fast")
    finally:
        await running.stop(1.0)


async def test_serves_over_tls(server_tls: TlsFiles) -> None:
    assert server_tls.ca
    running = LeanHttpServer(
        HttpEndpoint(echo), "127.0.0.1", 0, ssl_context=server_context(read_material(server_tls))
    )
    await running.start()
    try:
        client = ssl.create_default_context(cafile=str(server_tls.ca))
        data = b"POST /t HTTP/1.1\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
        received = await read_all(running.port, data, client)
        assert received.startswith(b"HTTP/1.1 200 OK") and received.endswith(b"POST /t ok")
    finally:
        await running.stop(1.0)


def test_render_announces_but_omits_the_body_of_a_head_answer() -> None:
    rendered = leanhttp.render(200, (("x-a", "1"),), b"abc", keep_alive=True, head=True)
    assert rendered == b"HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: 3\r\n\r\n"
