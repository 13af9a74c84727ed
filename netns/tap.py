"""A persistent tap device for slirp4netns, made in the container's new network namespace.

slirp4netns makes its tap device itself (TUNSETIFF) unless one of that name exists; then it
attaches to it. When it is the device's maker, its exit unregisters the device, and that
waits for RCU grace periods in the kernel: measured in the test host, slirp4netns died
14-30 ms after SIGTERM, and systemd runs a container's stop hook only once the unit's last
process has gone, so every stop of a container waited that long. Attached to a device made
persistent (TUNSETPERSIST) beforehand, it dies in 0.5 ms; the device is then unregistered
with its network namespace, in the kernel's own time, when the container's last process
has exited (netns cleanup runs in a workqueue), so nothing is left behind.

No program: two ioctls on ``/dev/net/tun`` (linux/if_tun.h), with CAP_NET_ADMIN in the
namespace, which a process has right after unshare(2) of its user namespace.
"""

from __future__ import annotations

import fcntl
import os
import struct

TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFNAMSIZ = 16


def make_persistent_tap(name: str) -> None:
    """Make tap device ``name`` (the flags slirp4netns opens it with) in this process's
    network namespace and keep it after its file descriptor is closed."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        request = struct.pack(f"{IFNAMSIZ}sH", name.encode(), IFF_TAP | IFF_NO_PI)
        fcntl.ioctl(fd, TUNSETIFF, request)
        fcntl.ioctl(fd, TUNSETPERSIST, 1)
    finally:
        os.close(fd)
