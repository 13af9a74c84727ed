"""``-p/--publish`` in docker's syntax: ``[hostIP:][hostPort:]containerPort[/tcp|/udp]``,
ranges (``8000-8010:80-90``), and a random host port when only the container's is given.

The rules are docker's (``github.com/docker/go-connections/nat.ParsePortSpec``): host and
container ranges have the same length, except that a host range with a single container
port means "any free port of that range"; host port 0 or none means a random free port.

Two steps: :func:`parse_publish` reads a value into a :class:`PublishSpec` and asks the
kernel nothing, so checking a definition file or the flags binds no socket; at create,
:func:`choose_ports` picks the host ports still open (the only step that binds, to ask the
kernel) into :class:`~netns.ports.PublishedPort` values, recorded, so that ``rctl port``,
``ps`` and a restart all see the same ones.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from netns.ports import Protocol, PublishedPort
from rctlbase.errors import NotFoundError, UsageError

PROTOCOLS = ("tcp", "udp")
_SYNTAX = "-p [HOSTIP:][HOSTPORT:]CONTAINERPORT[/tcp|/udp]"


def _digits(text: str) -> bool:
    # str.isdigit() is true of '²' and other digits that int() refuses.
    return text.isascii() and text.isdigit()


def _port(text: str, spec: str, *, zero: bool = False) -> int:
    if not _digits(text) or not (0 if zero else 1) <= int(text) <= 65535:
        raise UsageError(
            f"invalid port {text!r} in --publish {spec}",
            hint=f"ports are 1-65535: {_SYNTAX}",
        )
    return int(text)


def _range(text: str, spec: str, *, zero: bool = False) -> tuple[int, int]:
    first, sep, last = text.partition("-")
    start = _port(first, spec, zero=zero)
    end = _port(last, spec) if sep else start
    if end < start:
        raise UsageError(f"invalid port range {text!r} in --publish {spec}", hint="write LOW-HIGH")
    return start, end


def _family(host_ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host_ip else socket.AF_INET


def _bindable(protocol: str, host_ip: str, port: int) -> OSError | None:
    """None when ``port`` can be bound now on ``host_ip``, else the bind's error."""
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(_family(host_ip), kind) as s:
        if kind == socket.SOCK_STREAM:
            # As the port handlers do: a port in TIME_WAIT is free, one with a listener isn't.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host_ip or "0.0.0.0", port))  # noqa: S104 - asking the kernel, not serving
        except OSError as exc:
            return exc
    return None


def free_port(protocol: str, host_ip: str) -> int:
    """A port the kernel says is free now (docker's behaviour for ``-p 80``)."""
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(_family(host_ip), kind) as s:
        s.bind((host_ip or "0.0.0.0", 0))  # noqa: S104 - asking the kernel, not serving
        return int(s.getsockname()[1])


def _free_in_range(protocol: str, host_ip: str, low: int, high: int, spec: str) -> int:
    for port in range(low, high + 1):
        if _bindable(protocol, host_ip, port) is None:
            return port
    raise UsageError(
        f"--publish {spec}: no free {protocol} port in {low}-{high}",
        hint="widen the range or stop what listens there",
    )


def _split(spec: str) -> tuple[str, str, str, str]:
    """``spec`` as (host ip, host port(s), container port(s), protocol), like splitParts."""
    body, _, protocol = spec.partition("/")
    if body.startswith("["):  # [::1]:8080:80
        end = body.find("]")
        if end < 0 or body[end + 1 : end + 2] != ":":
            raise UsageError(f"invalid host IP in --publish {spec}", hint="write [IPV6]:PORT:PORT")
        host_ip, rest = body[1:end], body[end + 2 :]
        host_port, sep, ctr = rest.rpartition(":")
        if not sep:
            raise UsageError(f"invalid --publish {spec}", hint=_SYNTAX)
        return host_ip, host_port, ctr, protocol
    parts = body.split(":")
    if len(parts) == 1:
        return "", "", parts[0], protocol
    if len(parts) == 2:
        return "", parts[0], parts[1], protocol
    return ":".join(parts[:-2]), parts[-2], parts[-1], protocol


@dataclass(frozen=True, slots=True)
class PublishSpec:
    """One ``-p`` value, read: host ports not chosen yet.

    ``host_ports`` None is "any free port" (``-p 80``, ``-p 0:80``); a range of several
    host ports for one container port is "a free one of them"; otherwise the host range
    maps onto the container range port by port.
    """

    text: str
    protocol: Protocol
    host_ip: str
    host_ports: tuple[int, int] | None
    container_ports: tuple[int, int]

    @property
    def fixed(self) -> list[tuple[int, int]]:
        """(host port, container port) pairs named outright (no choice at create)."""
        if self.host_ports is None:
            return []
        (low, high), (ctr_low, ctr_high) = self.host_ports, self.container_ports
        if high - low != ctr_high - ctr_low:
            return []
        return [(low + i, ctr_low + i) for i in range(high - low + 1)]


