"""The UDP relay (netns/udpfwd.py) over loopback sockets, and which ports use it."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from netns.pasta import PortMapping, Protocol
from netns.udpfwd import Forwarder, UdpForward, bind_listeners
from rctlbase.errors import HostError
from rootless.containers.netattach import port_mappings, udp_forwarded
from rootless.containers.plan import LaunchPlan


def plan(network: str, *ports: tuple[str, str, int, int]) -> LaunchPlan:
    return LaunchPlan(
        container_id="c", uid_maps=((0, 1000, 1),), gid_maps=((0, 1000, 1),), network=network,
        ports=ports, pidfile="p", bundle="b", runtime="crun", runtime_root="r", rootfs={},
    )  # fmt: skip


def test_which_udp_ports_rctl_relays() -> None:
    ports = (("udp", "", 20000, 53), ("udp", "", 53, 20000), ("tcp", "", 8080, 80))
    assert udp_forwarded(plan("pasta", *ports)) == [UdpForward("", 20000, 53)]
    assert port_mappings(plan("pasta", *ports)) == [
        PortMapping(53, 20000, Protocol.UDP, ""),
        PortMapping(8080, 80, Protocol.TCP, ""),
    ]
    relayed = udp_forwarded(plan("slirp4netns", *ports))
    assert relayed == [UdpForward("", 20000, 53), UdpForward("", 53, 20000)]
    assert port_mappings(plan("slirp4netns", *ports)) == [PortMapping(8080, 80, Protocol.TCP, "")]
    assert len(udp_forwarded(plan("bridge", *ports))) == 2
    assert udp_forwarded(plan("none", *ports)) == udp_forwarded(plan("host", *ports)) == []


@pytest.fixture
def echo() -> Iterator[socket.socket]:
    """A UDP server on 127.0.0.1 standing for the container's."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(2)
        yield server


def relay(forwarder: Forwarder, server: socket.socket, times: int = 1) -> None:
    """Let the forwarder move a client's datagram in, echo it, and move the reply out."""
    for _ in range(times):
        forwarder.run_once(2)
        data, peer = server.recvfrom(100)
        server.sendto(data.upper(), peer)
        forwarder.run_once(2)


def test_datagrams_and_replies_are_relayed_per_client(echo: socket.socket) -> None:
    (listener,) = bind_listeners([UdpForward("127.0.0.1", 0, echo.getsockname()[1])])
    host_port = listener[0].getsockname()[1]
    forwarder = Forwarder([listener])
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
    (listener,) = bind_listeners([UdpForward("127.0.0.1", 0, echo.getsockname()[1])])
    forwarder = Forwarder([listener], max_flows=2, idle_timeout=3600)
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
                [UdpForward("127.0.0.1", free_port, 1), UdpForward("127.0.0.1", port, 1)]
            )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
            again.bind(("127.0.0.1", free_port))  # the first one was closed again
