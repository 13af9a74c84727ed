"""Attach and exec sessions over real pipes: framing, stdin, and an exec's end."""

from __future__ import annotations

import os
import threading
import time

from rootless.api.attach import Attachments, Pipes, PipeSession
from rootless.api.execs import ExecSession
from rootless.api.framing import STDERR, STDOUT, unframe


def test_output_is_framed_by_stream_and_ends_with_the_container() -> None:
    pipes = Pipes.make(stdin=True, tty=False)
    session = PipeSession(pipes, False, threading.Event())
    stdin, stdout, stderr = pipes.container_ends()
    os.write(stdout, b"out")
    os.write(stderr, b"err")
    session.feed(b"typed")
    session.close_input()
    assert os.read(stdin, 100) == b"typed"
    pipes.handed_over()  # the unit has its copies; here nobody does: the streams end
    frames = list(unframe(b"".join(session.output())))
    assert sorted(frames) == [(STDOUT, b"out"), (STDERR, b"err")]
    session.close()


def test_a_tty_is_one_raw_stream() -> None:
    pipes = Pipes.make(stdin=False, tty=True)
    session = PipeSession(pipes, True, threading.Event())
    _, stdout, stderr = pipes.container_ends()
    os.write(stdout, b"a")
    os.write(stderr, b"b")
    pipes.handed_over()
    assert b"".join(session.output()) == b"ab"
    session.close()


def test_an_exec_session_ends_only_when_the_command_has() -> None:
    pipes = Pipes.make(stdin=False, tty=False)
    ended = threading.Event()
    session = ExecSession(pipes, False, threading.Event(), ended)
    pipes.handed_over()  # output over at once...
    finished = threading.Event()

    def consume() -> None:
        list(session.output())
        finished.set()

    threading.Thread(target=consume, daemon=True).start()
    time.sleep(0.3)
    assert not finished.is_set()  # ...but the exit code is not known yet
    ended.set()
    assert finished.wait(5)
    session.close()


def test_a_start_takes_the_pipes_of_an_attach_once() -> None:
    attachments = Attachments()
    session = attachments.attach("c1", stdin=False, tty=False, gone=threading.Event())
    pipes = attachments.take("c1")
    assert pipes is not None
    assert attachments.take("c1") is None
    pipes.handed_over()
    session.close()
    left = attachments.attach("c2", stdin=False, tty=False, gone=threading.Event())
    left.close()  # the client left before the start: nothing to hand over
    assert attachments.take("c2") is None
