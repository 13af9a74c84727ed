"""The service manager's notification protocol (sd_notify(3)), for ``Type=notify`` units.

``notify(state)`` sends ``KEY=VALUE`` lines to ``$NOTIFY_SOCKET`` (a path, or ``@name`` for
an abstract socket), then waits on a barrier (``BARRIER=1`` with a pipe's write end, which
the manager closes once it has processed every earlier message; systemd ≥ 246). The
barrier matters when the sender exits right after: the manager identifies a message's unit
from the sender's PID, and a message read after its sender died can be dropped
(sd_notify_barrier(3)). The kernel attaches the sender's credentials itself, since the
manager's socket has ``SO_PASSCRED`` set.
"""

from __future__ import annotations

import array
import os
import select
import socket

from rctlbase.errors import HostError


def _address(path: str) -> str | bytes:
    if path.startswith("@"):
        return b"\0" + path[1:].encode()
    return path


def notify(socket_path: str, state: str, *, barrier_timeout: float = 5.0) -> None:
    """Send ``state`` (``READY=1\\nMAINPID=42``) to the manager, then wait for the barrier."""
    address = _address(socket_path)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), address)
            read_end, write_end = os.pipe2(os.O_CLOEXEC)
            try:
                fds = array.array("i", [write_end])
                sock.sendmsg(
                    [b"BARRIER=1"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)], 0, address
                )
                os.close(write_end)
                write_end = -1
                poller = select.poll()
                poller.register(read_end, select.POLLHUP)
                poller.poll(int(barrier_timeout * 1000))
            finally:
                os.close(read_end)
                if write_end >= 0:
                    os.close(write_end)
    except OSError as exc:
        raise HostError(
            f"cannot notify the service manager at {socket_path}: {exc.strerror}",
            hint="only a Type=notify unit's main process can notify (NotifyAccess=main)",
        ) from exc
