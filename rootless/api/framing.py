"""Docker's multiplexed stream format: each chunk behind an 8-byte header.

The header is the stream (0 stdin, 1 stdout, 2 stderr, 3 the system's error message), three
zero bytes and the payload's length as a big-endian 32-bit number (Docker Engine API,
"Attach to a container", *Stream format*). Containers with a TTY send raw bytes instead.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

STDIN, STDOUT, STDERR, SYSTEM = 0, 1, 2, 3
HEADER = struct.Struct(">BxxxL")
MAX_FRAME = 2**32 - 1


def frame(stream: int, payload: bytes) -> bytes:
    """``payload`` as one or more frames of ``stream`` (empty payloads send nothing)."""
    if stream not in (STDIN, STDOUT, STDERR, SYSTEM):
        raise ValueError(f"no such stream: {stream}")
    out = bytearray()
    for start in range(0, len(payload), MAX_FRAME):
        part = payload[start : start + MAX_FRAME]
        out += HEADER.pack(stream, len(part)) + part
    return bytes(out)


def unframe(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The frames of a whole multiplexed stream (tests and clients); a truncated frame
    raises ValueError."""
    at = 0
    while at < len(data):
        if len(data) - at < HEADER.size:
            raise ValueError("truncated frame header")
        stream, size = HEADER.unpack_from(data, at)
        at += HEADER.size
        if len(data) - at < size:
            raise ValueError("truncated frame payload")
        yield stream, data[at : at + size]
        at += size
