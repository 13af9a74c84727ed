"""A UDP port forwarder from the host into a container's network namespace, for where the
user-mode drivers lose the replies.

Measured in the test host (Debian 12: slirp4netns 1.2.0 with libslirp 4.7.0, passt
0.0~git20230309), a datagram sent to a published UDP port reaches the container, but:

- **slirp4netns** drops the reply when the client is on the host's loopback: libslirp
  presents such a client as the gateway (10.0.2.2) and, with ``--disable-host-loopback``
  (rctl's default, podman's too), refuses to translate the reply back to 127.0.0.1. The
  bridge networks' namespace publishes through slirp4netns as well.
- **pasta** loses the reply of a loopback client when the host port is above the container
  port (``-u 20000:9999``); ``7777:9999`` and ``9999:9999`` work.

For those ports rctl does what podman's ``rootlessport`` does for slirp4netns: a process in
the container's unit holds the host's socket, opened in the host's network namespace
before the container's was made, and relays each client's datagrams through a socket of its
own in the container's namespace, connected to the container port on 127.0.0.1; the
replies go back from the host socket to the client. The container sees its clients as
127.0.0.1 (pasta's and slirp4netns's own forwarding keep remote clients' addresses; this
doesn't). A flow idle for :data:`IDLE_TIMEOUT` seconds is forgotten, as pasta does.

:func:`bind_listeners` runs in the host's namespace; :func:`serve` in the container's.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from rctlbase.errors import HostError

IDLE_TIMEOUT = 180.0
MAX_FLOWS = 1024
MAX_DATAGRAM = 65535
TARGET = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class UdpForward:
    """One published UDP port: ``host_ip`` ("" for every address) and the two ports."""

    host_ip: str
    host_port: int
    container_port: int


@dataclass(slots=True)
class _Flow:
    sock: socket.socket
    listener: socket.socket
    client: tuple[str, int]
    last: float = field(default_factory=time.monotonic)


def bind_listeners(forwards: Sequence[UdpForward]) -> list[tuple[socket.socket, int]]:
    """The host sockets of ``forwards`` (with their container ports), bound in the current
    network namespace; all closed again if one can't be bound."""
    bound: list[tuple[socket.socket, int]] = []
    try:
        for fwd in forwards:
            family = socket.AF_INET6 if ":" in fwd.host_ip else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            bound.append((sock, fwd.container_port))
            address = fwd.host_ip or "0.0.0.0"  # noqa: S104 - the user published it so
            try:
                sock.bind((address, fwd.host_port))
            except OSError as exc:
                raise HostError(
                    f"can't publish {address}:{fwd.host_port}/udp: {exc.strerror}",
                    hint="choose another host port, or stop what listens there",
                ) from exc
            sock.setblocking(False)
    except BaseException:
        for sock, _ in bound:
            sock.close()
        raise
    return bound


class Forwarder:
    """The relay loop over the host sockets and one connected socket per client."""

    def __init__(
        self,
        listeners: Sequence[tuple[socket.socket, int]],
        *,
        target: str = TARGET,
        idle_timeout: float = IDLE_TIMEOUT,
        max_flows: int = MAX_FLOWS,
    ) -> None:
        self.selector = selectors.DefaultSelector()
        self.ports = {sock.fileno(): port for sock, port in listeners}
        self.target = target
        self.idle_timeout = idle_timeout
        self.max_flows = max_flows
        self.flows: dict[tuple[int, tuple[str, int]], _Flow] = {}
        for sock, _ in listeners:
            self.selector.register(sock, selectors.EVENT_READ, None)

    def run_once(self, timeout: float | None) -> None:
        """Relay what is readable now (waiting at most ``timeout``), then forget idle flows."""
        for key, _ in self.selector.select(timeout):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if key.data is None:
                self._from_client(sock)
            else:
                self._from_container(key.data)
        self._expire(time.monotonic() - self.idle_timeout)

    def _from_client(self, listener: socket.socket) -> None:
        try:
            data, client = listener.recvfrom(MAX_DATAGRAM)
        except OSError:
            return
        flow = self.flows.get((listener.fileno(), client[:2]))
        if flow is None:
            flow = self._open(listener, client[:2])
        flow.last = time.monotonic()
        with contextlib.suppress(OSError):  # ECONNREFUSED: nothing listens inside yet
            flow.sock.send(data)

    def _open(self, listener: socket.socket, client: tuple[str, int]) -> _Flow:
        if len(self.flows) >= self.max_flows:
            oldest = min(self.flows.values(), key=lambda f: f.last)
            self._close(oldest)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.connect((self.target, self.ports[listener.fileno()]))
        flow = _Flow(sock, listener, client)
        self.flows[(listener.fileno(), client)] = flow
        self.selector.register(sock, selectors.EVENT_READ, flow)
        return flow

    def _from_container(self, flow: _Flow) -> None:
        try:
            data = flow.sock.recv(MAX_DATAGRAM)
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.EAGAIN):
                self._close(flow)
            return
        flow.last = time.monotonic()
        with contextlib.suppress(OSError):
            flow.listener.sendto(data, flow.client)

    def _expire(self, before: float) -> None:
        for flow in [f for f in self.flows.values() if f.last < before]:
            self._close(flow)

    def _close(self, flow: _Flow) -> None:
        self.selector.unregister(flow.sock)
        flow.sock.close()
        del self.flows[(flow.listener.fileno(), flow.client)]


def serve(listeners: Sequence[tuple[socket.socket, int]]) -> None:  # pragma: no cover
    """Relay forever (until the unit stops and kills this process)."""
    forwarder = Forwarder(listeners)
    while True:
        forwarder.run_once(forwarder.idle_timeout / 4)
