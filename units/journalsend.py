"""Writing entries to journald with its native protocol (systemd.journal-fields(7)), without
libsystemd: one datagram per entry on ``/run/systemd/journal/socket``.

Each field is ``KEY=value\\n``, or, for a value holding a newline or other binary data,
``KEY\\n`` + its length as 64-bit little endian + the value + ``\\n`` (the protocol's
binary-safe form). journald adds the trusted fields (``_PID``, ``_UID``, the unit from the
sender's cgroup...). Entries larger than a datagram would be sent through a memfd by
libsystemd; here callers cap what they send (:data:`MAX_MESSAGE`).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Mapping

SOCKET_PATH = "/run/systemd/journal/socket"
MAX_MESSAGE = 48 * 1024


def encode_entry(fields: Mapping[str, str | bytes]) -> bytes:
    """The datagram for one entry (keys: upper case letters, digits and underscores)."""
    out = bytearray()
    for key, value in fields.items():
        raw = value.encode(errors="replace") if isinstance(value, str) else value
        if b"\n" in raw:
            out += key.encode() + b"\n" + struct.pack("<Q", len(raw)) + raw + b"\n"
        else:
            out += key.encode() + b"=" + raw + b"\n"
    return bytes(out)


class JournalSender:
    """A connection-less sender; failures are dropped (logging must not stop the caller)."""

    def __init__(self, path: str = SOCKET_PATH) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def send(self, fields: Mapping[str, str | bytes]) -> bool:
        """Send one entry; False when journald did not take it."""
        try:
            self.sock.sendto(encode_entry(fields), self.path)
        except OSError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()
