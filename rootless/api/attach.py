"""Attaching clients to a container's standard streams through pipes.

Docker clients attach *before* they start a container (``docker run``: create, attach,
start, wait). An attach to a container that is not running makes pipes and leaves their
container ends in :class:`Attachments`; the start that follows hands them to the unit as its
stdin, stdout and stderr (systemd passes them to the container), and closes this process's
copies, so that the output pipes end when the container does. The client's side is a
:class:`PipeSession`: what the container writes, multiplexed into frames (raw with a TTY),
and what the client sends, written to the container's stdin.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from rootless.api.framing import STDERR, STDOUT, frame

READ_SIZE = 64 * 1024
POLL_SECONDS = 0.5  # how often a quiet stream looks whether its client left


@dataclass(slots=True)
class Pipes:
    """The two ends of a container's three streams."""

    stdin_read: int  # the container's stdin (/dev/null without stdin)
    stdout_write: int
    stderr_write: int
    stdin_write: int | None
    stdout_read: int
    stderr_read: int | None  # None: stderr goes with stdout (a TTY)
    handed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def make(cls, stdin: bool, tty: bool) -> Pipes:
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        if tty:
            err_r, err_w = None, os.dup(out_w)
        else:
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
        if stdin:
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
        else:
            in_r, in_w = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), None
        return cls(in_r, out_w, err_w, in_w, out_r, err_r)

    def container_ends(self) -> tuple[int, int, int]:
        return self.stdin_read, self.stdout_write, self.stderr_write

    def handed_over(self) -> None:
        """The unit has its ends (systemd duplicated them): close ours, so the output
        pipes end with the container."""
        with self.lock:
            if not self.handed:
                self.handed = True
                for fd in self.container_ends():
                    with contextlib.suppress(OSError):
                        os.close(fd)


class PipeSession:
    """A hijacked connection attached to :class:`Pipes`."""

    def __init__(self, pipes: Pipes, tty: bool, gone: threading.Event,
                 release: object = None) -> None:  # fmt: skip
        self.pipes = pipes
        self.tty = tty
        self.gone = gone
        self.closed = False
        self.release = release

    def output(self) -> Iterator[bytes]:
        streams = {self.pipes.stdout_read: STDOUT}
        if self.pipes.stderr_read is not None:
            streams[self.pipes.stderr_read] = STDERR
        while streams and not self.gone.is_set() and not self.closed:
            ready, _, _ = select.select(list(streams), [], [], POLL_SECONDS)
            for fd in ready:
                try:
                    data = os.read(fd, READ_SIZE)
                except OSError:
                    data = b""
                if not data:
                    del streams[fd]
                    continue
                yield data if self.tty else frame(streams[fd], data)

    def feed(self, data: bytes) -> None:
        fd = self.pipes.stdin_write
        if fd is None:
            return
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError:
            self.close_input()  # the container closed its stdin: drop the rest

    def close_input(self) -> None:
        with self.pipes.lock:
            fd, self.pipes.stdin_write = self.pipes.stdin_write, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_input()
        self.pipes.handed_over()  # never started: the container's ends go too
        for fd in (self.pipes.stdout_read, self.pipes.stderr_read):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if callable(self.release):
            self.release()


class Attachments:
    """Pipes waiting for their container's start, by container ID (one per container:
    a second attach before the start replaces nothing and shares the stream)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[str, Pipes] = {}

    def attach(
        self, container_id: str, stdin: bool, tty: bool, gone: threading.Event
    ) -> PipeSession:
        pipes = Pipes.make(stdin, tty)
        with self.lock:
            old = self.pending.pop(container_id, None)
            self.pending[container_id] = pipes
        if old is not None:
            old.handed_over()

        def release() -> None:
            with self.lock:
                if self.pending.get(container_id) is pipes:
                    del self.pending[container_id]

        return PipeSession(pipes, tty, gone, release)

    def take(self, container_id: str) -> Pipes | None:
        """The pipes a start should hand to the unit, if a client is attached."""
        with self.lock:
            pipes = self.pending.pop(container_id, None)
        if pipes is None or pipes.handed:
            return None
        return pipes
