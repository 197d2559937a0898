"""The HTTP flavour over real sockets: contract, keep-alive, pipelining, limits, bad input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
import uvloop

from meshguard.authz import http_api
from meshguard.authz.attributes import RequestAttributes
from meshguard.authz.authorizer import Authorizer, Outcome
from meshguard.authz.decision_log import DecisionLog
from meshguard.authz.runtime import build_runtime
from tests.authz.test_grpc_api import POLICIES, SIGNER, settings

WORKLOAD = {"x-meshguard-namespace": "foo", "x-meshguard-labels": "app=web"}
HEAD = b"x-meshguard-namespace: foo\r\nx-meshguard-labels: app=web\r\nhost: a\r\n"


@pytest.fixture
async def port(tmp_path: Path, free_port: Callable[[], int]) -> AsyncIterator[int]:
    (tmp_path / "policies.yaml").write_text(POLICIES)
    chosen = free_port()
    runtime = build_runtime(settings(tmp_path, http_port=chosen))
    await runtime.start()
    yield chosen
    await runtime.stop()


async def exchange(port: int, data: bytes, responses: int = 1) -> list[tuple[int, bytes, bytes]]:
    """Send raw bytes, read ``responses`` responses (status, head, body), then EOF-or-timeout."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    out = []
    try:
        for _ in range(responses):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            status = int(head.split(b" ", 2)[1])
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            out.append((status, head, await reader.readexactly(length)))
    finally:
        writer.close()
    return out


def request(path: str, extra: bytes = b"", head: bytes = HEAD) -> bytes:
    return b"GET /check" + path.encode() + b" HTTP/1.1\r\n" + head + extra + b"\r\n"


async def test_contract_through_a_client(port: int) -> None:
    base = f"http://127.0.0.1:{port}/check"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/public", headers=WORKLOAD) as r:
            assert r.status == 200
        async with session.get(f"{base}/internal/a", headers=WORKLOAD) as r:
            assert r.status == 403 and await r.text() == "RBAC: access denied"
            assert r.headers["content-type"] == "text/plain; charset=utf-8"
        auth = {**WORKLOAD, "authorization": f"Bearer {SIGNER.token()}"}
        async with session.get(f"{base}/api/x", headers=auth) as r:
            assert r.status == 200
            assert r.headers["x-user"] == "alice"
            assert r.headers["x-envoy-auth-headers-to-remove"] == "authorization"
        async with session.get(
            f"{base}/api/x?q=1", headers={**WORKLOAD, "authorization": "Bearer x"}
        ) as r:
            assert r.status == 401
            assert r.headers["www-authenticate"].startswith('Bearer realm="http://127.0.0.1:')
            assert r.headers["www-authenticate"].endswith('/api/x", error="invalid_token"')
        async with session.get(f"{base}/public", headers={"x-meshguard-source-ip": "nope"}) as r:
            assert r.status == 400 and await r.text() == http_api.INVALID_BODY


def test_to_attributes_reads_the_contract() -> None:
    raw = [
        (b"Host", b"shop"),
        (b"X-Meshguard-Namespace", b"foo"),
        (b"x-meshguard-labels", b"app=web, v=1"),
        (b"x-meshguard-source-ip", b"10.0.0.1"),
        (b"x-meshguard-destination-port", b"8080"),
        (b"x-a", b"1"),
        (b"X-A", b"2"),
        (b"x-forwarded-for", b"198.51.100.9"),
    ]
    attrs = http_api.to_attributes("GET", "/check/p?q=1", raw, "/check", 0)
    assert (attrs.namespace, dict(attrs.labels or {})) == ("foo", {"app": "web", "v": "1"})
    assert str(attrs.source_ip) == "10.0.0.1" and str(attrs.remote_ip) == "198.51.100.9"
    assert attrs.destination_port == 8080
    assert attrs.http is not None and attrs.http.path == "/p?q=1"
    assert dict(attrs.http.headers) == {
        "host": "shop",
        "x-a": "1,2",
        "x-forwarded-for": "198.51.100.9",
        ":authority": "shop",
        ":method": "GET",
        ":path": "/p?q=1",
    }
    assert http_api.to_attributes("GET", "/check", [], "/check", 0).http.path == "/"  # type: ignore[union-attr]
    assert http_api.to_attributes("GET", "/x", [], "/check", 0).labels is None


async def test_pipelined_requests_are_answered_in_order_on_one_connection(port: int) -> None:
    paths = ["/public", "/internal/x", "/public", "/api/x", "/public"]
    data = b"".join(request(p) for p in paths)
    answers = await exchange(port, data, responses=len(paths))
    assert [s for s, _, _ in answers] == [200, 403, 200, 403, 200]
    assert all(b"connection: close" not in head for _, head, _ in answers)


