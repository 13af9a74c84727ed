"""The terminal holder's relay: output out, typed input in, window sizes applied."""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios
import threading
import tty
from pathlib import Path

from rootless.containers.consolehold import relay, resize_console, resize_path


def test_relay_types_input_prints_output_and_resizes(tmp_path: Path) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    console = str(tmp_path / "console.sock")
    control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    control.bind(resize_path(console))
    control.listen(4)
    worker = threading.Thread(target=relay, args=(master, stdin_r, stdout_w, control))
    worker.start()
    try:
        os.write(stdin_w, b"typed")
        assert os.read(slave, 100) == b"typed"
        os.close(stdin_w)  # the client's input ends: the terminal stays
        os.write(slave, b"printed")
        assert os.read(stdout_r, 100) == b"printed"
        assert resize_console(console, 33, 111)
        for _ in range(500):  # applied by the relay's thread: 10 s at most on a loaded machine
            size = fcntl.ioctl(slave, termios.TIOCGWINSZ, b"\0" * 8)
            if struct.unpack("HHHH", size)[:2] == (33, 111):
                break
            threading.Event().wait(0.02)
        assert struct.unpack("HHHH", size)[:2] == (33, 111)
        assert not resize_console(console, 0, 80)
        assert not resize_console(str(tmp_path / "none.sock"), 24, 80)
    finally:
        os.close(slave)  # the container's side closes: the relay ends
        worker.join(5)
        control.close()
    assert not worker.is_alive()
