"""``docker exec -t`` through the API: the command's terminal, relayed to the client.

crun makes the pseudo-terminal inside the container and sends its master to a socket this
service listens on (as ``rctl exec -t`` does for the CLI's own terminal); the hijacked
connection then reads and writes the master: the client's keystrokes reach the terminal's
line discipline (a typed Enter is a newline, Ctrl-C a SIGINT), ``/exec/{id}/resize`` sets its
window size.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
import struct
import termios
import threading
from collections.abc import Iterator
from pathlib import Path

READ_SIZE = 64 * 1024
POLL_SECONDS = 0.5
ARRIVAL_SECONDS = 30.0  # how long crun may take to send the terminal


class ConsoleSession:
    """A hijacked connection attached to a terminal master that crun sends to ``path``."""

    def __init__(self, path: Path, gone: threading.Event, ended: threading.Event) -> None:
        self.path = path
        self.gone = gone
        self.ended = ended
        self.master: int | None = None
        self.arrived = threading.Event()
        self.closed = False
        self.size: tuple[int, int] | None = None
        self.lock = threading.Lock()
        path.unlink(missing_ok=True)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(1)
        threading.Thread(target=self._receive, name="api-console", daemon=True).start()

    def _receive(self) -> None:
        self.listener.settimeout(POLL_SECONDS)
        waited = 0.0
        try:
            while not (self.closed or self.ended.is_set()) and waited < ARRIVAL_SECONDS:
                try:
                    conn, _ = self.listener.accept()
                except TimeoutError:
                    waited += POLL_SECONDS
                    continue
                with conn:
                    _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
                if fds:
                    with self.lock:
                        if self.closed:
                            os.close(fds[0])
                        else:
                            self.master = fds[0]
                            if self.size is not None:
                                self._apply(*self.size)
                return
        except OSError:
            return
        finally:
            self.arrived.set()
            self.listener.close()
            self.path.unlink(missing_ok=True)

    def output(self) -> Iterator[bytes]:
        while not self.arrived.wait(POLL_SECONDS):
            if self.gone.is_set():
                return
        master = self.master
        while master is not None and not self.gone.is_set() and not self.closed:
            ready, _, _ = select.select([master], [], [], POLL_SECONDS)
            if not ready:
                continue
            try:
                data = os.read(master, READ_SIZE)
            except OSError:  # EIO: the command and all its terminal's users are gone
                break
            if not data:
                break
            yield data
        while not self.ended.wait(POLL_SECONDS) and not self.gone.is_set():
            pass

    def feed(self, data: bytes) -> None:
        self.arrived.wait(ARRIVAL_SECONDS)
        with self.lock:
            master = self.master
            if master is None:
                return
            view = memoryview(data)
            with contextlib.suppress(OSError):
                while view:
                    view = view[os.write(master, view) :]

    def close_input(self) -> None:
        """A terminal has no end of input: docker leaves it open too."""

    def resize(self, rows: int, columns: int) -> None:
        with self.lock:
            self.size = (rows, columns)
            if self.master is not None:
                self._apply(rows, columns)

    def _apply(self, rows: int, columns: int) -> None:
        assert self.master is not None
        with contextlib.suppress(OSError):
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            master, self.master = self.master, None
        if master is not None:
            with contextlib.suppress(OSError):
                os.close(master)
