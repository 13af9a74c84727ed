"""docker's --publish syntax."""

from __future__ import annotations

import socket

import pytest

from rctlbase.errors import UsageError
from rootless.containers.ports import check_available, describe, parse_publish


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("8080:80", [("tcp", "", 8080, 80)]),
        ("127.0.0.1:8080:80/udp", [("udp", "127.0.0.1", 8080, 80)]),
        ("8000-8002:80-82", [("tcp", "", 8000, 80), ("tcp", "", 8001, 81), ("tcp", "", 8002, 82)]),
        ("[::1]:8080:80", [("tcp", "::1", 8080, 80)]),
    ],
)
def test_valid_specs(spec: str, expected: list[tuple[str, str, int, int]]) -> None:
    assert parse_publish(spec) == expected


def test_container_port_alone_gets_a_free_host_port() -> None:
    ((protocol, host_ip, host_port, ctr_port),) = parse_publish("80")
    assert (protocol, host_ip, ctr_port) == ("tcp", "", 80)
    assert 1024 <= host_port <= 65535


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("99999:80", "invalid port '99999'"),
        ("0:80", "invalid port '0'"),
        ("80/sctp", "invalid protocol 'sctp'"),
        ("8000-8001:80", "2 host ports for 1 container ports"),
        ("9-8:80", "invalid port range '9-8'"),
        ("nothost:8080:80", "invalid host IP 'nothost'"),
        ("a:b", "invalid port 'b'"),
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
    assert describe(("udp", "", 53, 5353)) == "0.0.0.0:53->5353/udp"
