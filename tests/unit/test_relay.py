"""The port relay (netns/relay.py) over loopback sockets, and which ports use it: its
semantics in process, its limits in a child process whose RLIMIT_NOFILE is low."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import PIPE, Popen

import pytest

from netns.ports import Protocol, PublishedPort
from netns.relay import (
    FD_MARGIN,
    FDS_PER_CONNECTION,
    MAX_CONNECTIONS,
    MAX_FLOWS,
    PIPE_SIZE,
    SPARE_PIPES,
    Relay,
    bind_listeners,
    plan_limits,
)
from rctlbase.errors import HostError
from rootless.containers.netattach import driver_ports, relayed
from rootless.containers.netmode import parse_slirp_options
from rootless.containers.plan import LaunchPlan


def published(protocol: str, host_ip: str, host_port: int, container_port: int) -> PublishedPort:
    return PublishedPort(Protocol(protocol), host_ip, host_port, container_port)


def plan(
    network: str, *ports: tuple[str, str, int, int], options: tuple[str, ...] = ()
) -> LaunchPlan:
    return LaunchPlan(
        container_id="c", uid_maps=((0, 1000, 1),), gid_maps=((0, 1000, 1),), network=network,
        ports=tuple(published(*p) for p in ports), pidfile="p", bundle="b", runtime="crun", runtime_root="r", rootfs={},
        slirp=parse_slirp_options(options) if network == "slirp4netns" else None,
    )  # fmt: skip


def test_which_ports_rctl_relays() -> None:
    ports = (("udp", "", 20000, 53), ("udp", "", 53, 20000), ("tcp", "", 8080, 80))
    assert relayed(plan("pasta", *ports)) == [published("udp", "", 20000, 53)]
    assert driver_ports(plan("pasta", *ports)) == [
        published("udp", "", 53, 20000),
        published("tcp", "", 8080, 80),
    ]
    # slirp4netns: every port by default (podman's rootlessport default), UDP only when
    # libslirp forwards TCP (port_handler=slirp4netns, which keeps client addresses).
    assert relayed(plan("slirp4netns", *ports)) == [published(*p) for p in ports]
    assert driver_ports(plan("slirp4netns", *ports)) == []
    own = plan("slirp4netns", *ports, options=("port_handler=slirp4netns",))
    assert relayed(own) == [published(*p) for p in ports[:2]]
    assert driver_ports(own) == [published("tcp", "", 8080, 80)]
    assert relayed(plan("slirp4netns", *ports, options=("port_handler=rootlesskit",))) == [
        published(*p) for p in ports
    ]
    assert len(relayed(plan("bridge", *ports))) == 2
    assert relayed(plan("none", *ports)) == relayed(plan("host", *ports)) == []


@pytest.fixture
def echo() -> Iterator[socket.socket]:
    """A UDP server on 127.0.0.1 standing for the container's."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(2)
        yield server


def relay(forwarder: Relay, server: socket.socket, times: int = 1) -> None:
    """Let the forwarder move a client's datagram in, echo it, and move the reply out."""
    for _ in range(times):
        forwarder.run_once(2)
        data, peer = server.recvfrom(100)
        server.sendto(data.upper(), peer)
        forwarder.run_once(2)


def test_datagrams_and_replies_are_relayed_per_client(echo: socket.socket) -> None:
    (listener,) = bind_listeners([published("udp", "127.0.0.1", 0, echo.getsockname()[1])])
    host_port = listener[0].getsockname()[1]
    forwarder = Relay([listener])
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    try:
        for n, client in enumerate(clients * 2):
            client.settimeout(2)
            client.sendto(b"ping%d" % n, ("127.0.0.1", host_port))
            relay(forwarder, echo)
            assert client.recvfrom(100) == (b"PING%d" % n, ("127.0.0.1", host_port))
        assert len(forwarder.flows) == 2  # one flow per client, reused
    finally:
        for client in clients:
            client.close()
        listener[0].close()


def test_idle_and_excess_flows_are_closed(echo: socket.socket) -> None:
    (listener,) = bind_listeners([published("udp", "127.0.0.1", 0, echo.getsockname()[1])])
    forwarder = Relay([listener], max_flows=2, idle_timeout=3600)
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        for client in clients:
            client.sendto(b"x", ("127.0.0.1", listener[0].getsockname()[1]))
            relay(forwarder, echo)
        assert len(forwarder.flows) == 2
        first = clients[0].getsockname()[1]
        assert all(client[1] != first for _, client in forwarder.flows)
        forwarder.idle_timeout = 0
        forwarder.run_once(0)
        assert forwarder.flows == {}
    finally:
        for client in clients:
            client.close()
        listener[0].close()


