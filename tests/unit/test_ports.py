"""docker's --publish syntax, -P, and the reports of published ports."""

from __future__ import annotations

import socket

import pytest

from rctlbase.errors import NotFoundError, UsageError
from rootless.containers import ports
from rootless.containers.ports import (
    check_available,
    parse_exposed,
    parse_publish,
    port_lines,
    publish_all,
)
from rootless.containers.reporting import ports_of
from rootless.reports.containers import PortBinding, port_map


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("8080:80", [("tcp", "", 8080, 80)]),
        ("127.0.0.1:8080:80/udp", [("udp", "127.0.0.1", 8080, 80)]),
        ("8080:80/TCP", [("tcp", "", 8080, 80)]),
        ("8000-8002:80-82", [("tcp", "", 8000, 80), ("tcp", "", 8001, 81), ("tcp", "", 8002, 82)]),
        ("[::1]:8080:80", [("tcp", "::1", 8080, 80)]),
        ("::1:8080:80", [("tcp", "::1", 8080, 80)]),
    ],
)
def test_valid_specs(spec: str, expected: list[tuple[str, str, int, int]]) -> None:
    assert parse_publish(spec) == expected


@pytest.mark.parametrize("spec", ["80", "0:80", "127.0.0.1::80", "80/udp"])
def test_container_port_alone_gets_a_free_host_port(spec: str) -> None:
    ((protocol, host_ip, host_port, ctr_port),) = parse_publish(spec)
    assert ctr_port == 80
    assert protocol == ("udp" if spec.endswith("/udp") else "tcp")
    assert host_ip == ("127.0.0.1" if spec.startswith("127.") else "")
    assert 1024 <= host_port <= 65535


def test_container_range_alone_gets_distinct_free_ports() -> None:
    ports = parse_publish("80-82")
    assert [p[3] for p in ports] == [80, 81, 82]
    assert all(p[2] >= 1024 for p in ports)


def test_host_range_for_one_container_port_picks_a_free_one_in_it() -> None:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        taken = s.getsockname()[1]
        ((_, _, host_port, ctr),) = parse_publish(f"{taken}-{taken + 1}:80")
        assert (host_port, ctr) == (taken + 1, 80)
        # A one-port "range" is a plain mapping; check_available refuses it later.
        assert parse_publish(f"{taken}-{taken}:80") == [("tcp", "", taken, 80)]


def test_a_host_range_without_a_free_port_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_bindable", lambda *_: OSError(98, "Address in use"))
    with pytest.raises(UsageError, match="no free udp port in 7000-7002"):
        parse_publish("7000-7002:53/udp")


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
        port = s.getsockname()[1]
        with pytest.raises(UsageError, match=f"host port {port}/tcp is already in use"):
            check_available([("tcp", "", port, 80)])
    with pytest.raises(UsageError, match="published twice"):
        check_available([("tcp", "", 1, 80), ("tcp", "", 1, 81)])
    with pytest.raises(UsageError, match="published twice"):
        check_available([("tcp", "127.0.0.1", 1, 80), ("tcp", "", 1, 81)])
    assert PortBinding("5353/udp", "", 53).describe() == "0.0.0.0:53->5353/udp"
    assert PortBinding("80/tcp", "::1", 8080).describe() == "[::1]:8080->80/tcp"


def test_a_taken_udp_port_is_refused_but_tcp_on_the_same_number_is_not() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        port = s.getsockname()[1]
        with pytest.raises(UsageError, match=f"host port {port}/udp is already in use"):
            check_available([("udp", "", port, 53)])
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                pytest.skip("the same TCP port is taken by something else")
        check_available([("tcp", "", port, 53)])


def test_exposed_ports_and_publish_all() -> None:
    assert parse_exposed(["80/tcp", "53/udp", "8000-8001", "9/sctp"]) == [
        ("tcp", 80),
        ("udp", 53),
        ("tcp", 8000),
        ("tcp", 8001),
    ]
    published = [("tcp", "", 8080, 80)]
    added = publish_all(["80/tcp", "443/tcp", "53/udp"], published)
    assert [(p[0], p[3]) for p in added] == [("tcp", 443), ("udp", 53)]
    assert all(p[2] >= 1024 for p in added)


def test_port_lines_in_dockers_format() -> None:
    ports = [("udp", "", 5353, 53), ("tcp", "127.0.0.1", 8080, 80), ("tcp", "", 8443, 443)]
    assert port_lines(ports) == [
        "53/udp -> 0.0.0.0:5353",
        "80/tcp -> 127.0.0.1:8080",
        "443/tcp -> 0.0.0.0:8443",
    ]
    assert port_lines(ports, "80") == ["127.0.0.1:8080"]
    assert port_lines(ports, "53/udp") == ["0.0.0.0:5353"]
    with pytest.raises(NotFoundError, match="no public port '53/tcp' published for web"):
        port_lines(ports, "53", name="web")
    with pytest.raises(UsageError):
        port_lines(ports, "x/tcp")


def test_network_settings_ports_like_docker_inspect() -> None:
    result = port_map(ports_of((("tcp", "", 8080, 80),)), ("80/tcp", "443/tcp"))
    assert result == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
        "443/tcp": None,
    }
