"""A blocking D-Bus connection over a unix socket, shared by threads.

dbus-fast brings the wire format (:mod:`units.wire`) and asyncio or GLib transports;
rctl's engine and CLI are synchronous, and an asyncio loop in a thread cost more at import
than the whole D-Bus exchange of a command. This is the missing blocking transport, just
what talking to the service manager needs: connect to a ``unix:path=`` (or
``unix:abstract=``) address, authenticate with SASL ``EXTERNAL`` and negotiate fd passing
(D-Bus specification, "Authentication Protocol"), ``Hello``, then send messages (with
``SCM_RIGHTS`` when they carry descriptors) and read replies and signals.

Threads share one connection (``rctl run`` waits for its unit in the main thread while a
signal relay thread calls ``KillUnit``), so:

- sending is serialized by a lock, and every message is written whole;
- one thread at a time reads the socket (whichever waits first), and dispatches every
  message it reads: method returns and errors go to the thread waiting for that serial,
  signals to the handlers. Others wait on :attr:`Connection.lock`, a condition notified
  after each batch, and one of them takes over reading when the reader is done.

Signal handlers run in the reading thread with :attr:`Connection.lock` held: they must only
update state (that callers guard with the same lock) and never call the connection.
A read or write failure, or the bus closing the socket, marks the connection lost: every
wait then raises :class:`ConnectionLost`.
"""

from __future__ import annotations

import array
import contextlib
import itertools
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable

from units.bus import parse_unix_address
from units.wire import AuthError, Message, MessageType, Unmarshaller

BUS_DAEMON = "org.freedesktop.DBus"
SignalHandler = Callable[[Message], None]


class ConnectionLost(ConnectionError):
    """The connection to the bus is gone (closed, reset, or the bus sent garbage)."""


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


# poll(2) takes an int of milliseconds and Condition.wait() a bounded time (OverflowError
# beyond): a longer wait (rctl stop -t 99999999999999) is made of slices this long, since
# wait_until() checks its deadline again after each.
_MAX_SLICE = 3600.0


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else min(_MAX_SLICE, max(0.0, deadline - time.monotonic()))


