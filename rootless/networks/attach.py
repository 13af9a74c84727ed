"""A container's start and stop on its bridge networks, and the rootless namespace's life.

Called from the container's unit (:mod:`rootless.containers.netattach`):

1. :func:`reserve` (before the container's namespaces exist): start the rootless network
   namespace's unit if it does not run, take an address on each of the container's
   networks (a *pending* lease, tied to the launcher's pid) and return the path of the
   namespace's user namespace, which the container joins.
2. :func:`attach` (the container's network namespace exists, nothing runs in it yet): one
   batch in the rootless namespace (bridges, veth pairs, addresses, default route, port
   rules), the ports published through slirp4netns's API, the leases completed, and the
   hosts files of everybody on those networks rewritten.
3. :func:`detach` (the unit's ``ExecStopPost=``, after any end, kill -9 included): the
   leases dropped, forwards and rules removed, bridges left without members deleted, the
   hosts files of the others rewritten, and when no lease is left the namespace's unit
   stopped. The container's veth ends vanish with its network namespace in any case.

Every step holds the networks' lock from reading the leases to writing them, so a start
can't reserve in a namespace that a stop is tearing down: a pending lease keeps it alive.
:func:`collect` drops stale leases (their container is gone but nobody detached them) the
same way; every ``rctl network`` command and every reservation runs it first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from netns.ipam import allocate_address
from netns.netctl import BridgeOp, Op, RuleOp, VethOp, dnat_rule, run_ops
from netns.ports import PublishedPort
from netns.rootlessns import TAP_ADDRESS, HostForward, add_forward, remove_forward
from rctlbase.errors import HostError, NotFoundError, RctlError
from rootless.containers import layout
from rootless.containers.untrusted import UntrustedFileError, read_file
from rootless.networks.hosts import update_hosts
from rootless.networks.leases import (
    Holder,
    Lease,
    LeaseState,
    holder_is_live,
    load_leases,
    netns_of,
    save_leases,
    split_stale,
    start_time,
)
from rootless.networks.store import NetworkRecord, NetworkStore

UNIT_PREFIX = "rctl-netns"
NETWORKS_FILE = layout.NETWORKS


@dataclass(frozen=True, slots=True)
class NetworkPaths:
    """Where one store's bridge networks keep their state, and its namespace's unit."""

    store: Path  # $XDG_DATA_HOME/rctl/networks: records, leases.json, .lock
    state: Path  # $XDG_RUNTIME_DIR/rctl/netns[-HASH]: holder.json, the API socket
    unit: str  # rctl-netns[-HASH].service

    @classmethod
    def for_store(cls, data: Path, runtime: Path) -> NetworkPaths:
        """One rootless namespace per store: ``rctl-netns.service`` for the default store
        (``~/.local/share/rctl``), ``rctl-netns-HASH.service`` for any other."""
        default = Path.home() / ".local/share/rctl"
        suffix = "" if data == default else "-" + hashlib.sha256(bytes(data)).hexdigest()[:8]
        return cls(data / "networks", runtime / f"netns{suffix}", f"{UNIT_PREFIX}{suffix}.service")

    @property
    def leases(self) -> Path:
        return self.store / "leases.json"


@dataclass(frozen=True, slots=True)
class Attachment:
    """One network a container is connected to, with its aliases there."""

    network: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ContainerNetworks:
    """``networks.json`` in the container's directory: its networks and ``--link`` s."""

    attachments: tuple[Attachment, ...] = ()
    links: tuple[tuple[str, str], ...] = ()
    extra_hosts: tuple[tuple[str, str], ...] = ()  # --add-host (address, name)

    def names(self) -> list[str]:
        return [a.network for a in self.attachments]


def load_container_networks(directory: Path) -> ContainerNetworks:
    try:
        raw = json.loads((directory / NETWORKS_FILE).read_text())
    except FileNotFoundError:
        return ContainerNetworks()
    return ContainerNetworks(
        tuple(Attachment(a["network"], tuple(a.get("aliases", ()))) for a in raw["attachments"]),
        tuple((str(n), str(a)) for n, a in raw.get("links", ())),
        tuple((str(a), str(n)) for a, n in raw.get("extra_hosts", ())),
    )


def save_container_networks(directory: Path, networks: ContainerNetworks) -> None:
    raw = {
        "attachments": [
            {"network": a.network, "aliases": list(a.aliases)} for a in networks.attachments
        ],
        "links": [list(link) for link in networks.links],
        "extra_hosts": [list(entry) for entry in networks.extra_hosts],
    }
    tmp = directory / f".{NETWORKS_FILE}.tmp"
    tmp.write_text(json.dumps(raw, indent=1))
    tmp.replace(directory / NETWORKS_FILE)


