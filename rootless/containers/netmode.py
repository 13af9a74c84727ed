"""A single container's network, decided at create time: ``--network`` modes and their
options (podman's syntax), published ports, ``/etc/hosts`` and ``/etc/resolv.conf``.

Modes::

    none                      loopback only
    host                      the user's own network namespace (no -p)
    pasta[:OPT,...]           pasta, OPTs passed through to it (podman's syntax)
    slirp4netns[:K=V,...]     slirp4netns; mtu, port_handler, allow_host_loopback,
                              enable_ipv6, cidr, outbound_addr, outbound_addr6
    anything else             the name of a bridge network (rootless.networks)

The default mode is ``[network] default`` of rctl.toml, else slirp4netns: with the passt
of Debian 12 (0.0~git20230309) pasta garbles a container's outgoing TCP connection that is
half-closed early and loses some UDP replies, and takes six times slirp4netns's memory per
container; pasta is 1.5 times faster (docs/commands.md, "Networking"). Host loopback access
(``host.containers.internal``/``host.docker.internal``) is off unless the container asks for
it (``--add-host NAME:host-gateway``) or rctl.toml says ``[network] host_loopback = true``:
with pasta the gateway address is then mapped to the host's loopback, with slirp4netns the
gateway 10.0.2.2 is (``allow_host_loopback``).

Everything here is pure except :func:`network_for` and its helpers, which read the host's
``/etc/resolv.conf`` and default route and ask the kernel which host ports are free.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from netns.pasta import read_default_gateway
from netns.ports import PublishedPort
from netns.slirp4netns import SlirpOptions
from rctlbase.errors import NotFoundError, UsageError
from rootless.containers.ports import check_available, choose_ports, parse_publish, publish_all

if TYPE_CHECKING:
    # Imported where used: every container's launcher imports this module (through
    # rootless.containers.netattach) and has no use for the spec and the CLI's options.
    from rootless.containers.spec import HostEntry
    from rootless.models import RunOptions

HOST_GATEWAY = "host-gateway"
HOST_NAMES = ("host.containers.internal", "host.docker.internal")
# pasta answers nothing at this address; it is where the host's resolvers are reached when
# they listen on loopback (127.0.0.53 of systemd-resolved), through --dns-forward.
PASTA_DNS_FORWARD = "169.254.1.1"
# --network values that are modes, not network names (the other ones are names).
MODES = ("none", "host", "pasta", "slirp4netns", "private", "container", "ns")


class NetworkMode(StrEnum):
    """How a container's network namespace is connected."""

    PASTA = "pasta"
    SLIRP4NETNS = "slirp4netns"
    NONE = "none"
    HOST = "host"
    BRIDGE = "bridge"  # a named network (rootless.networks)


@dataclass(frozen=True, slots=True)
class NetworkChoice:
    """A parsed ``--network``: the mode, its options, and a bridge network's name.

    ``slirp`` is slirp4netns's options, read once from ``options`` (by :func:`parse_network`,
    whose errors name the flag, or here when the choice is made otherwise).
    """

    mode: NetworkMode
    options: tuple[str, ...] = ()  # pasta's argv, or slirp4netns's KEY=VALUE
    name: str = ""
    slirp: SlirpOptions | None = None

    def __post_init__(self) -> None:
        if self.mode is NetworkMode.SLIRP4NETNS and self.slirp is None:
            object.__setattr__(self, "slirp", parse_slirp_options(self.options))


@dataclass(frozen=True, slots=True)
class NetworkDefaults:
    """rctl.toml's ``[network]``: the default mode and the host loopback switch."""

    default: str = "slirp4netns"
    host_loopback: bool = False


