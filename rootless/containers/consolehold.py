"""The terminal of a container started without a terminal of the caller's (``run -dt``,
and every API-created container with ``Tty``): the unit's holder process relays it.

The holder has the pseudo-terminal's master from crun. It copies what the container writes
to the unit's standard output (the journal, or an API client's pipe when one attached before
the start) and what arrives on the unit's standard input (an attached client's keystrokes)
to the master, where the terminal's line discipline treats them as typed. A window size
comes through a unix socket beside the console socket (:func:`resize_console`): the master
never leaves the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
import struct
import termios

READ_SIZE = 65536
SIZE = struct.Struct("=HH")  # rows, columns


def resize_path(console_socket: str) -> str:
    """Where the holder of ``console_socket``'s terminal takes window sizes."""
    return f"{console_socket}.resize"


def relay(master: int, stdin: int, stdout: int, control: socket.socket | None) -> None:
    """Copy ``master`` → ``stdout`` and ``stdin`` → ``master`` until the container's side
    closes; apply the window sizes sent to ``control``."""
    sources = [master, stdin]
    if control is not None:
        control.setblocking(False)
        sources.append(control.fileno())
    while True:
        ready, _, _ = select.select(sources, [], [])
        if master in ready:
            try:
                data = os.read(master, READ_SIZE)
            except OSError:  # EIO: the container's side is closed
                return
            if not data:
                return
            _write_all(stdout, data)
        if stdin in ready:
            try:
                data = os.read(stdin, READ_SIZE)
            except OSError:
                data = b""
            if data:
                _write_all(master, data)
            else:  # the client closed its input: the terminal stays, as with docker
                sources.remove(stdin)
        if control is not None and control.fileno() in ready:
            _take_size(control, master)


def _take_size(control: socket.socket, master: int) -> None:
    with contextlib.suppress(OSError):
        conn, _ = control.accept()
        with conn:
            conn.settimeout(1)
            data = conn.recv(SIZE.size)
            if len(data) == SIZE.size:
                rows, columns = SIZE.unpack(data)
                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    with contextlib.suppress(OSError):
        while view:
            view = view[os.write(fd, view) :]


def resize_console(console_socket: str, rows: int, columns: int) -> bool:
    """Ask the holder of ``console_socket``'s terminal to set its window size; False when
    no holder answers (no terminal, or the container is not running)."""
    if not (0 < rows < 2**16 and 0 < columns < 2**16):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(2)
        try:
            conn.connect(resize_path(console_socket))
            conn.sendall(SIZE.pack(rows, columns))
        except OSError:
            return False
    return True
