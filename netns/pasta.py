"""pasta (from passt): user-mode networking for a network namespace, with published ports.

pasta joins the target process's user and network namespaces, copies the host's addresses
and routes into them (``--config-net``) and forwards the published ports; it then
daemonizes, so it stays in the caller's cgroup (the container's unit) and ends with it.

Connections to a published port that arrive on a non-loopback host address reach the
namespace through pasta's tap side with the client's own source address (pasta does no
NAT); connections to the host's loopback are spliced and arrive from 127.0.0.1.

The gateway address pasta gives the namespace is, unless ``--no-map-gw``, mapped to the
host's loopback: that is how a container reaches services listening on the host's
127.0.0.1 (pasta(1), "--no-map-gw"; later versions call it ``--map-host-loopback``). rctl
disables it unless the user asked for host loopback access.
"""

from __future__ import annotations

from collections.abc import Sequence

from netns.ports import Protocol, PublishedPort
from rctlbase.run import run_program

# Options that choose the IP versions: the user's replace rctl's default ``--ipv4-only``.
_IP_VERSION_OPTIONS = frozenset({"-4", "--ipv4-only", "-6", "--ipv6-only"})


def pasta_argv(
    pid: int,
    ports: Sequence[PublishedPort],
    *,
    extra: Sequence[str] = (),
    map_host_loopback: bool = False,
    pidfile: str | None = None,
) -> list[str]:
    """The pasta command for ``pid``'s namespaces: only the published ports are forwarded.

    ``extra`` are the user's own pasta options (``--network pasta:OPT,...``), given after
    rctl's so that they win where pasta lets a later option override an earlier one.
    ``map_host_loopback`` keeps pasta's mapping of the gateway address to the host's
    loopback (``host.containers.internal``).
    """
    tcp = [p for p in ports if p.protocol is Protocol.TCP]
    udp = [p for p in ports if p.protocol is Protocol.UDP]

    def spec(p: PublishedPort) -> str:
        where = f"{p.host_ip}/" if p.host_ip else ""
        return f"{where}{p.host_port}:{p.container_port}"

    argv = ["pasta", "--config-net", "--quiet"]
    if not _IP_VERSION_OPTIONS.intersection(extra):
        argv.append("--ipv4-only")
    user_ports = {"-t", "--tcp-ports", "-u", "--udp-ports"}.intersection(extra)
    argv += [arg for p in tcp for arg in ("-t", spec(p))]
    argv += [arg for p in udp for arg in ("-u", spec(p))]
    # pasta's default for -t/-u is "auto" (every port bound in the namespace): say "none"
    # when nobody publishes anything of that protocol.
    if not tcp and not {"-t", "--tcp-ports"} & user_ports:
        argv += ["-t", "none"]
    if not udp and not {"-u", "--udp-ports"} & user_ports:
        argv += ["-u", "none"]
    # No forwarding from the namespace back to the host's ports unless asked.
    if not {"-T", "--tcp-ns"}.intersection(extra):
        argv += ["-T", "none"]
    if not {"-U", "--udp-ns"}.intersection(extra):
        argv += ["-U", "none"]
    if not map_host_loopback and "--no-map-gw" not in extra:
        argv.append("--no-map-gw")
    if pidfile:
        argv += ["--pid", pidfile]
    return [*argv, *extra, str(pid)]


def start_pasta(
    pid: int,
    ports: Sequence[PublishedPort],
    *,
    extra: Sequence[str] = (),
    map_host_loopback: bool = False,
    pidfile: str | None = None,
) -> None:
    """Attach pasta to ``pid``'s network namespace; returns once it is configured."""
    run_program(
        pasta_argv(pid, ports, extra=extra, map_host_loopback=map_host_loopback, pidfile=pidfile)
    )


def default_gateway(route_table: str) -> str | None:
    """The IPv4 default gateway in ``/proc/net/route``'s text, or None.

    pasta gives the namespace the host's gateway, so this is the address that reaches the
    host's loopback when the gateway is mapped (``host.containers.internal``).
    """
    for line in route_table.splitlines()[1:]:
        fields = line.split()
        # Iface Destination Gateway Flags ...; RTF_GATEWAY = 0x2
        if len(fields) >= 4 and fields[1] == "00000000" and int(fields[3], 16) & 0x2:
            raw = bytes.fromhex(fields[2])[::-1]  # little-endian in the file
            return ".".join(str(b) for b in raw)
    return None


def read_default_gateway() -> str | None:
    """The host's IPv4 default gateway now (None without a default route)."""
    try:
        with open("/proc/net/route") as fh:
            return default_gateway(fh.read())
    except OSError:
        return None
