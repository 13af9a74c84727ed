"""docker's --publish syntax, -P, and the reports of published ports."""

from __future__ import annotations

import socket

import pytest

from netns.ports import Protocol, PublishedPort
from rctlbase.errors import NotFoundError, UsageError
from rootless.containers import ports
from rootless.containers.ports import (
    PublishSpec,
    check_available,
    choose_ports,
    parse_exposed,
    parse_publish,
    port_lines,
    publish_all,
)
from rootless.containers.reporting import ports_of
from rootless.reports.containers import PortBinding, port_map


def port(protocol: str, host_ip: str, host_port: int, container_port: int) -> PublishedPort:
    return PublishedPort(Protocol(protocol), host_ip, host_port, container_port)


def published(spec: str) -> list[PublishedPort]:
    return choose_ports(parse_publish(spec))


class NoSockets:
    """socket.socket for code that must not open one."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("a socket was opened")


def test_reading_a_publish_value_opens_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "socket", NoSockets)
    assert parse_publish("0:80") == PublishSpec("0:80", Protocol.TCP, "", None, (80, 80))
    assert parse_publish("80-82/udp").container_ports == (80, 82)
    ranged = parse_publish("127.0.0.1:8000-8010:80")
    assert (ranged.host_ip, ranged.host_ports, ranged.fixed) == ("127.0.0.1", (8000, 8010), [])
    assert parse_publish("8000-8001:80-81").fixed == [(8000, 80), (8001, 81)]
    with pytest.raises(AssertionError, match="a socket was opened"):
        choose_ports(parse_publish("0:80"))  # choosing is the step that asks the kernel


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("8080:80", [port("tcp", "", 8080, 80)]),
        ("127.0.0.1:8080:80/udp", [port("udp", "127.0.0.1", 8080, 80)]),
        ("8080:80/TCP", [port("tcp", "", 8080, 80)]),
        (
            "8000-8002:80-82",
            [port("tcp", "", 8000, 80), port("tcp", "", 8001, 81), port("tcp", "", 8002, 82)],
        ),
        ("[::1]:8080:80", [port("tcp", "::1", 8080, 80)]),
        ("::1:8080:80", [port("tcp", "::1", 8080, 80)]),
    ],
)
def test_valid_specs(spec: str, expected: list[PublishedPort]) -> None:
    assert published(spec) == expected


@pytest.mark.parametrize("spec", ["80", "0:80", "127.0.0.1::80", "80/udp"])
def test_container_port_alone_gets_a_free_host_port(spec: str) -> None:
    (chosen,) = published(spec)
    assert chosen.container_port == 80
    assert chosen.protocol == ("udp" if spec.endswith("/udp") else "tcp")
    assert chosen.host_ip == ("127.0.0.1" if spec.startswith("127.") else "")
    assert 1024 <= chosen.host_port <= 65535


def test_container_range_alone_gets_distinct_free_ports() -> None:
    chosen = published("80-82")
    assert [p.container_port for p in chosen] == [80, 81, 82]
    assert all(p.host_port >= 1024 for p in chosen)


def test_host_range_for_one_container_port_picks_a_free_one_in_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_bindable = ports._bindable
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        taken = s.getsockname()[1]
        # The listener above is really probed; the port after it is said to be free, since
        # any other process on the machine may hold it.
        monkeypatch.setattr(
            ports,
            "_bindable",
            lambda protocol, host_ip, number: (
                real_bindable(protocol, host_ip, number) if number == taken else None
            ),
        )
        (chosen,) = published(f"{taken}-{taken + 1}:80")
        assert (chosen.host_port, chosen.container_port) == (taken + 1, 80)
        # A one-port "range" is a plain mapping; check_available refuses it later.
        assert published(f"{taken}-{taken}:80") == [port("tcp", "", taken, 80)]


def test_a_host_range_without_a_free_port_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_bindable", lambda *_: OSError(98, "Address in use"))
    with pytest.raises(UsageError, match="no free udp port in 7000-7002"):
        published("7000-7002:53/udp")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("99999:80", "invalid port '99999'"),
        ("8080:0", "invalid port '0'"),
        ("80/sctp", "invalid protocol 'sctp'"),
        ("8000-8001:80-82", "2 host ports for 3 container ports"),
        ("9-8:80", "invalid port range '9-8'"),
        ("nothost:8080:80", "invalid host IP 'nothost'"),
        ("a:b", "invalid port 'b'"),
        ("8080:", "no container port"),
        ("[::1]8080:80", "invalid host IP"),
    ],
)
def test_invalid_specs_name_the_problem(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        parse_publish(spec)
    assert info.value.hint


def test_taken_and_duplicate_ports_are_refused() -> None:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        number = s.getsockname()[1]
        with pytest.raises(UsageError, match=f"host port {number}/tcp is already in use"):
            check_available([port("tcp", "", number, 80)])
    with pytest.raises(UsageError, match="published twice"):
        check_available([port("tcp", "", 1, 80), port("tcp", "", 1, 81)])
    with pytest.raises(UsageError, match="published twice"):
        check_available([port("tcp", "127.0.0.1", 1, 80), port("tcp", "", 1, 81)])
    assert PortBinding("5353/udp", "", 53).describe() == "0.0.0.0:53->5353/udp"
    assert PortBinding("80/tcp", "::1", 8080).describe() == "[::1]:8080->80/tcp"


def udp_port_with_its_tcp_twin_held() -> tuple[socket.socket, socket.socket]:
    """A bound UDP socket and a TCP socket bound, not listening, to the same number with
    SO_REUSEADDR: held, so no other process takes the TCP port, yet bindable by a probe
    that sets SO_REUSEADDR too (as check_available's does)."""
    for _ in range(50):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("0.0.0.0", 0))
        tcp = socket.socket()
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind(("0.0.0.0", udp.getsockname()[1]))
        except OSError:  # that TCP port is someone else's: try another number
            udp.close()
            tcp.close()
            continue
        return udp, tcp
    raise AssertionError("no UDP port whose TCP twin is free in 50 tries")