def test_a_taken_port_is_named_and_nothing_stays_bound() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as free:
            free.bind(("127.0.0.1", 0))
            free_port = free.getsockname()[1]
        with pytest.raises(HostError, match=rf"127\.0\.0\.1:{port}/udp: Address already in use"):
            bind_listeners(
                [
                    published("udp", "127.0.0.1", free_port, 1),
                    published("udp", "127.0.0.1", port, 1),
                ]
            )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
            again.bind(("127.0.0.1", free_port))  # the first one was closed again


@contextlib.contextmanager
def running(forwarder: Relay) -> Iterator[Relay]:
    """The relay's loop in a thread of its own while the test plays clients and server."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            forwarder.run_once(0.02)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield forwarder
    finally:
        stop.set()
        thread.join()
        forwarder.close()


def test_tcp_connections_are_spliced_both_ways_with_half_close() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        (listener,) = bind_listeners([published("tcp", "127.0.0.1", 0, server.getsockname()[1])])
        try:
            with running(Relay([listener])):
                client = socket.create_connection(listener[0].getsockname(), timeout=5)
                inner, _ = server.accept()
                inner.settimeout(5)
                payload = os.urandom(3 << 20)  # more than a pipe holds
                sender = threading.Thread(target=client.sendall, args=(payload,))
                sender.start()
                got = b""
                while len(got) < len(payload):
                    got += inner.recv(1 << 20)
                sender.join()
                assert got == payload
                client.shutdown(socket.SHUT_WR)  # the half-close reaches the server ...
                assert inner.recv(10) == b""
                inner.sendall(b"answer after the client's FIN")  # ... which still answers
                inner.close()
                answer = b""
                while chunk := client.recv(100):
                    answer += chunk
                assert answer == b"answer after the client's FIN"
                client.close()
        finally:
            listener[0].close()


def test_a_tcp_client_is_closed_when_nothing_listens_inside() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    (listener,) = bind_listeners([published("tcp", "127.0.0.1", 0, closed_port)])
    try:
        with (
            running(Relay([listener])),
            socket.create_connection(listener[0].getsockname(), timeout=5) as client,
        ):
            assert client.recv(10) == b""
    finally:
        listener[0].close()


class EchoServer:
    """The container's TCP and UDP servers on 127.0.0.1, echoing in a thread of their own,
    any number of connections at once."""

    def __init__(self) -> None:
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(4096)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.selector = selectors.DefaultSelector()
        for sock in (self.tcp, self.udp):
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    @property
    def ports(self) -> tuple[int, int]:
        return self.tcp.getsockname()[1], self.udp.getsockname()[1]

    def loop(self) -> None:
        while not self.stop.is_set():
            for key, _ in self.selector.select(0.02):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                with contextlib.suppress(OSError):
                    if sock is self.tcp:
                        conn, _ = sock.accept()
                        self.selector.register(conn, selectors.EVENT_READ)
                    elif sock is self.udp:
                        data, peer = sock.recvfrom(2048)
                        sock.sendto(data, peer)
                    elif data := sock.recv(65536):
                        sock.sendall(data)  # small requests: the send buffer takes them
                    else:
                        self.selector.unregister(sock)
                        sock.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.selector.close()


@pytest.fixture
def servers() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def many_fds() -> Iterator[int]:
    """This process's soft RLIMIT_NOFILE raised to the hard one, for many sockets; the limit."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (before[1], before[1]))
    yield before[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, before)


def echo_through(clients: list[socket.socket]) -> list[bytes]:
    """Each client sends its number and gets back what comes (b"" if its end came)."""
    for n, client in enumerate(clients):
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            client.sendall(b"%d\n" % n)
    answers = []
    for client in clients:
        client.settimeout(10)
        try:
            answers.append(client.recv(100))
        except ConnectionResetError:
            answers.append(b"")
    return answers


