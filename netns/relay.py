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
  direction is moved by splice(2) through a pipe, without copying to user space.
  ``port_handler=slirp4netns`` keeps libslirp's forwarding, which keeps the addresses of
  remote clients.
- **UDP with slirp4netns** (and the bridge networks' namespace, which publishes through
  slirp4netns): libslirp drops every reply to a client on the host's loopback: it
  presents such a client as the gateway (10.0.2.2) and, with ``--disable-host-loopback``
  (rctl's default, podman's too), won't translate the reply back.
- **UDP with pasta**, when the host port is above the container port (``-u 20000:9999``):
  the reply to a loopback client is lost; ``7777:9999`` and ``9999:9999`` work.

One thread, one epoll loop, non-blocking sockets: a client costs file descriptors and a
little memory, never a thread. Every resource is bounded, and running out of one refuses
a client, never the relay (which serves every published port of the container):

- The soft RLIMIT_NOFILE is raised to the hard one (:func:`raise_fd_limit`), and
  :func:`plan_limits` sizes the tables to it: at most :data:`MAX_CONNECTIONS` TCP
  connections and :data:`MAX_FLOWS` UDP flows, fewer if the descriptors would not do.
- TCP: a connection holds its two sockets, and a pipe per direction only while bytes wait
  in it (the pipes are pooled): most of the time two descriptors. A splice into a full
  pipe stops reading the sender, so a client that never reads makes the relay hold one
  pipe's worth (1 MiB), not more. At the connection limit the listener rests until a
  connection ends, and when accept(2) fails for want of descriptors or memory for
  :data:`ACCEPT_BACKOFF`: clients wait in its backlog meanwhile, and the loop does not
  spin on a listener it can't serve. A client whose own socket or pipe can't be had is
  closed. A half-close passes on: end of file from one side shuts the other's sending
  side, and the connection ends when both directions have.