def test_a_taken_udp_port_is_refused_but_tcp_on_the_same_number_is_not() -> None:
    s, twin = udp_port_with_its_tcp_twin_held()
    with s, twin:
        number = s.getsockname()[1]
        with pytest.raises(UsageError, match=f"host port {number}/udp is already in use"):
            check_available([port("udp", "", number, 53)])
        check_available([port("tcp", "", number, 53)])


def test_exposed_ports_and_publish_all() -> None:
    assert parse_exposed(["80/tcp", "53/udp", "8000-8001", "9/sctp"]) == [
        ("tcp", 80),
        ("udp", 53),
        ("tcp", 8000),
        ("tcp", 8001),
    ]
    added = publish_all(["80/tcp", "443/tcp", "53/udp"], [port("tcp", "", 8080, 80)])
    assert [(p.protocol, p.container_port) for p in added] == [("tcp", 443), ("udp", 53)]
    assert all(p.host_port >= 1024 for p in added)


def test_port_lines_in_dockers_format() -> None:
    some = [
        port("udp", "", 5353, 53),
        port("tcp", "127.0.0.1", 8080, 80),
        port("tcp", "", 8443, 443),
    ]
    assert port_lines(some) == [
        "53/udp -> 0.0.0.0:5353",
        "80/tcp -> 127.0.0.1:8080",
        "443/tcp -> 0.0.0.0:8443",
    ]
    assert port_lines(some, "80") == ["127.0.0.1:8080"]
    assert port_lines(some, "53/udp") == ["0.0.0.0:5353"]
    with pytest.raises(NotFoundError, match="no public port '53/tcp' published for web"):
        port_lines(some, "53", name="web")
    with pytest.raises(UsageError):
        port_lines(some, "x/tcp")


def test_network_settings_ports_like_docker_inspect() -> None:
    result = port_map(ports_of((port("tcp", "", 8080, 80),)), ("80/tcp", "443/tcp"))
    assert result == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
        "443/tcp": None,
    }
