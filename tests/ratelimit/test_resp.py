"""RESP encoding and incremental reply parsing of the lean Redis client."""

from __future__ import annotations

import asyncio
import time

import pytest

from meshguard.ratelimit.resp import LeanRedis, RedisError, ReplyError, _Parser, encode


def test_encode() -> None:
    assert encode("INCRBY", "k", 5) == b"*3\r\n$6\r\nINCRBY\r\n$1\r\nk\r\n$1\r\n5\r\n"


def test_parser_handles_split_replies() -> None:
    data = b":7\r\n+OK\r\n$3\r\nabc\r\n$-1\r\n*2\r\n:1\r\n$1\r\nx\r\n-ERR nope\r\n"
    parser = _Parser()
    got: list[object] = []
    for i in range(len(data)):
        parser.feed(data[i : i + 1])
        got.extend(parser.replies())
    assert got[:5] == [7, "OK", b"abc", None, [1, b"x"]]
    assert isinstance(got[5], ReplyError) and str(got[5]) == "ERR nope"


async def _read_command(reader: asyncio.StreamReader) -> list[bytes]:
    count = int((await reader.readline())[1:])
    parts = []
    for _ in range(count):
        await reader.readline()  # $<length>
        parts.append((await reader.readline()).rstrip(b"\r\n"))
    return parts


async def test_a_late_reply_times_out_and_is_discarded() -> None:
    """A call past its budget fails with RedisError at once; its reply, arriving later, is not
    handed to the next caller (replies stay matched to their pipelines)."""
    delays = [0.3, 0.0]
    counter = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal counter
        while not reader.at_eof():
            command = await _read_command(reader)
            if command[0] == b"PING":
                writer.write(b"+PONG\r\n")
                continue
            await asyncio.sleep(delays.pop(0))
            counter += 1
            writer.write(b":%d\r\n" % counter)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = LeanRedis("127.0.0.1", port, timeout=0.05)
    try:
        await client.connect()
        started = time.perf_counter()
        with pytest.raises(RedisError, match="timed out after 50 ms"):
            await client.execute([encode("INCR", "k")])
        assert time.perf_counter() - started < 0.25
        await asyncio.sleep(0.35)  # the late reply :1 arrives now
        assert await client.execute([encode("INCR", "k")]) == [2]
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