def parse_publish(spec: str) -> PublishSpec:
    """Read one ``-p`` value (UsageError naming it); binds nothing."""
    host_ip, host_part, ctr_part, protocol = _split(spec)
    protocol = (protocol or "tcp").lower()
    if protocol not in PROTOCOLS:
        raise UsageError(
            f"invalid protocol {protocol!r} in --publish {spec}", hint="use /tcp or /udp"
        )
    if host_ip:
        try:
            host_ip = str(ipaddress.ip_address(host_ip))
        except ValueError:
            raise UsageError(
                f"invalid host IP {host_ip!r} in --publish {spec}", hint="give an IP address"
            ) from None
    if not ctr_part:
        raise UsageError(f"no container port in --publish {spec}", hint=_SYNTAX)
    ctr_low, ctr_high = _range(ctr_part, spec)
    if not host_part or host_part == "0":
        return PublishSpec(spec, Protocol(protocol), host_ip, None, (ctr_low, ctr_high))
    low, high = _range(host_part, spec)
    if high - low != ctr_high - ctr_low and ctr_low != ctr_high:
        raise UsageError(
            f"--publish {spec}: {high - low + 1} host ports for {ctr_high - ctr_low + 1} "
            "container ports",
            hint="give ranges of the same length (or one container port for a host range)",
        )
    return PublishSpec(spec, Protocol(protocol), host_ip, (low, high), (ctr_low, ctr_high))


def choose_ports(spec: PublishSpec) -> list[PublishedPort]:
    """``spec``'s ports with their host ports chosen: a free one where the value leaves
    the choice (this asks the kernel by binding), else the ones it names."""
    protocol, host_ip = spec.protocol, spec.host_ip
    ctr_low, ctr_high = spec.container_ports
    if spec.host_ports is None:
        return [
            PublishedPort(protocol, host_ip, free_port(protocol, host_ip), p)
            for p in range(ctr_low, ctr_high + 1)
        ]
    fixed = spec.fixed
    if fixed:
        return [PublishedPort(protocol, host_ip, host, ctr) for host, ctr in fixed]
    # docker: a host range for one container port is where to pick a free port.
    low, high = spec.host_ports
    chosen = _free_in_range(protocol, host_ip, low, high, spec.text)
    return [PublishedPort(protocol, host_ip, chosen, ctr_low)]


def parse_exposed(exposed: Iterable[str]) -> list[tuple[str, int]]:
    """An image's ``ExposedPorts`` keys (``80/tcp``, ``53/udp``, ``8000-8002``) as
    (protocol, container port) pairs; ones rctl can't publish (sctp) are left out."""
    found: list[tuple[str, int]] = []
    for key in exposed:
        number, _, protocol = key.partition("/")
        protocol = (protocol or "tcp").lower()
        first, _, last = number.partition("-")
        if protocol not in PROTOCOLS or not _digits(first) or not _digits(last or first):
            continue
        found += [(protocol, p) for p in range(int(first), int(last or first) + 1)]
    return found


def publish_all(exposed: Iterable[str], published: Sequence[PublishedPort]) -> list[PublishedPort]:
    """``-P``: every exposed port not published already, each on a random host port."""
    taken = {(p.protocol, p.container_port) for p in published}
    return [
        PublishedPort(Protocol(protocol), "", free_port(protocol, ""), ctr)
        for protocol, ctr in parse_exposed(exposed)
        if (protocol, ctr) not in taken
    ]


def check_available(ports: Sequence[PublishedPort]) -> None:
    """Fail before anything starts when a host port is taken, naming it."""
    seen: dict[tuple[str, int], set[str]] = {}
    for port in ports:
        protocol, host_ip, host_port = port.protocol, port.host_ip, port.host_port
        ips = seen.setdefault((protocol, host_port), set())
        wildcard = {"", "0.0.0.0", "::"}  # noqa: S104 - comparing, not binding
        if host_ip in ips or (ips and (host_ip in wildcard or ips & wildcard)):
            raise UsageError(
                f"host port {host_port}/{protocol} is published twice",
                hint="publish each host port once",
            )
        ips.add(host_ip)
        error = _bindable(protocol, host_ip, host_port)
        if error is not None:
            where = f"{host_ip}:" if host_ip else ""
            raise UsageError(
                f"host port {where}{host_port}/{protocol} is already in use ({error.strerror})",
                hint="choose another host port, or stop what listens there",
            ) from error


def _host(host_ip: str) -> str:
    shown = host_ip or "0.0.0.0"  # noqa: S104 - display only
    return f"[{shown}]" if ":" in shown else shown


def port_lines(
    ports: Sequence[PublishedPort], private: str | None = None, *, name: str = ""
) -> list[str]:
    """``rctl port``'s lines: ``80/tcp -> 0.0.0.0:8080`` (docker's format), or only the
    host addresses of ``private`` (``80`` or ``80/udp``) as ``0.0.0.0:8080``."""
    ordered = sorted(ports, key=lambda p: (p.container_port, p.protocol, p.host_port))
    if private is None:
        return [
            f"{p.container_port}/{p.protocol} -> {_host(p.host_ip)}:{p.host_port}" for p in ordered
        ]
    number, _, protocol = private.partition("/")
    protocol = (protocol or "tcp").lower()
    if not _digits(number) or protocol not in PROTOCOLS:
        raise UsageError(f"invalid port {private!r}", hint="give PORT or PORT/tcp or PORT/udp")
    lines = [
        f"{_host(p.host_ip)}:{p.host_port}"
        for p in ordered
        if (p.container_port, p.protocol) == (int(number), protocol)
    ]
    if not lines:
        raise NotFoundError(
            f"no public port '{number}/{protocol}' published for {name or 'the container'}",
            hint="'rctl port CONTAINER' lists what is published",
        )
    return lines
