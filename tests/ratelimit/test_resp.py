"""RESP encoding and incremental reply parsing of the lean Redis client."""

from __future__ import annotations

from meshguard.ratelimit.resp import ReplyError, _Parser, encode


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
