"""The port relay (netns/relay.py) over loopback sockets, and which ports use it."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest

from netns.pasta import PortMapping, Protocol
from netns.relay import Forward, Relay, bind_listeners
from rctlbase.errors import HostError
from rootless.containers.netattach import port_mappings, relayed
from rootless.containers.plan import LaunchPlan


def plan(
    network: str, *ports: tuple[str, str, int, int], options: tuple[str, ...] = ()
) -> LaunchPlan:
    return LaunchPlan(
        container_id="c", uid_maps=((0, 1000, 1),), gid_maps=((0, 1000, 1),), network=network,
        ports=ports, pidfile="p", bundle="b", runtime="crun", runtime_root="r", rootfs={},
        network_options=options,
    )  # fmt: skip


def test_which_ports_rctl_relays() -> None:
    ports = (("udp", "", 20000, 53), ("udp", "", 53, 20000), ("tcp", "", 8080, 80))
    assert relayed(plan("pasta", *ports)) == [Forward("udp", "", 20000, 53)]
    assert port_mappings(plan("pasta", *ports)) == [
        PortMapping(53, 20000, Protocol.UDP, ""),
        PortMapping(8080, 80, Protocol.TCP, ""),
    ]
    # slirp4netns: every port by default (podman's rootlessport default), UDP only when
    # libslirp forwards TCP (port_handler=slirp4netns, which keeps client addresses).
    assert relayed(plan("slirp4netns", *ports)) == [Forward(*p) for p in ports]
    assert port_mappings(plan("slirp4netns", *ports)) == []
    own = plan("slirp4netns", *ports, options=("port_handler=slirp4netns",))
    assert relayed(own) == [Forward(*p) for p in ports[:2]]
    assert port_mappings(own) == [PortMapping(8080, 80, Protocol.TCP, "")]
    assert relayed(plan("slirp4netns", *ports, options=("port_handler=rootlesskit",))) == [
        Forward(*p) for p in ports
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
    (listener,) = bind_listeners([Forward("udp", "127.0.0.1", 0, echo.getsockname()[1])])
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
    (listener,) = bind_listeners([Forward("udp", "127.0.0.1", 0, echo.getsockname()[1])])
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
                [Forward("udp", "127.0.0.1", free_port, 1), Forward("udp", "127.0.0.1", port, 1)]
            )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
            again.bind(("127.0.0.1", free_port))  # the first one was closed again


def test_tcp_connections_are_spliced_both_ways_with_half_close() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        (listener,) = bind_listeners([Forward("tcp", "127.0.0.1", 0, server.getsockname()[1])])
        relay_ = Relay([listener])
        try:
            client = socket.create_connection(listener[0].getsockname(), timeout=5)
            relay_.run_once(2)  # the accept; a thread connects and pumps
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
    (listener,) = bind_listeners([Forward("tcp", "127.0.0.1", 0, closed_port)])
    relay_ = Relay([listener])
    try:
        with socket.create_connection(listener[0].getsockname(), timeout=5) as client:
            relay_.run_once(2)
            assert client.recv(10) == b""
    finally:
        listener[0].close()