async def test_head_answers_announce_the_body_without_sending_it(port: int) -> None:
    data = b"HEAD /check/internal/x HTTP/1.1\r\n" + HEAD + b"\r\n" + request("/public")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    denied = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert denied.startswith(b"HTTP/1.1 403 ") and b"content-length: 19\r\n" in denied
    following = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.close()
    assert following == b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


async def test_connection_close_is_honoured(port: int) -> None:
    data = request("/public", b"connection: close\r\n") + request("/public")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    received = await asyncio.wait_for(reader.read(), 5)  # until the server closes
    writer.close()
    assert received.count(b"HTTP/1.1 ") == 1 and b"connection: close" in received


async def test_http10_closes_after_the_answer(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /check/public HTTP/1.0\r\n" + HEAD + b"\r\n")
    received = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"GET /check/public HTTP/1.1\r\nbad header line\r\n\r\n", 400),
        (request("/public", b"x-big: " + b"a" * (http_api.MAX_HEAD_BYTES + 1) + b"\r\n"), 400),
        (
            b"POST /check/public HTTP/1.1\r\n"
            + HEAD
            + f"content-length: {http_api.MAX_BODY_BYTES + 1}\r\n\r\n".encode()
            + b"b" * (http_api.MAX_BODY_BYTES + 1),
            413,
        ),
    ],
    ids=["garbage", "bad-header", "head-too-large", "body-too-large"],
)
async def test_bad_input_is_answered_then_closed(port: int, data: bytes, status: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    received = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert received.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"connection: close" in received
    # The server survives and keeps answering other connections.
    [(ok, _, _)] = await exchange(port, request("/public"))
    assert ok == 200


async def test_an_upgrade_request_is_answered_then_closed(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request("/public", b"upgrade: h2c\r\nconnection: upgrade\r\n") + b"junk")
    received = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert received == b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


async def test_a_body_under_the_limit_is_ignored(port: int) -> None:
    data = b"POST /check/public HTTP/1.1\r\n" + HEAD + b"content-length: 5\r\n\r\nhello"
    answers = await exchange(port, data + request("/internal/x"), responses=2)
    assert [s for s, _, _ in answers] == [200, 403]


def test_render_refuses_header_injection() -> None:
    with pytest.raises(ValueError, match="line break"):
        http_api.render(200, (("x-user", "a\r\nx-evil: 1"),), "", keep_alive=True)
    rendered = http_api.render(403, (), "no", keep_alive=False)
    assert rendered == (
        b"HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno"
    )


class SlowFirst(Authorizer):
    """Allows everything; ``/slow`` only once ``release`` is set (as a JWKS fetch would)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def check(self, attrs: RequestAttributes) -> Outcome:
        if attrs.http is not None and attrs.http.path == "/slow":
            await self.release.wait()
            return Outcome(False, 403, "test", "slow")
        return Outcome(True, 200, "test")


async def test_a_suspended_check_keeps_later_answers_behind_it() -> None:
    await suspended_check_keeps_order()


def test_serves_on_uvloop() -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(suspended_check_keeps_order())


async def suspended_check_keeps_order() -> None:
    authorizer = SlowFirst()
    service = http_api.HttpAuthorization(authorizer, DecisionLog(), path_prefix="/check")
    server = service.server("127.0.0.1", 0)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request("/slow") + request("/fast"))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 0.2)
        authorizer.release.set()
        received = b""
        while received.count(b"HTTP/1.1") < 2:
            chunk = await asyncio.wait_for(reader.read(4096), 5)
            assert chunk, f"connection closed after {received!r}"
            received += chunk
        assert received.index(b"403 Forbidden") < received.index(b"200 OK")
        writer.close()
    finally:
        await server.stop(1.0)


async def test_stop_answers_checks_in_flight_then_refuses_connections() -> None:
    """SIGTERM drain: a check waiting (e.g. on a JWKS fetch) still gets its answer."""
    authorizer = SlowFirst()
    service = http_api.HttpAuthorization(authorizer, DecisionLog(), path_prefix="/check")
    server = service.server("127.0.0.1", 0)
    await server.start()
    port = server.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request("/slow"))
    await writer.drain()
    await asyncio.sleep(0.05)
    stopping = asyncio.create_task(server.stop(5.0))
    await asyncio.sleep(0.05)
    assert not stopping.done(), "stop waits for the check in flight"
    authorizer.release.set()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 403")
    await asyncio.wait_for(stopping, 5)
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
