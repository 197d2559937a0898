"""gRPC-over-HTTP/2 conventions the lean server needs: status codes, trailers, timeouts.

Kept apart from the connection so the byte formats can be tested (and precomputed) alone.
"""

from __future__ import annotations

import struct

import grpc

from meshguard.common.http2 import fields

# gRPC message prefix: compressed flag, big-endian length.
MESSAGE_PREFIX = struct.Struct(">BI")

CONTENT_TYPE = b"application/grpc"

RESPONSE_HEADERS = fields.STATUS_200 + fields.literal(b"content-type", CONTENT_TYPE)
OK_TRAILERS = fields.literal(b"grpc-status", b"0")

_TIMEOUT_UNITS = {
    ord("H"): 3600.0,
    ord("M"): 60.0,
    ord("S"): 1.0,
    ord("m"): 1e-3,
    ord("u"): 1e-6,
    ord("n"): 1e-9,
}
_PLAIN = frozenset(range(0x20, 0x7F)) - {ord("%")}


class GrpcError(Exception):
    """Raised by a handler to end its call with ``code`` and ``message`` (grpc-message)."""

    def __init__(self, code: grpc.StatusCode, message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def status_number(code: grpc.StatusCode) -> int:
    number: int = code.value[0]
    return number


def percent_encode(message: str) -> bytes:
    """grpc-message's encoding: printable ASCII except ``%`` as is, every other byte as %XX."""
    raw = message.encode("utf-8", "replace")
    if all(b in _PLAIN for b in raw):
        return raw
    return b"".join(bytes((b,)) if b in _PLAIN else b"%%%02X" % b for b in raw)


def status_fields(code: grpc.StatusCode, message: str) -> bytes:
    """The grpc-status / grpc-message part of a trailer block."""
    out = fields.literal(b"grpc-status", str(status_number(code)).encode())
    if message:
        out += fields.literal(b"grpc-message", percent_encode(message)[:8192])
    return out


def trailers_only(code: grpc.StatusCode, message: str) -> bytes:
    """A whole error response in one header block (gRPC's Trailers-Only form)."""
    return RESPONSE_HEADERS + status_fields(code, message)


def parse_timeout(value: bytes) -> float | None:
    """Seconds from a ``grpc-timeout`` value (``100m``, ``5S``), None when malformed."""
    if not 2 <= len(value) <= 9 or not value[:-1].isdigit():
        return None
    unit = _TIMEOUT_UNITS.get(value[-1])
    if unit is None:
        return None
    return int(value[:-1]) * unit
