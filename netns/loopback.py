"""Bringing up the loopback interface of a new network namespace, without a program.

A new network namespace has ``lo`` down; ``ip link set lo up`` would cost a process start
on every container start, so this does the same with two ioctls (netdevice(7)):
SIOCGIFFLAGS to read the flags, SIOCSIFFLAGS to set IFF_UP.
"""

from __future__ import annotations

import fcntl
import socket
import struct

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
IFNAMSIZ = 16


def loopback_up() -> None:
    """Set ``lo`` up in this process's network namespace (needs CAP_NET_ADMIN there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(f"{IFNAMSIZ}sh", b"lo", 0)
        current = fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, request)
        flags = struct.unpack(f"{IFNAMSIZ}sh", current[: IFNAMSIZ + 2])[1]
        if not flags & IFF_UP:
            fcntl.ioctl(
                sock.fileno(), SIOCSIFFLAGS, struct.pack(f"{IFNAMSIZ}sh", b"lo", flags | IFF_UP)
            )