class Connection:
    """One authenticated connection to a message bus; see the module docstring.

    Make one with :meth:`open`; :attr:`unique_name` is the name ``Hello`` gave it.
    """

    def __init__(self, sock: socket.socket, *, unix_fds: bool) -> None:
        sock.setblocking(False)
        self._sock = sock
        self.unix_fds = unix_fds
        self.unique_name = ""
        self.lock = threading.Condition(threading.Lock())
        self._send_lock = threading.Lock()
        self._serials = itertools.count(1)
        self._unmarshaller = Unmarshaller(sock=sock, negotiate_unix_fd=unix_fds)
        self._reading = False
        self._inbox: list[Message] = []
        self._awaited: set[int] = set()
        self._replies: dict[int, Message] = {}
        self._handlers: list[SignalHandler] = []
        self._lost: BaseException | None = None

    @classmethod
    def open(cls, address: str, timeout: float) -> Connection:
        """Connect, authenticate and say ``Hello``; raises OSError, AuthError, TimeoutError,
        InvalidAddressError (for :func:`units.bus.translate_connect_error`)."""
        target = parse_unix_address(address)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(timeout)
            sock.connect(target)
            unix_fds = _authenticate(sock)
            conn = cls(sock, unix_fds=unix_fds)
            hello = Message(
                destination=BUS_DAEMON,
                path="/org/freedesktop/DBus",
                interface=BUS_DAEMON,
                member="Hello",
            )
            reply = conn.call(hello, timeout)
        except BaseException:
            sock.close()
            raise
        if reply.message_type == MessageType.ERROR:
            sock.close()
            raise AuthError(f"the bus refused Hello: {reply.error_name} {reply.body}")
        conn.unique_name = reply.body[0]
        return conn

    @property
    def lost(self) -> bool:
        """Whether the connection is gone (no reply or signal will come any more)."""
        return self._lost is not None

    def add_signal_handler(self, handler: SignalHandler) -> None:
        """Call ``handler`` for every signal read (in the reading thread, lock held)."""
        with self.lock:
            self._handlers.append(handler)

    def send(self, msg: Message, *, reply: bool = True) -> int:
        """Send ``msg`` with a fresh serial and return the serial.

        With ``reply``, its reply is kept for :meth:`wait_reply` (which must follow).
        """
        with self._send_lock:
            msg.serial = next(self._serials)
            data = msg._marshall(self.unix_fds)  # dbus-fast's marshaller (private API)
            with self.lock:
                if self._lost is not None:
                    raise ConnectionLost(str(self._lost))
                if reply:
                    self._awaited.add(msg.serial)
            try:
                self._write(data, msg.unix_fds)
            except OSError as exc:
                self._lose(exc)
                raise ConnectionLost(f"can't write to the bus: {exc}") from exc
        return msg.serial

    def _write(self, data: bytes | bytearray, fds: Iterable[int]) -> None:
        """Write all of ``data``, the descriptors with its first bytes; send lock held."""
        view = memoryview(data)
        fds = list(fds)
        while view:
            try:
                if fds:
                    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
                    sent = self._sock.sendmsg([view], ancillary)
                    fds = []
                else:
                    sent = self._sock.send(view)
            except BlockingIOError:
                _poll(self._sock, select.POLLOUT, None)
                continue
            view = view[sent:]

    def call(self, msg: Message, timeout: float | None) -> Message:
        """Send a method call and return its reply (a method return or an error).

        Raises TimeoutError after ``timeout`` seconds, ConnectionLost when the bus goes.
        """
        return self.wait_reply(self.send(msg), _deadline(timeout))

    def wait_reply(self, serial: int, deadline: float | None) -> Message:
        """The reply to the message sent with ``serial``; ``deadline`` is monotonic time."""
        try:
            if not self.wait_until(lambda: serial in self._replies, deadline):
                raise TimeoutError(f"no reply to message {serial}")
            return self._replies.pop(serial)
        finally:
            self.forget([serial])

    def forget(self, serials: Iterable[int]) -> None:
        """Stop keeping the replies to ``serials`` (a caller gave up on them)."""
        with self.lock:
            for serial in serials:
                self._awaited.discard(serial)
                self._replies.pop(serial, None)

    def wait_until(self, done: Callable[[], bool], deadline: float | None) -> bool:
        """Read and dispatch messages until ``done()`` (called with the lock held).

        Returns False at ``deadline`` (monotonic time, None for never), raises
        ConnectionLost when the connection is gone and ``done()`` is still false.
        """
        with self.lock:
            while not done():
                if self._lost is not None:
                    raise ConnectionLost(str(self._lost))
                remaining = _remaining(deadline)
                if remaining == 0:
                    return False
                if self._reading:
                    self.lock.wait(remaining)
                    continue
                self._reading = True
                failure: BaseException | None = None
                try:
                    self.lock.release()
                    failure = self._read(remaining)
                finally:
                    # Also on an interrupt (KeyboardInterrupt in the main thread): hand
                    # over what was read and let another thread read.
                    self.lock.acquire()
                    self._reading = False
                    self._dispatch()
                    if failure is not None and self._lost is None:
                        self._lost = failure
                    self.lock.notify_all()
            return True

    def _read(self, timeout: float | None) -> BaseException | None:
        """Wait up to ``timeout`` for the socket, then read every whole message it has
        into the inbox (kept there if an interrupt stops the read: the next reader
        dispatches them). Returns the failure that ends the connection, if any."""
        try:
            if not _poll(self._sock, select.POLLIN, timeout):
                return None
            while (msg := self._unmarshaller.unmarshall()) is not None:
                self._inbox.append(msg)
        except EOFError:
            return ConnectionLost("the bus closed the connection")
        except Exception as exc:  # OSError, InvalidMessageError...: the stream is unusable
            return exc
        return None

    def _dispatch(self) -> None:
        """Hand replies to their waiters and signals to the handlers; lock held."""
        batch, self._inbox = self._inbox, []
        for msg in batch:
            kind = msg.message_type
            if kind in (MessageType.METHOD_RETURN, MessageType.ERROR):
                if msg.reply_serial in self._awaited:
                    self._replies[msg.reply_serial] = msg
                    continue
            elif kind == MessageType.SIGNAL:
                for handler in self._handlers:
                    handler(msg)
            # Nobody owns descriptors of a message no one waits for (the manager sends none).
            for fd in msg.unix_fds:
                os.close(fd)

    def _lose(self, exc: BaseException) -> None:
        with self.lock:
            if self._lost is None:
                self._lost = exc
            self.lock.notify_all()

    def close(self) -> None:
        """Close the socket; waits still in progress raise ConnectionLost."""
        self._lose(ConnectionLost("the connection was closed"))
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes a reader or a blocked writer
        with self._send_lock:  # no write may go to a reused descriptor number
            self._sock.close()


def _poll(sock: socket.socket, events: int, timeout: float | None) -> bool:
    """Wait until ``sock`` is ready for ``events`` (or failed); False after ``timeout``."""
    poller = select.poll()
    poller.register(sock, events)
    return bool(poller.poll(None if timeout is None else timeout * 1000))


def _authenticate(sock: socket.socket) -> bool:
    """SASL EXTERNAL with this process's uid; return whether fd passing was agreed.

    The client starts with one NUL byte, then line commands ending in CRLF (D-Bus
    specification, "Authentication Protocol"). Raises AuthError when refused.
    """
    uid = str(os.getuid()).encode().hex()
    sock.sendall(b"\0AUTH EXTERNAL " + uid.encode() + b"\r\n")
    answer = _read_line(sock)
    if not answer.startswith(b"OK "):
        raise AuthError(f"EXTERNAL authentication refused: {answer.decode(errors='replace')}")
    sock.sendall(b"NEGOTIATE_UNIX_FD\r\n")
    unix_fds = _read_line(sock) == b"AGREE_UNIX_FD"
    sock.sendall(b"BEGIN\r\n")
    return unix_fds


def _read_line(sock: socket.socket) -> bytes:
    """One server line of the SASL exchange, without its CRLF.

    The server speaks only when spoken to before BEGIN, so no byte past the line can
    arrive and reading byte chunks is safe.
    """
    line = b""
    while not line.endswith(b"\r\n"):
        chunk = sock.recv(256)
        if not chunk:
            raise AuthError("the bus closed the connection during authentication")
        line += chunk
        if len(line) > 4096:
            raise AuthError("the bus sent an overlong authentication line")
    return line[:-2]
