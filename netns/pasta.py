"""pasta (from passt): user-mode networking for a network namespace, with published ports.

pasta joins the target process's user and network namespaces, copies the host's addresses
and routes into them (``--config-net``) and forwards the published ports; it then
daemonizes, so it stays in the caller's cgroup (the container's unit) and ends with it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from rctlbase.run import run_program


class Protocol(enum.StrEnum):
    TCP = "tcp"
    UDP = "udp"


@dataclass(frozen=True, slots=True)
class PortMapping:
    """One published port: host address and port to the container's port."""

    host_port: int
    container_port: int
    protocol: Protocol = Protocol.TCP
    host_ip: str = ""


def pasta_argv(pid: int, ports: Sequence[PortMapping], *, pidfile: str | None = None) -> list[str]:
    """The pasta command for ``pid``'s namespaces: only the published ports are forwarded."""
    tcp = [p for p in ports if p.protocol is Protocol.TCP]
    udp = [p for p in ports if p.protocol is Protocol.UDP]

    def spec(p: PortMapping) -> str:
        where = f"{p.host_ip}/" if p.host_ip else ""
        return f"{where}{p.host_port}:{p.container_port}"

    argv = ["pasta", "--config-net", "--quiet", "--ipv4-only"]
    argv += [arg for p in tcp for arg in ("-t", spec(p))] or ["-t", "none"]
    argv += [arg for p in udp for arg in ("-u", spec(p))] or ["-u", "none"]
    # No forwarding from the namespace back to the host's ports unless asked.
    argv += ["-T", "none", "-U", "none"]
    if pidfile:
        argv += ["--pid", pidfile]
    return [*argv, str(pid)]


def start_pasta(pid: int, ports: Sequence[PortMapping], *, pidfile: str | None = None) -> None:
    """Attach pasta to ``pid``'s network namespace; returns once it is configured."""
    run_program(pasta_argv(pid, ports, pidfile=pidfile))