- UDP: a flow per client (a connected socket in the container's namespace), the least
  recently used one closed when the table is full, and one idle for :data:`IDLE_TIMEOUT`
  seconds forgotten, as pasta does. A datagram for which no socket can be had is dropped.

:func:`bind_listeners` runs in the host's namespace; :func:`serve` in the container's.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import math
import os
import resource
import select
import signal
import socket
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from netns.ports import PublishedPort
from rctlbase.errors import HostError

IDLE_TIMEOUT = 180.0
MAX_FLOWS = 1024
MAX_CONNECTIONS = 8192
MAX_DATAGRAM = 65535
TARGET = "127.0.0.1"
LISTEN_BACKLOG = 4096  # capped by net.core.somaxconn (4096 since Linux 5.4)
ACCEPT_BACKOFF = 0.1  # seconds a listener rests after accept(2) failed for want of resources
# Pipes of /proc/sys/fs/pipe-max-size's default, as Go's splice (podman's rootlessport):
# 64 KiB ones cost the relay 2.3 times the CPU time per byte (fewer, larger splices here).
PIPE_SIZE = 1 << 20
SPARE_PIPES = 4  # empty pipes kept for the next splice
FDS_PER_CONNECTION = 6  # two sockets, and at worst both directions' pipes
FD_MARGIN = 16  # descriptors left for what else the process may open
ROUNDS = 16  # splices (or accepts, datagrams) per wakeup before others get their turn
SPLICE = os.SPLICE_F_NONBLOCK | os.SPLICE_F_MOVE
# accept(2), socket(2) and pipe2(2) failing for want of descriptors or kernel memory.
SCARCE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

READ = select.EPOLLIN
WRITE = select.EPOLLOUT
# epoll reports these whatever was asked: they wake both a reader and a writer.
TROUBLE = select.EPOLLERR | select.EPOLLHUP


@dataclass(slots=True, eq=False)
class _Listener:
    sock: socket.socket
    port: int  # the container's
    tcp: bool
    resume_at: float | None = None  # resting until then (math.inf: until a connection ends)


@dataclass(slots=True, eq=False)
class _Flow:
    sock: socket.socket
    listener: _Listener
    client: tuple[str, int]
    last: float = field(default_factory=time.monotonic)


@dataclass(slots=True, eq=False)
class _Direction:
    """One direction of a TCP connection: ``src``'s bytes to ``dst``, through ``pipe``
    (read end, write end) while ``pending`` of them are in it."""

    src: int
    dst: int
    pipe: tuple[int, int] | None = None
    pending: int = 0
    blocked: bool = False  # dst took no more: wait until it is writable
    eof: bool = False  # src ended, and dst's sending side was shut

    def wants_read(self) -> bool:
        return not (self.eof or self.blocked)


@dataclass(slots=True, eq=False)
class _Connection:
    client: socket.socket
    inner: socket.socket
    up: _Direction  # client -> container
    down: _Direction  # container -> client
    connected: bool = False


def bind_listeners(forwards: Sequence[PublishedPort]) -> list[tuple[socket.socket, int]]:
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
                    sock.listen(LISTEN_BACKLOG)
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


def raise_fd_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard one (systemd's default soft
    limit, 1024, is for select(2) users); the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def plan_limits(free_fds: int) -> tuple[int, int]:
    """The most UDP flows and TCP connections for ``free_fds`` descriptors: flows get at
    most a quarter, and connections what is left at their worst (both pipes held)."""
    budget = max(free_fds - FD_MARGIN - 2 * SPARE_PIPES, 0)
    flows = max(min(MAX_FLOWS, budget // 4), 1)
    connections = max(min(MAX_CONNECTIONS, (budget - flows) // FDS_PER_CONNECTION), 1)
    return flows, connections


class Relay:
    """The relay loop: TCP accepts, UDP datagrams and spliced TCP connections, all on one
    epoll instance."""

    def __init__(
        self,
        listeners: Sequence[tuple[socket.socket, int]],
        *,
        target: str = TARGET,
        idle_timeout: float = IDLE_TIMEOUT,
        max_flows: int = MAX_FLOWS,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.epoll = select.epoll()
        self.target = target
        self.idle_timeout = idle_timeout
        self.max_flows = max_flows
        self.max_connections = max_connections
        self.flows: OrderedDict[tuple[int, tuple[str, int]], _Flow] = OrderedDict()
        self.connections: set[_Connection] = set()
        self.listeners = [
            _Listener(sock, port, sock.type == socket.SOCK_STREAM) for sock, port in listeners
        ]
        self.watched: dict[int, tuple[int, _Listener | _Flow | _Connection]] = {}
        self.spare: list[tuple[int, int]] = []
        self.buffer = bytearray(MAX_DATAGRAM)
        for listener in self.listeners:
            self._watch(listener.sock.fileno(), READ, listener)

    def run_once(self, timeout: float | None) -> None:
        """Relay what is ready now (waiting at most ``timeout``), then forget idle flows and
        let rested listeners accept again."""
        resting = [ln.resume_at for ln in self.listeners if ln.resume_at is not None]
        if resting and min(resting) < math.inf:
            soon = max(min(resting) - time.monotonic(), 0)
            timeout = soon if timeout is None else min(timeout, soon)
        for fd, events in self.epoll.poll(-1 if timeout is None else timeout):
            entry = self.watched.get(fd)
            if entry is None:
                continue  # closed by an earlier event of this round
            target = entry[1]
            if isinstance(target, _Connection):
                self._on_connection(target, fd, events)
            elif isinstance(target, _Flow):
                self._from_container(target)
            elif target.tcp:
                self._accept(target)
            else:
                self._from_client(target)
        now = time.monotonic()
        self._resume(now)
        self._expire(now - self.idle_timeout)

    def close(self) -> None:
        """Close every connection, flow and pipe, and the epoll instance (not the listeners)."""
        for conn in list(self.connections):
            self._drop(conn)
        for flow in list(self.flows.values()):
            self._close_flow(flow)
        for read_end, write_end in self.spare:
            os.close(read_end)
            os.close(write_end)
        self.spare.clear()
        self.epoll.close()

    def _watch(self, fd: int, events: int, target: _Listener | _Flow | _Connection) -> None:
        """Have epoll report ``events`` of ``fd`` (none: forget it)."""
        old = self.watched.get(fd)
        if old is not None and old[0] == events:
            return
        if not events:
            if old is not None:
                self.epoll.unregister(fd)
                del self.watched[fd]
            return
        if old is None:
            self.epoll.register(fd, events)
        else:
            self.epoll.modify(fd, events)
        self.watched[fd] = (events, target)

    # -- TCP ----------------------------------------------------------------------------

    def _accept(self, listener: _Listener) -> None:
        for _ in range(ROUNDS):
            if len(self.connections) >= self.max_connections:
                self._rest(listener, None)  # until a connection ends
                return
            try:
                client, _ = listener.sock.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in SCARCE:  # the client waits in the backlog meanwhile
                    self._rest(listener, time.monotonic() + ACCEPT_BACKOFF)
                    return
                continue  # ECONNABORTED and the like: that client is gone
            self._connect(client, listener.port)

    def _rest(self, listener: _Listener, until: float | None) -> None:
        """Stop accepting on ``listener`` until ``until`` (None: until below the limit)."""
        listener.resume_at = math.inf if until is None else until
        self._watch(listener.sock.fileno(), 0, listener)

    def _resume(self, now: float) -> None:
        room = len(self.connections) < self.max_connections
        for listener in self.listeners:
            until = listener.resume_at
            if until is not None and (until <= now or (until == math.inf and room)):
                listener.resume_at = None
                self._watch(listener.sock.fileno(), READ, listener)

    def _connect(self, client: socket.socket, port: int) -> None:
        """Start connecting to the container port for ``client`` (closed if no socket can
        be had for it)."""
        try:
            inner = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError:
            client.close()
            return
        client.setblocking(False)
        inner.setblocking(False)
        conn = _Connection(
            client,
            inner,
            up=_Direction(client.fileno(), inner.fileno()),
            down=_Direction(inner.fileno(), client.fileno()),
        )
        self.connections.add(conn)
        if inner.connect_ex((self.target, port)) not in (0, errno.EINPROGRESS):
            self._drop(conn)  # nothing listens inside (yet): the client sees the end
            return
        self._watch(inner.fileno(), WRITE, conn)

    def _on_connection(self, conn: _Connection, fd: int, events: int) -> None:
        if not conn.connected:
            self._connected(conn)
            return
        from_client = fd == conn.up.src
        outgoing, incoming = (conn.up, conn.down) if from_client else (conn.down, conn.up)
        if events & (WRITE | TROUBLE) and incoming.blocked and not self._pump(conn, incoming):
            return
        if events & (READ | TROUBLE) and not self._pump(conn, outgoing):
            return
        self._update(conn)

    def _connected(self, conn: _Connection) -> None:
        """The container side's connect(2) ended: relay, or close the client."""
        failed = conn.inner.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if not failed:
            try:
                conn.inner.getpeername()
            except OSError as exc:
                if exc.errno == errno.ENOTCONN:
                    return  # not yet (a stale event for a reused descriptor)
                failed = exc.errno or errno.EIO
        if failed:
            self._drop(conn)
            return
        conn.connected = True
        self._update(conn)

    def _update(self, conn: _Connection) -> None:
        """Watch each socket of ``conn`` for what its two directions wait for."""
        for outgoing, incoming in ((conn.up, conn.down), (conn.down, conn.up)):
            events = (READ if outgoing.wants_read() else 0) | (WRITE if incoming.blocked else 0)
            self._watch(outgoing.src, events, conn)
        if conn.up.eof and conn.down.eof:
            self._drop(conn)

    def _pump(self, conn: _Connection, way: _Direction) -> bool:
        """Move what ``way.src`` has to ``way.dst`` until one of them would block, the
        source ends (then ``dst``'s sending side is shut), or :data:`ROUNDS` are done.
        Bytes are left in the pipe only with ``way.blocked`` set. False if the connection
        failed and was closed."""
        if way.eof:
            return True
        try:
            for _ in range(ROUNDS):
                if not way.pending:
                    if way.pipe is None:
                        way.pipe = self._take_pipe()
                    try:
                        moved = os.splice(way.src, way.pipe[1], PIPE_SIZE, flags=SPLICE)
                    except BlockingIOError:
                        self._release(way)
                        return True
                    if not moved:
                        self._finish(conn, way)
                        return True
                    way.pending = moved
                assert way.pipe is not None
                with contextlib.suppress(BlockingIOError):
                    way.pending -= os.splice(way.pipe[0], way.dst, way.pending, flags=SPLICE)
                way.blocked = way.pending > 0
                if way.blocked:
                    return True
        except OSError:
            self._drop(conn, abort=True)
            return False
        return True

    def _finish(self, conn: _Connection, way: _Direction) -> None:
        """``way.src`` ended: pass the half-close on."""
        self._release(way)
        way.eof = True
        dst = conn.inner if way is conn.up else conn.client
        with contextlib.suppress(OSError):  # the peer may be gone already
            dst.shutdown(socket.SHUT_WR)

    def _take_pipe(self) -> tuple[int, int]:
        if self.spare:
            return self.spare.pop()
        pipe = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        # Refused (EPERM) once the user's pipes pass fs.pipe-user-pages-soft: the default.
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe[1], fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        return pipe

    def _release(self, way: _Direction) -> None:
        """Give ``way``'s pipe back to the pool (closed if it still holds bytes, or the pool
        is full)."""
        if way.pipe is None:
            return
        if way.pending or len(self.spare) >= SPARE_PIPES:
            os.close(way.pipe[0])
            os.close(way.pipe[1])
        else:
            self.spare.append(way.pipe)
        way.pipe = None
        way.pending = 0

    def _drop(self, conn: _Connection, *, abort: bool = False) -> None:
        """Close ``conn``; with ``abort`` (an error) both sockets are shut first, so that
        each peer sees the end even if a descriptor outlives us."""
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        for way in (conn.up, conn.down):
            self._watch(way.src, 0, conn)
            self._release(way)
        for sock in (conn.client, conn.inner):
            if abort:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    # -- UDP ----------------------------------------------------------------------------

    def _from_client(self, listener: _Listener) -> None:
        view = memoryview(self.buffer)
        for _ in range(ROUNDS):
            try:
                size, client = listener.sock.recvfrom_into(self.buffer)
            except OSError:
                return  # EAGAIN: none left
            key = (listener.sock.fileno(), client[:2])
            flow = self.flows.get(key)
            if flow is None:
                flow = self._open(listener, key[1])
                if flow is None:
                    continue  # no socket for it now: the datagram is dropped
            else:
                self.flows.move_to_end(key)
            flow.last = time.monotonic()
            with contextlib.suppress(OSError):  # ECONNREFUSED: nothing listens inside yet
                flow.sock.send(view[:size])

    def _open(self, listener: _Listener, client: tuple[str, int]) -> _Flow | None:
        if len(self.flows) >= self.max_flows:
            self._close_flow(next(iter(self.flows.values())))  # the least recently used
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        except OSError:
            return None
        try:
            sock.setblocking(False)
            sock.connect((self.target, listener.port))
        except OSError:
            sock.close()
            return None
        flow = _Flow(sock, listener, client)
        self.flows[(listener.sock.fileno(), client)] = flow
        self._watch(sock.fileno(), READ, flow)
        return flow

    def _from_container(self, flow: _Flow) -> None:
        view = memoryview(self.buffer)
        for _ in range(ROUNDS):
            try:
                size = flow.sock.recv_into(self.buffer)
            except OSError as exc:
                if exc.errno not in (errno.ECONNREFUSED, errno.EAGAIN):
                    self._close_flow(flow)
                return
            flow.last = time.monotonic()
            self.flows.move_to_end((flow.listener.sock.fileno(), flow.client))
            with contextlib.suppress(OSError):
                flow.listener.sock.sendto(view[:size], flow.client)

    def _expire(self, before: float) -> None:
        while self.flows:
            oldest = next(iter(self.flows.values()))
            if oldest.last >= before:
                return
            self._close_flow(oldest)

    def _close_flow(self, flow: _Flow) -> None:
        self._watch(flow.sock.fileno(), 0, flow)
        flow.sock.close()
        del self.flows[(flow.listener.sock.fileno(), flow.client)]


def serve(listeners: Sequence[tuple[socket.socket, int]]) -> None:  # pragma: no cover
    """Relay forever (until the unit stops and kills this process)."""
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # a peer gone is an EPIPE, not our end
    free = raise_fd_limit() - len(os.listdir("/proc/self/fd"))
    max_flows, max_connections = plan_limits(free)
    relay = Relay(listeners, max_flows=max_flows, max_connections=max_connections)
    while True:
        relay.run_once(relay.idle_timeout / 4)