@dataclass(frozen=True, slots=True)
class ContainerNetwork:
    """What create decided about a container's network; the launch plan and /etc use it."""

    choice: NetworkChoice
    ports: tuple[PublishedPort, ...] = ()
    host_loopback: bool = False  # pasta: map the gateway to the host's loopback
    hosts: tuple[HostEntry, ...] = ()  # --add-host entries with host-gateway resolved
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()

    @property
    def mode(self) -> NetworkMode:
        return self.choice.mode

    @property
    def helper_options(self) -> tuple[str, ...]:
        """pasta's options for the launch plan (slirp4netns's are :attr:`slirp`)."""
        return self.choice.options if self.mode is NetworkMode.PASTA else ()

    @property
    def slirp(self) -> SlirpOptions | None:
        """slirp4netns's options, host loopback allowed when the container needs it."""
        slirp = self.choice.slirp
        if slirp is not None and self.host_loopback:
            return dataclasses.replace(slirp, allow_host_loopback=True)
        return slirp


_SLIRP_KEYS = (
    "mtu", "port_handler", "allow_host_loopback", "enable_ipv6", "cidr", "outbound_addr",
    "outbound_addr6",
)  # fmt: skip


def _bool(key: str, value: str, source: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise UsageError(f"{source}: {key}={value!r} is not a boolean", hint=f"{key}=true or false")


def _mtu(value: str, source: str) -> int:
    if not (value.isascii() and value.isdigit()) or not 68 <= int(value) <= 65521:
        raise UsageError(f"{source}: invalid mtu {value!r}", hint="68 to 65521")
    return int(value)


def _port_handler(value: str, source: str) -> str:
    """``rctl`` (the default: rctl's relay, netns/relay.py), or ``slirp4netns`` (libslirp's
    own forwarding, which keeps remote clients' addresses); podman's ``rootlesskit`` names
    the same kind of proxy as rctl's relay and is taken as ``rctl``."""
    if value in ("rctl", "rootlesskit"):
        return "rctl"
    if value != "slirp4netns":
        raise UsageError(
            f"{source}: unknown port_handler {value!r}", hint="use rctl or slirp4netns"
        )
    return value


def _cidr(value: str, source: str) -> str:
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError:
        raise UsageError(
            f"{source}: invalid cidr {value!r}", hint="an IPv4 network, e.g. 10.0.2.0/24"
        ) from None
    if network.num_addresses < 128:
        raise UsageError(f"{source}: cidr {value} is too small", hint="use /25 or wider")
    return str(network)


def parse_slirp_options(options: Sequence[str], source: str = "--network") -> SlirpOptions:
    """podman's ``slirp4netns:`` options into :class:`SlirpOptions`."""
    result = SlirpOptions()
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key not in _SLIRP_KEYS:
            raise UsageError(
                f"{source}: unknown slirp4netns option {option!r}",
                hint=f"known: {', '.join(k + '=...' for k in _SLIRP_KEYS)}",
            )
        if key == "mtu":
            result = dataclasses.replace(result, mtu=_mtu(value, source))
        elif key == "port_handler":
            result = dataclasses.replace(result, port_handler=_port_handler(value, source))
        elif key == "allow_host_loopback":
            result = dataclasses.replace(result, allow_host_loopback=_bool(key, value, source))
        elif key == "enable_ipv6":
            result = dataclasses.replace(result, enable_ipv6=_bool(key, value, source))
        elif key == "cidr":
            result = dataclasses.replace(result, cidr=_cidr(value, source))
        elif key == "outbound_addr":
            result = dataclasses.replace(result, outbound_addr=value)
        else:
            result = dataclasses.replace(result, outbound_addr6=value)
    return result


def parse_network(value: str, source: str = "--network") -> NetworkChoice:
    """``--network`` (or rctl.toml's default) into a :class:`NetworkChoice`."""
    mode, sep, rest = value.partition(":")
    options = tuple(o for o in rest.split(",") if o) if sep else ()
    if mode in ("none", "host"):
        if sep:
            raise UsageError(f"{source} {value}: {mode} takes no options", hint=f"use {mode}")
        return NetworkChoice(NetworkMode(mode))
    if mode == "pasta":
        return NetworkChoice(NetworkMode.PASTA, options)
    if mode == "slirp4netns":
        slirp = parse_slirp_options(options, f"{source} {value}")
        return NetworkChoice(NetworkMode.SLIRP4NETNS, options, slirp=slirp)
    if mode in ("container", "ns", "private") or not value:
        raise UsageError(
            f"{source} {value!r} is not supported",
            hint="use pasta, slirp4netns, none, host or a network's name",
        )
    return NetworkChoice(NetworkMode.BRIDGE, name=value)


def parse_dns_search(value: str) -> str:
    """``--dns-search DOMAIN`` ("." means no search list, as in docker)."""
    if value != "." and (not value or any(c.isspace() for c in value)):
        raise UsageError(f"invalid --dns-search {value!r}", hint="give a domain, e.g. example.org")
    return value


def parse_dns_option(value: str) -> str:
    """``--dns-option OPT`` (resolv.conf(5) ``options``: ndots:2, edns0...)."""
    if not value or any(c.isspace() for c in value):
        raise UsageError(f"invalid --dns-option {value!r}", hint="e.g. ndots:2")
    return value


def plan_network(
    choice: NetworkChoice,
    *,
    publish: Sequence[str] = (),
    publish_all_ports: bool = False,
    exposed: Sequence[str] = (),
    add_hosts: Sequence[HostEntry] = (),
    defaults: NetworkDefaults = NetworkDefaults(),
    host_gateway: str | None = None,
    dns: Sequence[str] = (),
    dns_search: Sequence[str] = (),
    dns_options: Sequence[str] = (),
) -> ContainerNetwork:
    """Decide ports, host loopback and host entries; host ports are checked free.

    ``host_gateway`` is the host's default gateway (pasta gives it to the namespace), used
    for ``host-gateway`` with pasta. Raises UsageError naming the flag for every conflict.
    """
    from rootless.containers.spec import HostEntry  # noqa: PLC0415 - launcher start-up time

    mode = choice.mode
    specs = [parse_publish(spec) for spec in publish]  # every value read before any is bound
    ports: list[PublishedPort] = []
    if mode in (NetworkMode.HOST, NetworkMode.NONE):
        if specs:
            raise UsageError(
                f"--publish needs a network of its own, not --network {mode}",
                hint="drop -p, or use pasta or slirp4netns",
            )
    else:
        ports = [port for spec in specs for port in choose_ports(spec)]
        if publish_all_ports:
            ports += publish_all(exposed, ports)
    if mode is NetworkMode.SLIRP4NETNS and any(":" in p.host_ip for p in ports):
        raise UsageError(
            "--publish with an IPv6 host address needs --network pasta",
            hint="slirp4netns's API forwards IPv4 addresses only",
        )
    check_available(ports)  # before anything exists: a taken port leaves nothing behind
    wants_gateway = any(h.address == HOST_GATEWAY for h in add_hosts)
    automatic = defaults.host_loopback and mode not in (NetworkMode.NONE, NetworkMode.BRIDGE)
    loopback = wants_gateway or automatic
    slirp = choice.slirp
    if slirp is not None and loopback and "allow_host_loopback=false" in choice.options:
        raise UsageError(
            "host-gateway needs slirp4netns's allow_host_loopback",
            hint="drop allow_host_loopback=false, or the host-gateway entry",
        )
    address = ""
    if loopback:
        address = _gateway_address(mode, slirp, host_gateway)
    entries = [
        HostEntry(h.hostname, address if h.address == HOST_GATEWAY else h.address)
        for h in add_hosts
    ]
    if automatic:
        named = {h.hostname for h in entries}
        entries += [HostEntry(n, address) for n in HOST_NAMES if n not in named]
    return ContainerNetwork(
        choice=choice,
        ports=tuple(ports),
        host_loopback=loopback,
        hosts=tuple(entries),
        dns=tuple(dns),
        dns_search=tuple(dns_search),
        dns_options=tuple(dns_options),
    )


def _gateway_address(mode: NetworkMode, slirp: SlirpOptions | None, gateway: str | None) -> str:
    """The address in the container that reaches the host's loopback services."""
    if mode is NetworkMode.HOST:
        return "127.0.0.1"
    if slirp is not None:
        return slirp.gateway
    if mode is NetworkMode.PASTA:
        if gateway is None:
            raise UsageError(
                "host-gateway: the host has no IPv4 default route for pasta to map",
                hint="use --network slirp4netns:allow_host_loopback=true",
            )
        return gateway
    raise UsageError(
        f"host-gateway is not available with --network {mode}",
        hint="use pasta or slirp4netns for host loopback access",
    )


def hosts_file(hostname: str, entries: Sequence[HostEntry]) -> str:
    """The container's /etc/hosts: localhost, its own name, then ``--add-host`` entries."""
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"127.0.1.1\t{hostname}",
        *(f"{e.address}\t{e.hostname}" for e in entries),
    ]
    return "\n".join(lines) + "\n"


