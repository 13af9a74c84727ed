"""Name resolution on bridge networks: each attached container's ``/etc/hosts``, planned from
the leases and rewritten whenever a container joins or leaves one of its networks.

Why hosts files and not a DNS responder per network: no process of rctl's own stays per
network (a responder would be one more helper to start, supervise and stop with the last
container, and memory per idle container is a target), resolution works with any libc and
any image (even static busybox) without a resolv.conf change, and it is exactly the seeds'
"système de DNS rudimentaire (/etc/hosts)" that ``--link`` always was. The price: a name
is known only to containers that run (and are rewritten) while the other one is attached,
which is what docker's embedded DNS answers too.

The file is bind-mounted into the container, so it is rewritten in place (same inode),
never replaced by a rename: a rename would leave the container reading the old file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from rootless.networks.leases import LeaseState

BASE = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def _line(address: str, names: Iterable[str], seen: set[str]) -> str | None:
    fresh = [n for n in dict.fromkeys(names) if n and n not in seen]
    if not fresh:
        return None
    seen.update(fresh)
    return f"{address}\t{' '.join(fresh)}"


def plan_hosts(state: LeaseState, container_id: str) -> str:
    """``/etc/hosts`` of ``container_id``: its own addresses, its ``--link`` targets (alias,
    name and aliases) when they share a network with it, every other container attached to
    one of its networks (name and aliases there), then its ``--add-host`` entries. Names
    from containers appear once, the first match wins."""
    own = state.of(container_id)
    if not own:
        return BASE
    seen = {"localhost"}
    lines = [BASE.rstrip("\n")]
    first = own[0]
    for lease in own:
        line = _line(lease.address, (first.hostname, lease.name, *lease.aliases), seen)
        if line:
            lines.append(line)
    networks = {lease.network for lease in own}
    peers = [p for p in state.leases if p.network in networks and p.container_id != container_id]
    for name, alias in first.links:
        target = next((p for p in peers if p.name == name), None)
        if target is not None:
            line = _line(target.address, (alias, name, *target.aliases), seen)
            if line:
                lines.append(line)
    for peer in peers:
        line = _line(peer.address, (peer.name, *peer.aliases), seen)
        if line:
            lines.append(line)
    # --add-host entries last, as given (docker lists them even when a name repeats)
    lines += [f"{address}\t{name}" for address, name in first.extra_hosts]
    return "\n".join(lines) + "\n"


def write_in_place(path: Path, text: str) -> bool:
    """Rewrite ``path`` keeping its inode (it is bind-mounted); False when it is gone."""
    data = text.encode()
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if os.read(fd, len(data) + 1) == data:
            return True
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, data)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)
    return True


def update_hosts(state: LeaseState, container_ids: Iterable[str]) -> None:
    """Rewrite the hosts files of ``container_ids`` (those with a lease) from ``state``."""
    for container_id in dict.fromkeys(container_ids):
        leases = state.of(container_id)
        if leases and leases[0].hosts_path:
            write_in_place(Path(leases[0].hosts_path), plan_hosts(state, container_id))
