"""HTTP/2 frame layout: types, flags, error codes, settings, and frame encoders.

Only what a cleartext unary gRPC server needs. Encoders return ``bytes`` ready for the
transport, so the connection code stays a loop of "read header, act, append output".
"""

from __future__ import annotations

import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame header: 24-bit length (as 16 + 8 bits), type, flags, 31-bit stream id.
HEADER = struct.Struct(">HBBBI")
HEADER_SIZE = HEADER.size
_U32 = struct.Struct(">I")
_U32_PAIR = struct.Struct(">II")
_SETTING = struct.Struct(">HI")

DATA = 0x0
HEADERS = 0x1
PRIORITY = 0x2
RST_STREAM = 0x3
SETTINGS = 0x4
PUSH_PROMISE = 0x5
PING = 0x6
GOAWAY = 0x7
WINDOW_UPDATE = 0x8
CONTINUATION = 0x9

FLAG_END_STREAM = 0x1
FLAG_ACK = 0x1
FLAG_END_HEADERS = 0x4
FLAG_PADDED = 0x8
FLAG_PRIORITY = 0x20

NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9

SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6

DEFAULT_WINDOW = 65_535
DEFAULT_MAX_FRAME = 16_384
MAX_FRAME_LIMIT = (1 << 24) - 1
MAX_WINDOW = (1 << 31) - 1
STREAM_MASK = 0x7FFF_FFFF


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    length = len(payload)
    return HEADER.pack(length >> 8, length & 0xFF, ftype, flags, stream_id) + payload


def settings(values: dict[int, int]) -> bytes:
    return frame(SETTINGS, 0, 0, b"".join(_SETTING.pack(k, v) for k, v in values.items()))


SETTINGS_ACK = frame(SETTINGS, FLAG_ACK, 0)


def parse_settings(payload: bytes) -> list[tuple[int, int]]:
    """The (identifier, value) pairs; the caller has checked the length is a multiple of 6."""
    return [_SETTING.unpack_from(payload, i) for i in range(0, len(payload), _SETTING.size)]


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, _U32.pack(increment))


def rst_stream(stream_id: int, code: int) -> bytes:
    return frame(RST_STREAM, 0, stream_id, _U32.pack(code))


def goaway(last_stream_id: int, code: int, debug: bytes = b"") -> bytes:
    return frame(GOAWAY, 0, 0, _U32_PAIR.pack(last_stream_id, code) + debug)


def u32(payload: bytes) -> int:
    """The first four bytes as an unsigned integer (window increments, error codes)."""
    value: int = _U32.unpack_from(payload)[0]
    return value
