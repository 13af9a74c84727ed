"""Standard input through the API: ``docker run -it`` and ``docker exec -it`` on a
terminal (driven through a pseudo-terminal here), ``docker run -i`` with piped input, and
``resize``."""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import os
import select
import struct
import subprocess
import termios
import time
from typing import Any

from apikit import BUSYBOX, ApiService, api
from hostkit import wait_for

__all__ = ["api"]

docker: Any = importlib.import_module("docker")


class Terminal:
    """A docker CLI command on a pseudo-terminal of its own, as a person would run it."""

    def __init__(self, service: ApiService, *args: str, rows: int = 24, columns: int = 80):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.proc = subprocess.Popen(
            ["docker", *args], stdin=slave, stdout=slave, stderr=slave, env=service.env,
            start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        self.seen = b""

    def read_until(self, wanted: bytes, timeout: float = 60) -> bytes:
        deadline = time.monotonic() + timeout
        while wanted not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"never saw {wanted!r}; saw {self.seen!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    data = os.read(self.master, 4096)
                except OSError:  # EIO: the command ended
                    data = b""
                if not data:
                    raise AssertionError(f"ended before {wanted!r}; saw {self.seen!r}")
                self.seen += data
        return self.seen

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def finish(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                with contextlib.suppress(OSError):
                    self.seen += os.read(self.master, 4096)
        if self.proc.poll() is None:
            self.proc.kill()
            raise AssertionError(f"still running; saw {self.seen!r}")
        os.close(self.master)
        return self.proc.returncode


def test_run_it_types_into_the_container_terminal(api: ApiService) -> None:
    api.docker("pull", BUSYBOX)
    term = Terminal(api, "run", "--rm", "-it", BUSYBOX, "sh", rows=33, columns=111)
    term.read_until(b"# ")
    term.type("stty size; echo h''i; exit 3\r")  # Enter is a carriage return, as typed
    term.read_until(b"\nhi")
    code = term.finish()
    assert code == 3, term.seen
    assert b"33 111" in term.seen, term.seen  # the client's window size, through resize
    assert api.docker("ps", "-aq").stdout.strip() == ""


def test_exec_it_types_into_the_command_terminal(api: ApiService) -> None:
    api.docker("run", "-d", "--name", "box", BUSYBOX, "sleep", "300")
    term = Terminal(api, "exec", "-it", "box", "sh", rows=40, columns=100)
    term.read_until(b"# ")
    term.type("stty size; echo $((6*7)); exit 4\r")
    term.read_until(b"42")
    assert term.finish() == 4, term.seen
    assert b"40 100" in term.seen, term.seen


def test_run_i_pipes_stdin(api: ApiService) -> None:
    out = api.docker("run", "-i", "--rm", BUSYBOX, "cat", input_data="x\nsecond line\n")
    assert out.stdout == "x\nsecond line\n"
    counted = api.docker("run", "-i", "--rm", BUSYBOX, "wc", "-c", input_data="a" * 200_000)
    assert counted.stdout.strip() == "200000"


def test_resize_reaches_a_detached_terminal(api: ApiService) -> None:
    client = docker.DockerClient(base_url=api.host, timeout=120)
    client.images.pull(BUSYBOX)
    box = client.containers.run(
        BUSYBOX, ["sh", "-c", "while true; do stty size; sleep 0.3; done"], tty=True, detach=True
    )

    def resized() -> bool:
        try:
            box.resize(height=21, width=77)
        except docker.errors.APIError:
            return False  # the terminal is not there yet: docker's CLI retries too
        return b"21 77" in box.logs()

    wait_for("the new window size in the logs", resized, timeout=60)
    try:
        client.api.resize(box.id, height=0, width=0)
    except docker.errors.APIError as exc:
        assert exc.status_code == 400
    else:
        raise AssertionError("a zero window size was accepted")
    plain = client.containers.run(BUSYBOX, ["sleep", "300"], detach=True)
    try:
        plain.resize(height=10, width=10)
    except docker.errors.APIError as exc:
        assert exc.status_code == 409
    else:
        raise AssertionError("a container without a terminal was resized")
    box.remove(force=True)
    plain.remove(force=True)