def host_ifname(container_id: str, network: str) -> str:
    """The veth end in the rootless namespace: unique per container and network, 14 chars."""
    return "v" + hashlib.sha256(f"{container_id}/{network}".encode()).hexdigest()[:13]


# -- the rootless namespace's unit --------------------------------------------------------


def _forked(action: Callable[[], None], what: str, unit: str) -> None:
    """Run ``action`` (D-Bus calls) in a forked child and wait for it. The container's
    launcher calls this right before setns(2) into the namespace's user namespace, which
    the kernel refuses (EINVAL) to a multi-threaded process, and D-Bus leaves threads
    (the loop's, its executor's) behind."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child, covered by the integration tests
        os.close(read_end)
        code = 0
        try:
            action()
        except RctlError as exc:
            os.write(write_end, f"{exc.message}\n{exc.hint or ''}".encode())
            code = 1
        except BaseException as exc:
            os.write(write_end, f"{exc!r}\n".encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as said:
        message = said.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if status != 0:
        text, _, hint = message.partition("\n")
        raise HostError(
            f"{what}: {text or 'unknown failure'}", hint=hint or f"journalctl --user -u {unit}"
        )


def start_holder(paths: NetworkPaths) -> Holder:
    """Start the rootless namespace's unit (forking start: returns once it is set up)."""
    what = "the rootless network namespace did not start"
    _forked(lambda: _start_holder_unit(paths), what, paths.unit)
    try:
        raw = json.loads((paths.state / "holder.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise HostError(what, hint=f"journalctl --user -u {paths.unit}") from exc
    return Holder(int(raw["pid"]), str(raw["userns"]), str(raw["api_socket"]), paths.unit)


def _start_holder_unit(paths: NetworkPaths) -> None:
    from units.manager import UserManager  # noqa: PLC0415
    from units.properties import CollectMode, ServiceSpec, ServiceType  # noqa: PLC0415

    paths.state.mkdir(mode=0o700, parents=True, exist_ok=True)
    (paths.state / "holder.json").unlink(missing_ok=True)
    spec = ServiceSpec(
        name=paths.unit,
        description="rctl rootless network namespace (bridge networks)",
        exec_start=(sys.executable, "-I", "-m", "rootless.networks.holder", str(paths.state)),
        service_type=ServiceType.FORKING,
        pid_file=str(paths.state / "holder.pid"),
        collect_mode=CollectMode.INACTIVE_OR_FAILED,
        timeout_stop_usec=5_000_000,
    )
    with UserManager() as manager:
        state = manager.unit_state(paths.unit)
        if state is not None and state.active_state not in ("inactive", "failed"):
            manager.stop(paths.unit)  # a namespace nobody knows any more
        if state is not None:
            with contextlib.suppress(NotFoundError):
                manager.reset_failed(paths.unit)
        manager.start_transient(spec, wait=True)


def stop_holder(paths: NetworkPaths) -> None:
    """Stop the rootless namespace's unit: the holder, slirp4netns, every bridge in it."""
    what = "cannot stop the rootless network namespace"
    _forked(lambda: _stop_holder_unit(paths), what, paths.unit)


def _stop_holder_unit(paths: NetworkPaths) -> None:
    from units.manager import UserManager  # noqa: PLC0415

    with UserManager() as manager:
        state = manager.unit_state(paths.unit)
        if state is not None and state.active_state not in ("inactive", "failed"):
            manager.stop(paths.unit)


# -- collecting what was left behind -------------------------------------------------------


def _teardown_ops(
    state: LeaseState, gone: Sequence[Lease], records: dict[str, NetworkRecord]
) -> list[Op]:
    """Operations undoing ``gone`` leases (``state`` is without them already)."""
    ops: list[Op] = []
    for lease in gone:
        if lease.pid and netns_of(lease.pid) == lease.netns:
            # still running (disconnect): else the pair vanished with its namespace
            ops.append(VethOp(lease.host_ifname, remove=True))
        ops += [RuleOp(rule, remove=True) for rule in lease.rules]
    for network in dict.fromkeys(lease.network for lease in gone):
        record = records.get(network)
        if record is not None and not state.on(network):
            ops.append(BridgeOp(record.bridge, record.ipam.gateway_cidr, record.subnet,
                                internal=record.internal, remove=True))  # fmt: skip
    return ops


def _release(
    paths: NetworkPaths, store: NetworkStore, state: LeaseState, gone: Sequence[Lease]
) -> LeaseState:
    """Drop ``gone`` from ``state`` and undo them; stop the namespace when nobody is left.
    Cleanup goes on past failures (a namespace half gone is still to be stopped)."""
    state = state.without(gone)
    holder = state.holder if holder_is_live(state.holder) else None
    if holder is not None and gone:
        for lease in gone:
            for forward in lease.forwards:
                remove_forward(holder.api_socket, forward[0])
        if state.leases:
            records = {r.name: r for r in store.all()}
            # the container's side vanished with its namespace anyway: go on regardless
            with contextlib.suppress(RctlError):
                run_ops(holder.pid, _teardown_ops(state, gone, records))
    update_hosts(state, {lease.container_id for lease in state.leases})
    if not state.leases:
        if holder is not None or state.holder is not None:
            stop_holder(paths)
        state = replace(state, holder=None)
    return state


def collect(paths: NetworkPaths, store: NetworkStore) -> LeaseState:
    """Drop stale leases (see :mod:`rootless.networks.leases`); call under the lock."""
    state = load_leases(paths.leases)
    fresh, stale = split_stale(state)
    if stale or (state.holder is not None and not fresh.leases):
        fresh = _release(paths, store, state, stale)
        save_leases(paths.leases, fresh)
    return fresh


# -- a container's start -------------------------------------------------------------------


def _in_stop_hook() -> bool:
    # systemd sets SERVICE_RESULT for ExecStop= and ExecStopPost= only (systemd.exec(5)).
    return "SERVICE_RESULT" in os.environ


# /etc/hostname holds one name of at most 64 bytes (HOST_NAME_MAX); room for odd spacing.
HOSTNAME_LIMIT = 4096


def container_hostname(directory: Path, record: dict[str, Any]) -> str:
    """The name in the container's /etc/hostname (what its own /etc/hosts line names).

    The container can write that file (it is bind-mounted read-write): it is read as an
    untrusted file, a few KiB at most, and its first line only; when it is no longer a
    small regular file, the name the container was created with."""
    try:
        text = read_file(
            str(directory / "etc" / "hostname"), HOSTNAME_LIMIT,
            what="the container's /etc/hostname", hint="",
        ).decode(errors="replace")  # fmt: skip
    except (OSError, UntrustedFileError):
        text = ""
    lines = text.strip().splitlines()
    if lines and lines[0].strip():
        return lines[0].strip()
    return str(record.get("options", {}).get("Hostname") or str(record["id"])[:12])


def reserve(paths: NetworkPaths, directory: Path, container_id: str) -> str | None:
    """Make sure the rootless namespace runs, take the container's addresses; the path of
    the user namespace to join. In a stop hook, never start anything: the running
    namespace's path or None."""
    store = NetworkStore(paths.store)
    wanted = load_container_networks(directory)
    if not wanted.attachments:
        return None  # disconnected from every network: loopback only, no namespace needed
    with store.locked():
        state = collect(paths, store)
        if _in_stop_hook():
            holder = state.holder
            return f"/proc/{holder.pid}/ns/user" if holder_is_live(holder) and holder else None
        holder = state.holder if holder_is_live(state.holder) else None
        if holder is None:
            holder = start_holder(paths)
            state = replace(state, holder=holder)
            save_leases(paths.leases, state)
        record = json.loads(Path(layout.record_file(directory)).read_text())
        hostname = container_hostname(directory, record)
        state = state.without(state.of(container_id))
        me, me_start = os.getpid(), start_time(os.getpid())
        for index, attachment in enumerate(wanted.attachments):
            network = store.get(attachment.network)
            used = [IPv4Address(lease.address) for lease in state.on(network.name)]
            address = allocate_address(network.ipam, used)
            lease = Lease(
                container_id=container_id,
                name=str(record["name"]),
                network=network.name,
                address=str(address),
                host_ifname=host_ifname(container_id, network.name),
                ifname=f"eth{index}",
                aliases=attachment.aliases,
                links=wanted.links,
                extra_hosts=wanted.extra_hosts,
                hostname=hostname,
                hosts_path=str(directory / "etc" / "hosts"),
                owner_pid=me,
                owner_start=me_start,
            )
            state = state.with_lease(lease)
        save_leases(paths.leases, state)
        return f"/proc/{holder.pid}/ns/user"


def attachment_ops(
    leases: Sequence[Lease], records: dict[str, NetworkRecord], pid: int, default_route: bool
) -> list[Op]:
    """Bridges and veth pairs for ``leases`` of one container whose namespace holds ``pid``;
    the default route goes through the first non-internal network's gateway."""
    ops: list[Op] = []
    routed = not default_route
    for lease in leases:
        record = records[lease.network]
        ipam = record.ipam
        ops.append(
            BridgeOp(record.bridge, ipam.gateway_cidr, record.subnet, internal=record.internal)
        )
        gateway = ""
        if not routed and not record.internal:
            gateway, routed = str(ipam.gateway), True
        ops.append(VethOp(
            lease.host_ifname, bridge=record.bridge, pid=pid, ifname=lease.ifname,
            address=f"{lease.address}/{ipam.network.prefixlen}", gateway=gateway,
        ))  # fmt: skip
    return ops


def attach(
    paths: NetworkPaths,
    directory: Path,
    container_id: str,
    pid: int,
    ports: Sequence[PublishedPort],
    *,
    default_route: bool = True,
) -> None:
    """Connect the container's new network namespace (``pid`` in it) to its networks."""
    store = NetworkStore(paths.store)
    if not load_container_networks(directory).attachments:
        return
    with store.locked():
        state = load_leases(paths.leases)
        holder = state.holder
        mine = state.of(container_id)
        if holder is None or not holder_is_live(holder) or not mine:
            raise HostError(
                "the rootless network namespace went away while the container started",
                hint="start the container again",
            )
        records = {r.name: r for r in store.all()}
        ops = attachment_ops(mine, records, pid, default_route)
        first = mine[0]
        rules = [
            dnat_rule(str(p.protocol), TAP_ADDRESS, p.host_port, first.address, p.container_port)
            for p in ports
        ]
        ops += [RuleOp(rule) for rule in rules]
        run_ops(holder.pid, ops)
        forwards = []
        try:
            for p in ports:
                forward = HostForward(str(p.protocol), p.host_ip, p.host_port)
                fid = add_forward(holder.api_socket, forward)
                forwards.append((fid, str(p.protocol), p.host_ip, p.host_port, p.container_port))
        finally:
            netns = netns_of(pid)
            for index, lease in enumerate(mine):
                done = replace(lease, pid=pid, netns=netns, owner_pid=0, owner_start="")
                if index == 0:
                    done = replace(done, forwards=tuple(forwards), rules=tuple(rules))
                state = state.with_lease(done)
            save_leases(paths.leases, state)
        affected = {lease.network for lease in mine}
        update_hosts(state, {x.container_id for x in state.leases if x.network in affected})


# -- a container's stop --------------------------------------------------------------------


def hand_over(paths: NetworkPaths, container_id: str, pid: int) -> None:
    """The container's first process ``pid`` now holds its network namespace (the launcher
    that attached it exits): the leases name it, so that they stay live."""
    store = NetworkStore(paths.store)
    with store.locked():
        state = load_leases(paths.leases)
        for lease in state.of(container_id):
            state = state.with_lease(replace(lease, pid=pid))
        save_leases(paths.leases, state)


def detach(paths: NetworkPaths, container_id: str, network: str | None = None) -> None:
    """Undo the container's attachments (all, or the one to ``network``); stop the
    namespace when it was the last. Nothing attached: nothing to do."""
    store = NetworkStore(paths.store)
    if not paths.leases.exists():
        return
    with store.locked():
        state = load_leases(paths.leases)
        gone = [x for x in state.of(container_id) if network is None or x.network == network]
        stale = split_stale(state.without(gone))[1]
        state = _release(paths, store, state, [*gone, *stale])
        save_leases(paths.leases, state)


# -- connecting a running container ---------------------------------------------------------


def connect_running(
    paths: NetworkPaths, store: NetworkStore, container_id: str, network: NetworkRecord,
    aliases: tuple[str, ...],
) -> bool:  # fmt: skip
    """Attach a running container (already on a bridge network) to one more; False when it
    has no live attachment (stopped: it attaches at its next start). Call under the lock."""
    state = collect(paths, store)
    mine = state.of(container_id)
    holder = state.holder
    if not mine or holder is None or not holder_is_live(holder):
        return False
    first = mine[0]
    used = [IPv4Address(lease.address) for lease in state.on(network.name)]
    taken = {lease.ifname for lease in mine}
    ifname = next(f"eth{i}" for i in range(len(taken) + 1) if f"eth{i}" not in taken)
    lease = replace(
        first, network=network.name, address=str(allocate_address(network.ipam, used)),
        host_ifname=host_ifname(container_id, network.name), ifname=ifname, aliases=aliases,
        forwards=(), rules=(),
    )  # fmt: skip
    run_ops(holder.pid, attachment_ops([lease], {network.name: network}, first.pid, False))
    state = state.with_lease(lease)
    save_leases(paths.leases, state)
    update_hosts(state, {x.container_id for x in state.leases if x.network == network.name})
    update_hosts(state, [container_id])
    return True


def disconnect_running(
    paths: NetworkPaths, store: NetworkStore, container_id: str, network: str
) -> None:
    """Detach a running container from one network (call under the lock)."""
    state = collect(paths, store)
    gone = [x for x in state.of(container_id) if x.network == network]
    if gone:
        save_leases(paths.leases, _release(paths, store, state, gone))
        # the container keeps its own file current too (one network less)
        update_hosts(load_leases(paths.leases), [container_id])
