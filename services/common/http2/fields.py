"""Response header blocks encoded without HPACK encoder state.

Every field is either an indexed static-table entry (``:status: 200``) or a literal *without
indexing*, so the peer's decoder table never changes and the same bytes are valid on every
connection: blocks can be precomputed once per process.
"""

from __future__ import annotations

STATUS_200 = b"\x88"  # static table index 8


def integer(value: int, prefix_bits: int) -> bytes:
    """An HPACK integer (RFC 7541 §5.1) with the first byte's high bits left zero."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((value,))
    out = bytearray((limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(name: bytes, value: bytes) -> bytes:
    """A literal header field without indexing, with a literal name, no Huffman coding."""
    return b"\x00" + integer(len(name), 7) + name + integer(len(value), 7) + value
