"""``run -t``: the container's terminal, relayed to ours.

crun makes the pseudo-terminal inside the container (so the shell gets a controlling
terminal and job control) and sends its master side over ``--console-socket`` to the socket
this module listens on; the CLI then copies bytes between the master and its own terminal,
in raw mode while the container runs, and passes window-size changes on.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import select
import signal
import socket
import sys
import termios
import threading
import tty
from pathlib import Path
from typing import Any

import click


class ConsoleRelay:
    """Listen for crun's console master; relay it to this process's terminal."""

    def __init__(self, path: Path, interactive: bool) -> None:
        self.path = path
        self.interactive = interactive
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path.unlink(missing_ok=True)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.master: int | None = None
        self.saved: list[Any] | None = None
        self.thread: threading.Thread | None = None

    def attach(self, timeout: float = 30) -> None:
        """Receive the master from crun and start relaying (call once the unit runs)."""
        self.listener.settimeout(timeout)
        try:
            conn, _ = self.listener.accept()
        except TimeoutError:
            raise click.ClickException("the container's terminal never arrived from crun") from None
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        self.master = fds[0]
        self.resize()
        if sys.stdout.isatty():
            signal.signal(signal.SIGWINCH, lambda *_: self.resize())
        if self.interactive and sys.stdin.isatty():
            self.saved = termios.tcgetattr(0)
            tty.setraw(0)
        self.thread = threading.Thread(target=self.pump, daemon=True)
        self.thread.start()

    def resize(self) -> None:
        if self.master is None or not sys.stdout.isatty():
            return
        size = array.array("H", [0, 0, 0, 0])
        with contextlib.suppress(OSError):
            fcntl.ioctl(1, termios.TIOCGWINSZ, size, True)
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)

    def pump(self) -> None:
        assert self.master is not None
        sources = [self.master, *([0] if self.interactive else [])]
        while True:
            ready, _, _ = select.select(sources, [], [])
            if self.master in ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO: the container's side closed
                    return
                if not data:
                    return
                os.write(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if not data:
                    sources.remove(0)
                    continue
                os.write(self.master, data)

    def close(self) -> None:
        """Wait for the last output, restore our terminal, remove the socket."""
        if self.thread is not None:
            self.thread.join(timeout=2)
        if self.saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)
        if self.master is not None:
            os.close(self.master)
        self.listener.close()
        self.path.unlink(missing_ok=True)