def resolv_conf(network: ContainerNetwork, host_text: str) -> str:
    """The container's resolv.conf from the host's (``host_text``) and --dns* flags.

    pasta: the host's resolvers (the namespace routes to them like the host does);
    slirp4netns: its built-in forwarder (network address + 3); host: the host's file;
    none: the flags only. ``--dns``, ``--dns-search`` and ``--dns-option`` replace the
    matching lines; ``--dns-search .`` drops the search list.
    """
    servers = [ln.split()[1] for ln in host_text.splitlines() if ln.startswith("nameserver ")]
    search = [ln for ln in host_text.splitlines() if ln.startswith(("search ", "domain "))]
    options = [ln for ln in host_text.splitlines() if ln.startswith("options ")]
    mode = network.mode
    if mode is NetworkMode.SLIRP4NETNS:
        servers = [network.slirp.dns] if network.slirp is not None else []
    elif mode is NetworkMode.NONE:
        servers = []
    elif mode is NetworkMode.PASTA and any(_is_loopback(s) for s in servers):
        # The host's resolver listens on its loopback, out of the namespace's reach: pasta
        # forwards queries sent to this address to the host's first resolver.
        servers = [PASTA_DNS_FORWARD]
    if network.dns:
        servers = list(network.dns)
    if network.dns_search:
        search = [] if network.dns_search == (".",) else [f"search {' '.join(network.dns_search)}"]
    if network.dns_options:
        options = [f"options {' '.join(network.dns_options)}"]
    lines = [*search, *(f"nameserver {s}" for s in servers), *options]
    return "\n".join(lines) + "\n" if lines else ""


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def read_host_resolv_conf() -> str:
    """The host's /etc/resolv.conf ("" when unreadable)."""
    try:
        with open("/etc/resolv.conf") as fh:
            return fh.read()
    except OSError:
        return ""


def network_for(
    options: RunOptions, defaults: NetworkDefaults, exposed: Sequence[str]
) -> ContainerNetwork:
    """``rctl run``/``create``'s network flags, validated and planned (host ports chosen
    and checked free). Bridge networks are the business of ``rootless.networks``: until a
    network of that name exists, naming one is an error here."""
    from rootless.containers.spec import parse_add_host, parse_dns  # noqa: PLC0415

    if options.network:
        choice = parse_network(options.network)
    else:
        choice = parse_network(defaults.default, "rctl.toml [network] default")
    if choice.mode is NetworkMode.BRIDGE:
        raise NotFoundError(
            f"network {choice.name} not found",
            hint="use pasta, slirp4netns, none or host ('rctl network ls' lists networks)",
        )
    return plan_network(
        choice,
        publish=options.publish,
        publish_all_ports=options.publish_all,
        exposed=exposed,
        add_hosts=[parse_add_host(h) for h in options.add_host],
        defaults=defaults,
        host_gateway=read_default_gateway() if choice.mode is NetworkMode.PASTA else None,
        dns=[parse_dns(d) for d in options.dns],
        dns_search=[parse_dns_search(d) for d in options.dns_search],
        dns_options=[parse_dns_option(d) for d in options.dns_option],
    )
