"""A port relay from the host into a container's network namespace: rctl's counterpart of
podman's ``rootlessport``, for the published ports the user-mode drivers serve badly.

A process in the container's unit holds the host's sockets, opened in the host's network
namespace before the container's was made, and relays each client to the container port
on 127.0.0.1 through a socket of its own in the container's namespace. The container sees
its clients as 127.0.0.1. It is used for (all measured in the test host, Debian 12:
slirp4netns 1.2.0 with libslirp 4.7.0, passt 0.0~git20230309):

- **TCP with slirp4netns** (``port_handler=rctl``, the default, as podman's default is
  rootlessport): libslirp's own forwarding terminates each connection in its user-space
  TCP stack, 4.8 Gbit/s against podman's rootlessport 12 Gbit/s in iperf3. Here each
  direction is moved by splice(2) through a pipe, in a thread of its own.
  ``port_handler=slirp4netns`` keeps libslirp's forwarding, which keeps the addresses of
  remote clients.
- **UDP with slirp4netns** (and the bridge networks' namespace, which publishes through
  slirp4netns): libslirp drops every reply to a client on the host's loopback: it
  presents such a client as the gateway (10.0.2.2) and, with ``--disable-host-loopback``
  (rctl's default, podman's too), won't translate the reply back.
- **UDP with pasta**, when the host port is above the container port (``-u 20000:9999``):
  the reply to a loopback client is lost; ``7777:9999`` and ``9999:9999`` work.

A UDP flow idle for :data:`IDLE_TIMEOUT` seconds is forgotten, as pasta does.
:func:`bind_listeners` runs in the host's namespace; :func:`serve` in the container's.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rctlbase.errors import HostError

IDLE_TIMEOUT = 180.0
MAX_FLOWS = 1024
MAX_DATAGRAM = 65535
TARGET = "127.0.0.1"
PIPE_SIZE = 1 << 20  # /proc/sys/fs/pipe-max-size's default: fewer, larger splices
THREAD_STACK = 256 * 1024


@dataclass(frozen=True, slots=True)
class Forward:
    """One published port: ``protocol`` (tcp or udp), ``host_ip`` ("" for every address)
    and the two ports."""

    protocol: str
    host_ip: str
    host_port: int
    container_port: int


@dataclass(slots=True)
class _Flow:
    sock: socket.socket
    listener: socket.socket
    client: tuple[str, int]
    last: float = field(default_factory=time.monotonic)


def bind_listeners(forwards: Sequence[Forward]) -> list[tuple[socket.socket, int]]:
    """The host sockets of ``forwards`` (with their container ports), bound (TCP: and
    listening) in the current network namespace; all closed again if one can't be bound."""
    bound: list[tuple[socket.socket, int]] = []
    try:
        for fwd in forwards:
            family = socket.AF_INET6 if ":" in fwd.host_ip else socket.AF_INET
            tcp = fwd.protocol == "tcp"
            sock = socket.socket(family, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
            bound.append((sock, fwd.container_port))
            address = fwd.host_ip or "0.0.0.0"  # noqa: S104 - the user published it so
            try:
                if tcp:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((address, fwd.host_port))
                if tcp:
                    sock.listen(128)
            except OSError as exc:
                raise HostError(
                    f"can't publish {address}:{fwd.host_port}/{fwd.protocol}: {exc.strerror}",
                    hint="choose another host port, or stop what listens there",
                ) from exc
            sock.setblocking(False)
    except BaseException:
        for sock, _ in bound:
            sock.close()
        raise
    return bound


class Relay:
    """The relay loop: UDP datagrams and TCP accepts on the host sockets here, one
    connected socket per UDP client, two splicing threads per TCP connection."""

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
            if key.data is not None:
                self._from_container(key.data)
            elif sock.type == socket.SOCK_STREAM:
                self._accept(sock)
            else:
                self._from_client(sock)
        self._expire(time.monotonic() - self.idle_timeout)

    # -- TCP ----------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        threading.Thread(
            target=self._connect, args=(client, self.ports[listener.fileno()]), daemon=True
        ).start()

    def _connect(self, client: socket.socket, port: int) -> None:
        """One TCP connection: reach the container port, then pump both ways."""
        client.setblocking(True)
        inner = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            inner.connect((self.target, port))
        except OSError:
            inner.close()
            client.close()  # nothing listens inside (yet): the client sees the end
            return
        ends = [2]
        lock = threading.Lock()

        def done() -> None:
            with lock:
                ends[0] -= 1
                last = ends[0] == 0
            if last:
                client.close()
                inner.close()

        threading.Thread(target=pump, args=(inner, client, done), daemon=True).start()
        pump(client, inner, done)

    # -- UDP ----------------------------------------------------------------------------

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


def pump(src: socket.socket, dst: socket.socket, done: Callable[[], None]) -> None:
    """Move ``src``'s bytes to ``dst`` with splice(2) through a pipe until end of file,
    then shut ``dst``'s sending side (a half-close passes on); on an error both sockets
    are shut, which ends the other direction too. ``done()`` at the end."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        with contextlib.suppress(OSError):
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        while count := os.splice(src.fileno(), write_end, PIPE_SIZE):
            while count:
                count -= os.splice(read_end, dst.fileno(), count)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
    except OSError:
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
    finally:
        os.close(read_end)
        os.close(write_end)
        done()


def serve(listeners: Sequence[tuple[socket.socket, int]]) -> None:  # pragma: no cover
    """Relay forever (until the unit stops and kills this process)."""
    threading.stack_size(THREAD_STACK)
    relay = Relay(listeners)
    while True:
        relay.run_once(relay.idle_timeout / 4)
