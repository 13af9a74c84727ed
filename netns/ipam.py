"""IP address management for bridge networks: subnets that never overlap, addresses that are
never handed out twice. Pure: callers pass what is taken and keep the state (under a lock).

Defaults follow podman: a new network without ``--subnet`` gets the first free
``10.89.N.0/24`` (N = 0..255), its gateway is the subnet's first host, and containers get
the following hosts in order, the lowest free one first.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from rctlbase.errors import ConflictError, UsageError

DEFAULT_POOL = IPv4Network("10.89.0.0/16")
DEFAULT_PREFIX = 24
MAX_PREFIX = 30  # a /31 or /32 leaves no room for a gateway and a container


@dataclass(frozen=True, slots=True)
class Subnet:
    """A network's IPv4 subnet and the gateway address the bridge holds."""

    network: IPv4Network
    gateway: IPv4Address

    @property
    def gateway_cidr(self) -> str:
        """``10.89.0.1/24``: the bridge's address."""
        return f"{self.gateway}/{self.network.prefixlen}"


def parse_subnet(text: str) -> IPv4Network:
    """``--subnet``: an IPv4 CIDR whose host bits are zero, with room for a gateway."""
    try:
        network = IPv4Network(text, strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            raise UsageError(
                f"invalid --subnet {text!r}: host bits are set",
                hint=f"did you mean {IPv4Network(text, strict=False)}?",
            ) from exc
        raise UsageError(
            f"invalid --subnet {text!r}", hint="give an IPv4 CIDR such as 10.89.5.0/24"
        ) from exc
    if "/" not in text:
        raise UsageError(f"invalid --subnet {text!r}: no prefix length", hint="e.g. 10.89.5.0/24")
    if network.prefixlen > MAX_PREFIX:
        raise UsageError(
            f"--subnet {text} is too small", hint=f"use a prefix of /{MAX_PREFIX} or shorter"
        )
    return network


def parse_gateway(text: str, network: IPv4Network) -> IPv4Address:
    """``--gateway``: a host address inside ``network``."""
    try:
        gateway = IPv4Address(text)
    except ValueError as exc:
        raise UsageError(f"invalid --gateway {text!r}", hint="give an IPv4 address") from exc
    if gateway not in network or gateway in (network.network_address, network.broadcast_address):
        raise UsageError(
            f"--gateway {text} is not a host address of {network}",
            hint="choose an address inside the subnet",
        )
    return gateway


def overlapping(network: IPv4Network, taken: Iterable[IPv4Network]) -> IPv4Network | None:
    """The first of ``taken`` that shares an address with ``network``, or None."""
    for other in taken:
        if network.overlaps(other):
            return other
    return None


def plan_subnet(subnet: str | None, gateway: str | None, taken: Iterable[IPv4Network]) -> Subnet:
    """The subnet of a new network: the one asked for (refused when it overlaps another),
    else the first free default ``10.89.N.0/24``."""
    taken = list(taken)
    if subnet is None:
        if gateway is not None:
            raise UsageError("--gateway needs --subnet", hint="give the subnet it belongs to")
        for candidate in DEFAULT_POOL.subnets(new_prefix=DEFAULT_PREFIX):
            if overlapping(candidate, taken) is None:
                return Subnet(candidate, candidate.network_address + 1)
        raise ConflictError(
            f"every default subnet of {DEFAULT_POOL} is taken",
            hint="remove unused networks (rctl network prune) or give --subnet",
        )
    network = parse_subnet(subnet)
    other = overlapping(network, taken)
    if other is not None:
        raise ConflictError(
            f"subnet {network} overlaps {other}, already used by another network",
            hint="choose a subnet that overlaps no other (rctl network ls)",
        )
    if gateway is None:
        return Subnet(network, network.network_address + 1)
    return Subnet(network, parse_gateway(gateway, network))


def allocate_address(subnet: Subnet, used: Iterable[IPv4Address]) -> IPv4Address:
    """The lowest host address of ``subnet`` that is neither the gateway nor in ``used``."""
    taken = {subnet.gateway, *used}
    for host in subnet.network.hosts():
        if host not in taken:
            return host
    raise ConflictError(
        f"no free address left in {subnet.network}",
        hint="disconnect containers from the network, or create one with a larger --subnet",
    )


def parse_address(text: str) -> IPv4Address:
    """An address read back from the state files."""
    return ipaddress.IPv4Address(text)
