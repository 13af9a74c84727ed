"""``-p/--publish`` in docker's syntax: ``[hostIP:][hostPort:]containerPort[/tcp|/udp]``,
ranges (``8000-8010:80-90``), and a random host port when only the container's is given."""

from __future__ import annotations

import ipaddress
import socket

from rctlbase.errors import UsageError

Port = tuple[str, str, int, int]  # (protocol, host ip, host port, container port)


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise UsageError(
            f"invalid port {text!r} in --publish {spec}",
            hint="ports are 1-65535: -p [HOSTIP:][HOSTPORT:]CONTAINERPORT[/tcp|/udp]",
        )
    return int(text)


def _range(text: str, spec: str) -> list[int]:
    first, sep, last = text.partition("-")
    start = _port(first, spec)
    end = _port(last, spec) if sep else start
    if end < start:
        raise UsageError(f"invalid port range {text!r} in --publish {spec}", hint="write LOW-HIGH")
    return list(range(start, end + 1))


def free_port(protocol: str, host_ip: str) -> int:
    """A port the kernel says is free now (docker's behaviour for ``-p 80``)."""
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host_ip or "0.0.0.0", 0))  # noqa: S104 - asking the kernel, not serving
        return int(s.getsockname()[1])


def parse_publish(spec: str) -> list[Port]:
    """Expand one ``-p`` value into single port mappings."""
    body, _, protocol = spec.partition("/")
    protocol = protocol or "tcp"
    if protocol not in ("tcp", "udp"):
        raise UsageError(
            f"invalid protocol {protocol!r} in --publish {spec}", hint="use /tcp or /udp"
        )
    host_ip = ""
    if body.startswith("["):  # [::1]:8080:80
        end = body.find("]")
        host_ip, body = body[1:end], body[end + 2 :]
    else:
        parts = body.split(":")
        if len(parts) == 3:
            host_ip, body = parts[0], ":".join(parts[1:])
    if host_ip:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise UsageError(
                f"invalid host IP {host_ip!r} in --publish {spec}", hint="give an IP address"
            ) from None
    host_part, sep, ctr_part = body.rpartition(":")
    if not sep:
        host_part, ctr_part = "", body
    ctr_ports = _range(ctr_part, spec)
    if not host_part:
        return [(protocol, host_ip, free_port(protocol, host_ip), p) for p in ctr_ports]
    host_ports = _range(host_part, spec)
    if len(host_ports) != len(ctr_ports):
        raise UsageError(
            f"--publish {spec}: {len(host_ports)} host ports for {len(ctr_ports)} container ports",
            hint="give ranges of the same length",
        )
    return [(protocol, host_ip, h, c) for h, c in zip(host_ports, ctr_ports, strict=True)]


def check_available(ports: list[Port]) -> None:
    """Fail before anything starts when a host port is taken, naming it."""
    seen: set[tuple[str, int]] = set()
    for protocol, host_ip, host_port, _ in ports:
        if (protocol, host_port) in seen:
            raise UsageError(
                f"host port {host_port}/{protocol} is published twice",
                hint="publish each host port once",
            )
        seen.add((protocol, host_port))
        kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((host_ip or "0.0.0.0", host_port))  # noqa: S104
            except OSError as exc:
                raise UsageError(
                    f"host port {host_port}/{protocol} is already in use ({exc.strerror})",
                    hint="choose another host port, or stop what listens there",
                ) from exc


def describe(port: Port) -> str:
    """``0.0.0.0:8080->80/tcp`` as docker ps shows it."""
    protocol, host_ip, host_port, ctr_port = port
    return f"{host_ip or '0.0.0.0'}:{host_port}->{ctr_port}/{protocol}"  # noqa: S104 - display only
