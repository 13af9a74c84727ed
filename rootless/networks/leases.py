"""Who is attached to which bridge network right now: ``networks/leases.json``.

A lease is one container on one network: its address there, its interfaces, the ports
published through it and the netfilter rules made for them. The file also names the
rootless namespace's holder (pid and user namespace) while it runs. Read and written only
under :meth:`NetworkStore.locked`; written by rename, so a reader never sees half a file.

A lease is *live* while the container's network namespace is: the lease records a pid in
it and that namespace's identity (``net:[INODE]``). Before the namespace exists (between
the launcher's reservation and the attachment) the lease records the launcher's pid and
start time instead. Anything else is stale, whoever was supposed to clean it up (the
container unit's stop hook, which also runs after kill -9) and didn't: every command that
reads the leases drops stale ones first (:func:`split_stale`), and a namespace without a
live lease is stopped.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

Forward = tuple[int, str, str, int, int]  # (slirp id, protocol, host ip, host port, ctr port)


@dataclass(frozen=True, slots=True)
class Lease:
    """One container attached to one network."""

    container_id: str
    name: str
    network: str
    address: str  # 10.89.0.2 (no prefix)
    host_ifname: str
    ifname: str  # eth0 inside the container
    aliases: tuple[str, ...] = ()
    links: tuple[tuple[str, str], ...] = ()  # (container name, alias)
    extra_hosts: tuple[tuple[str, str], ...] = ()  # --add-host (address, name)
    hostname: str = ""
    hosts_path: str = ""
    pid: int = 0  # a process in the container's network namespace, once attached
    netns: str = ""  # readlink /proc/PID/ns/net at attachment
    owner_pid: int = 0  # before attachment: the launcher reserving the lease
    owner_start: str = ""
    forwards: tuple[Forward, ...] = ()
    rules: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class Holder:
    """The running rootless namespace: its holder's pid, user namespace, API socket."""

    pid: int
    userns: str
    api_socket: str
    unit: str


@dataclass(frozen=True, slots=True)
class LeaseState:
    holder: Holder | None = None
    leases: tuple[Lease, ...] = ()
    extra: dict[str, object] = field(default_factory=dict)

    def on(self, network: str) -> list[Lease]:
        return [lease for lease in self.leases if lease.network == network]

    def of(self, container_id: str) -> list[Lease]:
        return [lease for lease in self.leases if lease.container_id == container_id]

    def without(self, doomed: Iterable[Lease]) -> LeaseState:
        gone = {(d.container_id, d.network) for d in doomed}
        kept = tuple(x for x in self.leases if (x.container_id, x.network) not in gone)
        return replace(self, leases=kept)

    def with_lease(self, lease: Lease) -> LeaseState:
        return replace(self.without([lease]), leases=(*self.without([lease]).leases, lease))


def load_leases(path: Path) -> LeaseState:
    try:
        raw = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return LeaseState()
    holder = Holder(**raw["holder"]) if raw.get("holder") else None
    leases = []
    for item in raw.get("leases", []):
        item["aliases"] = tuple(item.get("aliases", ()))
        item["links"] = tuple(tuple(x) for x in item.get("links", ()))
        item["extra_hosts"] = tuple(tuple(x) for x in item.get("extra_hosts", ()))
        item["forwards"] = tuple(tuple(x) for x in item.get("forwards", ()))
        item["rules"] = tuple(tuple(x) for x in item.get("rules", ()))
        leases.append(Lease(**item))
    return LeaseState(holder, tuple(leases))


def save_leases(path: Path, state: LeaseState) -> None:
    raw = {
        "holder": asdict(state.holder) if state.holder else None,
        "leases": [asdict(lease) for lease in state.leases],
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".leases-")
    with os.fdopen(fd, "w") as fh:
        json.dump(raw, fh, indent=1)
    os.replace(tmp, path)


def netns_of(pid: int) -> str:
    """``net:[4026532...]`` of ``pid``, "" once it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return ""


def userns_of(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/user")
    except OSError:
        return ""


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (stat field 22), "" if gone:
    with the pid, it names one process even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[19]


def lease_is_live(lease: Lease) -> bool:
    """Is the container behind ``lease`` still there (see the module docstring)?"""
    if lease.pid:
        return bool(lease.netns) and netns_of(lease.pid) == lease.netns
    return bool(lease.owner_pid) and start_time(lease.owner_pid) == lease.owner_start


def holder_is_live(holder: Holder | None) -> bool:
    return holder is not None and userns_of(holder.pid) == holder.userns


def split_stale(
    state: LeaseState, is_live: Callable[[Lease], bool] = lease_is_live
) -> tuple[LeaseState, list[Lease]]:
    """The state without its stale leases, and those."""
    stale = [lease for lease in state.leases if not is_live(lease)]
    return state.without(stale), stale
