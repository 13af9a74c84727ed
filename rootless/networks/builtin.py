"""The networks every user has without creating them, as ``network ls/inspect`` show them.

docker lists ``bridge``, ``host`` and ``none`` (drivers bridge, host, null); rctl's two
user-mode modes ``pasta`` and ``slirp4netns`` are listed the same way. ``bridge`` stands for
the default bridge network that ``--network bridge`` joins (:data:`DEFAULT_NETWORK`,
made on first use, as podman's ``podman`` network); the others are ``--network`` modes,
not records. None of them can be removed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace

from rootless.models import NetworkSummary
from rootless.networks.store import NetworkRecord
from rootless.reports.networks import NetworkMember, NetworkReport

# name -> driver, as docker names them (none's driver is "null").
BUILTIN_DRIVERS: Mapping[str, str] = {
    "bridge": "bridge",
    "host": "host",
    "none": "null",
    "pasta": "pasta",
    "slirp4netns": "slirp4netns",
}


def builtin_id(name: str) -> str:
    """A stable ID (64 hex digits) for a built-in network, the same on every host (podman
    derives its default network's ID the same way)."""
    return hashlib.sha256(name.encode()).hexdigest()


def is_builtin(name: str) -> bool:
    return name in BUILTIN_DRIVERS


def builtin_summary(name: str, default: NetworkRecord | None) -> NetworkSummary:
    """``network ls``'s row of a built-in network; ``bridge`` shows the default bridge
    network's subnet once it exists."""
    bridged = default if name == "bridge" else None
    return NetworkSummary(
        id=builtin_id(name),
        name=name,
        driver=BUILTIN_DRIVERS[name],
        subnet=bridged.subnet if bridged else "",
        gateway=bridged.gateway if bridged else "",
        internal=False,
        labels={},
        created=bridged.created if bridged else 0.0,
        bridge=bridged.bridge if bridged else "",
    )


def builtin_report(
    name: str, default: NetworkReport | None, users: Sequence[tuple[str, str]]
) -> NetworkReport:
    """``network inspect`` of a built-in network: ``bridge`` is the default bridge
    network's report (when it exists) under its docker name; the modes list the containers
    (``users``: ID and name) created with them."""
    if name == "bridge" and default is not None:
        return replace(default, name="bridge", id=builtin_id("bridge"))
    return NetworkReport(
        name=name,
        id=builtin_id(name),
        driver=BUILTIN_DRIVERS[name],
        containers=tuple(NetworkMember(cid, cname) for cid, cname in users),
    )
