"""A tiny in-process D-Bus message bus for unit tests: a unix socket served by a thread.

It speaks the real protocol (SASL EXTERNAL with fd negotiation, then messages marshalled
by dbus-fast), so :mod:`units.connection` runs against it exactly as against dbus-daemon.
Each client connection is served in turn; ``on_call(bus, msg)`` answers method calls
(``Hello`` and everything it leaves unanswered, by returning False, get a plain reply). Replies and signals share one serial counter, as sd-bus's do, and
:meth:`FakeBus.send` writes messages in one go, so a reply and a signal sent together are
read together. Every signal goes to the client, whatever its match rules.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from units.wire import Message, MessageType, Unmarshaller

Handler = Callable[["FakeBus", Message], bool]  # True when it answered the call


class FakeBus:
    def __init__(
        self,
        directory: Path,
        on_call: Handler | None = None,
        *,
        auth_answer: bytes = b"OK 0123456789abcdef0123456789abcdef",
        agree_fds: bool = True,
    ) -> None:
        self.path = directory / "bus"
        self.address = f"unix:path={self.path}"
        self.on_call = on_call
        self.auth_answer = auth_answer
        self.agree_fds = agree_fds
        self.sasl: list[bytes] = []
        self.calls: list[Message] = []
        self.connections = 0
        self._serials = itertools.count(1)
        self._lock = threading.Lock()
        self._client: socket.socket | None = None
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen(4)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def __enter__(self) -> FakeBus:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self.drop()
        self._thread.join(5)

    def drop(self) -> None:
        """Close the current client's connection (the bus went away for it)."""
        with self._lock:
            if self._client is not None:
                with contextlib.suppress(OSError):
                    self._client.shutdown(socket.SHUT_RDWR)

    def member_calls(self) -> list[str]:
        return [msg.member or "" for msg in self.calls]

    # -- messages -------------------------------------------------------------------------

    def reply(self, call: Message, signature: str = "", body: list[Any] | None = None) -> Message:
        return Message(
            message_type=MessageType.METHOD_RETURN,
            reply_serial=call.serial,
            serial=next(self._serials),
            signature=signature,
            body=body or [],
        )

    def error(self, call: Message, name: str, text: str) -> Message:
        return Message(
            message_type=MessageType.ERROR,
            reply_serial=call.serial,
            error_name=name,
            serial=next(self._serials),
            signature="s",
            body=[text],
        )

    def signal(
        self, path: str, interface: str, member: str, signature: str, body: list[Any]
    ) -> Message:
        return Message(
            message_type=MessageType.SIGNAL,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=body,
            serial=next(self._serials),
        )

    def send(self, *messages: Message) -> None:
        """Write ``messages`` to the client in one write (serials taken in order)."""
        with self._lock:
            if self._client is None:
                return
            data = b"".join(bytes(msg._marshall(False)) for msg in messages)
            with contextlib.suppress(OSError):
                self._client.sendall(data)

    # -- serving --------------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._client = client
                self.connections += 1
            try:
                if self._authenticate(client):
                    self._converse(client)
            except (EOFError, OSError):
                pass
            finally:
                with self._lock:
                    self._client = None
                client.close()

    def _authenticate(self, client: socket.socket) -> bool:
        line = b""
        while True:
            byte = client.recv(1)  # one byte at a time: the first message follows BEGIN
            if not byte:
                return False
            line += byte
            if not line.endswith(b"\r\n"):
                continue
            command, line = line[:-2], b""
            self.sasl.append(command)
            if command.startswith(b"\0AUTH"):
                client.sendall(self.auth_answer + b"\r\n")
            elif command == b"NEGOTIATE_UNIX_FD":
                client.sendall(b"AGREE_UNIX_FD\r\n" if self.agree_fds else b"ERROR\r\n")
            elif command == b"BEGIN":
                return True

    def _converse(self, client: socket.socket) -> None:
        unmarshaller = Unmarshaller(sock=client, negotiate_unix_fd=True)
        while True:
            msg = unmarshaller.unmarshall()
            if msg is None:
                continue
            if msg.message_type != MessageType.METHOD_CALL:
                continue
            self.calls.append(msg)
            if self.on_call is not None and self.on_call(self, msg):
                continue
            if msg.member == "Hello":
                self.send(self.reply(msg, "s", [f":1.{self.connections}"]))
            else:
                self.send(self.reply(msg))
