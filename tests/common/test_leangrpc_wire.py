"""gRPC wire details of the lean server: grpc-message encoding, grpc-timeout, HPACK blocks."""

from __future__ import annotations

import grpc
import hpack
import pytest

from meshguard.common.http2 import fields
from meshguard.common.leangrpc_wire import (
    OK_TRAILERS,
    RESPONSE_HEADERS,
    parse_timeout,
    percent_encode,
    trailers_only,
)


def test_percent_encode_keeps_printable_ascii_and_escapes_the_rest() -> None:
    assert percent_encode("plain text: ok") == b"plain text: ok"
    assert percent_encode("100%\n") == b"100%25%0A"
    assert percent_encode("é") == b"%C3%A9"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(b"5S", 5.0), (b"100m", 0.1), (b"2M", 120.0), (b"1H", 3600.0), (b"250u", 250e-6)],
)
def test_parse_timeout(value: bytes, seconds: float) -> None:
    assert parse_timeout(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [b"", b"S", b"5", b"5x", b"123456789S", b"-1S"])
def test_parse_timeout_rejects_malformed_values(value: bytes) -> None:
    assert parse_timeout(value) is None


@pytest.mark.parametrize(("value", "prefix"), [(5, 7), (126, 7), (127, 7), (1337, 5), (300, 7)])
def test_integer_encoding_round_trips_through_hpack(value: int, prefix: int) -> None:
    assert hpack.hpack.decode_integer(fields.integer(value, prefix), prefix) == (
        value,
        len(fields.integer(value, prefix)),
    )


def test_blocks_decode_without_changing_the_decoder_table() -> None:
    decoder = hpack.Decoder()
    assert decoder.decode(RESPONSE_HEADERS + OK_TRAILERS, raw=True) == [
        (b":status", b"200"),
        (b"content-type", b"application/grpc"),
        (b"grpc-status", b"0"),
    ]
    block = trailers_only(grpc.StatusCode.NOT_FOUND, "x" * 300)
    assert decoder.decode(block, raw=True)[2:] == [
        (b"grpc-status", b"5"),
        (b"grpc-message", b"x" * 300),
    ]
    assert len(decoder.header_table.dynamic_entries) == 0
