"""units.connection against the in-process bus of fakebus.py, over real unix sockets.

The SASL exchange, Hello, calls and their replies (errors too), signals read while a call
waits, descriptors passed with SCM_RIGHTS, several threads sharing one connection, time
outs and a lost connection; and the import of units.manager leaving dbus-fast's asyncio
side (and its package __init__) alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakebus import FakeBus

from rctlbase.errors import ExternalError
from units.bus import parse_unix_address
from units.connection import Connection, ConnectionLost
from units.manager import UserManager
from units.wire import AuthError, InvalidAddressError, Message, MessageType

ROOT = Path(__file__).resolve().parents[2]


def method(member: str, signature: str = "", body: list[object] | None = None) -> Message:
    return Message(
        destination="com.example.Test",
        path="/com/example",
        interface="com.example.Test",
        member=member,
        signature=signature,
        body=body or [],
    )


def answer(bus: FakeBus, msg: Message) -> bool:
    """Echo: returns its arguments; Fail: an error; Tell: a signal, then the reply;
    Length: the length of its string; Write: writes to the descriptor it got; Never: no reply."""
    if msg.member == "Echo":
        bus.send(bus.reply(msg, msg.signature, list(msg.body)))
    elif msg.member == "Fail":
        bus.send(bus.error(msg, "com.example.Error.Nope", "nope, not that"))
    elif msg.member == "Tell":
        told = bus.signal("/com/example", "com.example.Test", "Told", "s", [msg.body[0]])
        bus.send(told, bus.reply(msg))
    elif msg.member == "Length":
        bus.send(bus.reply(msg, "u", [len(msg.body[0])]))
    elif msg.member == "Write":
        fd = msg.unix_fds[msg.body[0]]
        os.write(fd, b"written by the bus")
        os.close(fd)
        bus.send(bus.reply(msg))
    elif msg.member != "Never":
        return False
    return True


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[FakeBus]:
    fake = FakeBus(tmp_path, answer)
    yield fake
    fake.close()


def test_authenticates_and_says_hello(bus: FakeBus) -> None:
    conn = Connection.open(bus.address, 5)
    try:
        uid = str(os.getuid()).encode().hex().encode()
        assert bus.sasl == [b"\0AUTH EXTERNAL " + uid, b"NEGOTIATE_UNIX_FD", b"BEGIN"]
        assert conn.unique_name == ":1.1"
        assert conn.unix_fds
        assert [m.member for m in bus.calls] == ["Hello"]
    finally:
        conn.close()


def test_works_without_fd_passing(tmp_path: Path) -> None:
    with FakeBus(tmp_path, answer, agree_fds=False) as bus:
        conn = Connection.open(bus.address, 5)
        try:
            assert not conn.unix_fds
            assert conn.call(method("Echo", "s", ["x"]), 5).body == ["x"]
        finally:
            conn.close()


def test_a_refused_authentication_is_an_auth_error(tmp_path: Path) -> None:
    with FakeBus(tmp_path, answer, auth_answer=b"REJECTED EXTERNAL") as bus:
        with pytest.raises(AuthError):
            Connection.open(bus.address, 5)
        with UserManager(bus.address) as manager, pytest.raises(ExternalError) as caught:
            manager.list_units("rctl-")
    assert "refused authentication" in caught.value.message


def test_calls_and_replies(bus: FakeBus) -> None:
    conn = Connection.open(bus.address, 5)
    try:
        reply = conn.call(method("Echo", "sa{sv}", ["hi", {}]), 5)
        assert reply.message_type == MessageType.METHOD_RETURN
        assert reply.body == ["hi", {}]
        error = conn.call(method("Fail"), 5)
        assert error.message_type == MessageType.ERROR
        assert (error.error_name, error.body) == ("com.example.Error.Nope", ["nope, not that"])
        # Bigger than the socket's buffer: written in several parts.
        assert conn.call(method("Length", "s", ["x" * 3_000_000]), 5).body == [3_000_000]
    finally:
        conn.close()


def test_signals_read_while_a_call_waits_go_to_the_handlers(bus: FakeBus) -> None:
    conn = Connection.open(bus.address, 5)
    seen: list[object] = []
    conn.add_signal_handler(lambda msg: seen.append((msg.member, msg.body, len(seen))))
    try:
        conn.call(method("Tell", "s", ["news"]), 5)
        assert seen == [("Told", ["news"], 0)]  # dispatched before the reply was returned
    finally:
        conn.close()


def test_descriptors_go_with_the_message(bus: FakeBus) -> None:
    conn = Connection.open(bus.address, 5)
    read_end, write_end = os.pipe()
    try:
        msg = method("Write", "h", [0])
        msg.unix_fds = [write_end]
        conn.call(msg, 5)
        assert os.read(read_end, 100) == b"written by the bus"
    finally:
        conn.close()
        os.close(read_end)
        os.close(write_end)


def test_threads_share_the_connection(bus: FakeBus) -> None:
    """One thread waits for a signal (and reads); another's call gets its reply meanwhile."""
    conn = Connection.open(bus.address, 5)
    told: list[object] = []
    conn.add_signal_handler(lambda msg: told.append(msg.body[0]))
    waited: list[bool] = []
    waiter = threading.Thread(
        target=lambda: waited.append(conn.wait_until(lambda: "late" in told, None))
    )
    try:
        waiter.start()
        time.sleep(0.05)  # the waiter is reading now
        assert conn.call(method("Echo", "u", [7]), 2).body == [7]
        assert waiter.is_alive()
        conn.call(method("Tell", "s", ["late"]), 2)
        waiter.join(10)
        assert waited == [True]
    finally:
        conn.close()


def test_a_call_times_out_and_its_late_reply_is_dropped(bus: FakeBus) -> None:
    conn = Connection.open(bus.address, 5)
    try:
        with pytest.raises(TimeoutError):
            conn.call(method("Never"), 0.05)
        assert conn.call(method("Echo", "s", ["after"]), 5).body == ["after"]
        assert conn._awaited == set()
        assert conn._replies == {}
    finally:
        conn.close()


def test_a_lost_connection_fails_waits_and_sends(bus: FakeBus) -> None:
    conn = Connection.open(bus.address, 5)
    try:
        threading.Timer(0.05, bus.drop).start()
        with pytest.raises(ConnectionLost):
            conn.call(method("Never"), 5)
        assert conn.lost
        with pytest.raises(ConnectionLost):
            conn.send(method("Echo"))
    finally:
        conn.close()


def test_connect_failures(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Connection.open(f"unix:path={tmp_path}/nothing", 1)
    with pytest.raises(InvalidAddressError):
        Connection.open("tcp:host=localhost,port=1", 1)


def test_unix_addresses() -> None:
    assert parse_unix_address("unix:path=/run/a%20b/bus") == "/run/a b/bus"
    assert parse_unix_address("tcp:host=x;unix:guid=1,abstract=/tmp/dbus-x") == b"\0/tmp/dbus-x"
    with pytest.raises(InvalidAddressError):
        parse_unix_address("unix:tmpdir=/tmp")


def test_importing_the_manager_leaves_asyncio_and_dbus_fast_init_alone() -> None:
    probe = """
import sys
import units.manager
heavy = [m for m in ("asyncio", "xml.etree", "ssl", "logging", "dbus_fast.message_bus")
         if m in sys.modules]
assert not heavy, heavy
from dbus_fast import AuthError  # the real __init__ runs now
import dbus_fast.aio
from units.wire import AuthError as WireAuthError
assert AuthError is WireAuthError
assert "dbus_fast.message_bus" in sys.modules and dbus_fast.aio.MessageBus
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"