def wait(predicate: Callable[[], object], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_client_that_never_reads_holds_one_pipe_of_bytes() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        (listener,) = bind_listeners([published("tcp", "127.0.0.1", 0, server.getsockname()[1])])
        try:
            with running(Relay([listener])) as forwarder:
                client = socket.create_connection(listener[0].getsockname(), timeout=5)
                client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                inner, _ = server.accept()
                inner.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                inner.settimeout(1)
                sent = 0
                with contextlib.suppress(TimeoutError):
                    while sent < 64 << 20:
                        sent += inner.send(b"x" * 65536)
                assert sent < 32 << 20  # the server is held back, not drained into the relay
                (conn,) = forwarder.connections
                assert conn.down.blocked and conn.down.pending <= PIPE_SIZE
                # ... while the other direction still moves.
                client.sendall(b"ping")
                assert inner.recv(10) == b"ping"
                client.close()
                inner.close()
                wait(lambda: not forwarder.connections)
        finally:
            listener[0].close()


def test_limits_follow_the_descriptors() -> None:
    assert plan_limits(1 << 19) == (MAX_FLOWS, MAX_CONNECTIONS)
    flows, connections = plan_limits(1024)
    assert flows + connections * FDS_PER_CONNECTION + FD_MARGIN <= 1024
    assert flows >= 200 and connections >= 100
    assert plan_limits(10) == (1, 1)


# A relay of its own in a child process, with RLIMIT_NOFILE SOFT:HARD; with "serve", the
# real entry point sizes itself to it; with "unbounded", its tables are allowed more than
# the descriptors allow, so that accept(2), socket(2) and pipe2(2) fail EMFILE.
CHILD = """
import json, resource, sys
limits, mode, tcp_port, udp_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
resource.setrlimit(resource.RLIMIT_NOFILE, tuple(map(int, limits.split(":"))))
from netns.ports import Protocol, PublishedPort
from netns.relay import Relay, bind_listeners, serve
listeners = bind_listeners([PublishedPort(Protocol.TCP, "127.0.0.1", 0, tcp_port),
                            PublishedPort(Protocol.UDP, "127.0.0.1", 0, udp_port)])
print(json.dumps([sock.getsockname()[1] for sock, _ in listeners]), flush=True)
if mode == "serve":
    serve(listeners)
forwarder = Relay(listeners, max_flows=10**5, max_connections=10**5, idle_timeout=2)
while True:
    forwarder.run_once(1)
"""


@contextlib.contextmanager
def child_relay(
    servers: EchoServer, limits: str, mode: str
) -> Iterator[tuple[Popen[str], int, int]]:
    """A relay process (see CHILD) before ``servers``: it and its TCP and UDP host ports."""
    root = Path(__file__).resolve().parents[2]
    proc = Popen(
        [sys.executable, "-c", CHILD, limits, mode, *map(str, servers.ports)],
        stdout=PIPE, text=True, env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        tcp_port, udp_port = json.loads(proc.stdout.readline())
        yield proc, tcp_port, udp_port
    finally:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def udp_answers(port: int, count: int, timeout: float = 0.5) -> int:
    """How many of ``count`` clients, sending all at once, get their datagram back (until
    ``timeout``, or until none has come for a while)."""
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    with selectors.DefaultSelector() as selector:
        try:
            for n, client in enumerate(clients):
                client.sendto(b"%d" % n, ("127.0.0.1", port))
                selector.register(client, selectors.EVENT_READ, b"%d" % n)
            answered = 0
            deadline = time.monotonic() + timeout
            while answered < count and (ready := selector.select(min(timeout, 0.5))):
                for key, _ in ready:
                    with contextlib.suppress(OSError):
                        answered += key.fileobj.recv(100) == key.data  # type: ignore[union-attr]
                    selector.unregister(key.fileobj)
                if time.monotonic() > deadline:
                    break
            return answered
        finally:
            for client in clients:
                client.close()


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_thousand_tcp_connections_at_once_are_all_served(
    servers: EchoServer, many_fds: int
) -> None:
    """systemd's soft limit (1024) held a relay of threads and pipes to about 170."""
    count = min(1000, (many_fds - 100) // 3)  # clients, and the server's side of each
    assert count >= 500, f"RLIMIT_NOFILE's hard limit {many_fds} is too low for this test"
    with child_relay(servers, f"1024:{many_fds}", "serve") as (proc, tcp_port, udp_port):
        before = open_fds(proc.pid)
        clients = [socket.create_connection(("127.0.0.1", tcp_port), timeout=10)
                   for _ in range(count)]  # fmt: skip
        assert echo_through(clients) == [b"%d\n" % n for n in range(count)]
        # An idle connection holds its two sockets, no pipe: the spare ones are all.
        assert open_fds(proc.pid) - before <= 2 * count + 2 * SPARE_PIPES
        for client in clients:
            client.close()
        wait(lambda: open_fds(proc.pid) - before <= 2 * SPARE_PIPES)
        still_serves(proc, tcp_port, udp_port)


def test_a_burst_of_5000_udp_clients_leaves_the_relay_serving(
    servers: EchoServer, many_fds: int
) -> None:
    """A thousand flows used to take every descriptor, and the next one the relay."""
    count = min(5000, many_fds - 100)
    with child_relay(servers, f"1024:{many_fds}", "serve") as (proc, tcp_port, udp_port):
        # Most datagrams of such a burst overflow a socket buffer on the way (the
        # listener's, 208 KiB), and a flow is the least recently used one soon.
        assert udp_answers(udp_port, count, timeout=5) >= 100
        assert open_fds(proc.pid) < 1024 + 2 * SPARE_PIPES + 20  # flows: the LRU ones
        still_serves(proc, tcp_port, udp_port)


def still_serves(proc: Popen[str], tcp_port: int, udp_port: int) -> None:
    assert proc.poll() is None, "the relay died"
    with socket.create_connection(("127.0.0.1", tcp_port), timeout=10) as client:
        assert echo_through([client]) == [b"0\n"]
    for _ in range(20):  # a flow may be refused while the limit is reached: try again
        if udp_answers(udp_port, 1):
            return
    raise AssertionError("UDP is no longer relayed")


def test_a_relay_at_its_descriptor_limit_serves_everyone_in_turn(
    servers: EchoServer, many_fds: int
) -> None:
    """serve() sizes its tables to the limit: more clients than descriptors wait or take
    the place of the least recently used flow; none takes the relay down."""
    with child_relay(servers, "128:128", "serve") as (proc, tcp_port, udp_port):
        # 60 connections at once where about 9 fit: the rest wait in the backlog.
        clients = [socket.create_connection(("127.0.0.1", tcp_port), timeout=10)
                   for _ in range(60)]  # fmt: skip
        for n, client in enumerate(clients):
            client.sendall(b"%d\n" % n)
        for n, client in enumerate(clients):
            client.settimeout(10)
            assert client.recv(100) == b"%d\n" % n
            client.close()  # which lets the next one in
        # 300 UDP clients one after the other, where about 20 flows fit.
        for n in range(300):
            assert udp_answers(udp_port, 1, timeout=5) == 1, f"UDP client {n}"
        still_serves(proc, tcp_port, udp_port)


def test_running_out_of_descriptors_refuses_clients_not_the_relay(
    servers: EchoServer, many_fds: int
) -> None:
    with child_relay(servers, "64:64", "unbounded") as (proc, tcp_port, udp_port):
        # Flows take every descriptor: later clients' datagrams are dropped ...
        assert 0 < udp_answers(udp_port, 200) < 200
        assert proc.poll() is None, "the relay died"
        # ... and a TCP client waits in the backlog; the listener rests meanwhile instead
        # of spinning on EMFILE.
        waiting = socket.create_connection(("127.0.0.1", tcp_port), timeout=10)
        waiting.sendall(b"first\n")
        cpu = cpu_seconds(proc.pid)
        time.sleep(1)
        assert cpu_seconds(proc.pid) - cpu < 0.3
        # The idle flows expire (2 s here): the client is served.
        waiting.settimeout(10)
        assert waiting.recv(100) == b"first\n"
        waiting.close()
        # Connections take every descriptor (about 28 fit): each client is served or sees
        # its end, the later ones as the earlier ones leave.
        clients = [socket.create_connection(("127.0.0.1", tcp_port), timeout=10)
                   for _ in range(80)]  # fmt: skip
        answers = []
        for client in clients:
            answers += echo_through([client])
            client.close()
        assert all(a in (b"", b"0\n") for a in answers), answers
        assert answers.count(b"") < len(answers) / 2
        still_serves(proc, tcp_port, udp_port)
