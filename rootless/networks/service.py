"""The use cases behind ``rctl network ...`` and a container's network flags at create.

Networks are records (:mod:`rootless.networks.store`); which containers use one is read
from the containers' ``networks.json``; which of them are attached right now, from the
leases (:mod:`rootless.networks.leases`). Everything that changes networks or leases runs
under the networks' lock.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Network
from pathlib import Path
from typing import TYPE_CHECKING

from netns.ipam import Subnet, plan_subnet
from netns.rootlessns import DNS_ADDRESS
from rctlbase.errors import ConflictError, NotFoundError, UsageError
from rootless.containers.netmode import MODES
from rootless.containers.record import ContainerRecord, ContainerStore
from rootless.contracts import ContainerRemover
from rootless.eventlog import record_event
from rootless.filters import (
    NETWORK_KEYS,
    NETWORK_PRUNE_KEYS,
    NetworkFacts,
    network_matcher,
    parse_filters,
    prune_matcher,
)
from rootless.models import NetworkCreateOptions, NetworkSummary, RunOptions
from rootless.networks.attach import (
    Attachment,
    ContainerNetworks,
    NetworkPaths,
    collect,
    connect_running,
    disconnect_running,
    load_container_networks,
    save_container_networks,
)
from rootless.networks.builtin import (
    BUILTIN_DRIVERS,
    builtin_report,
    builtin_summary,
    is_builtin,
)
from rootless.networks.leases import load_leases
from rootless.networks.store import (
    DEFAULT_NETWORK,
    NetworkRecord,
    NetworkStore,
    check_network_name,
    new_network_id,
    next_bridge_name,
    now,
)
from rootless.reports.containers import Endpoint
from rootless.reports.networks import NetworkMember, NetworkReport

if TYPE_CHECKING:
    from rootless.containers.netmode import ContainerNetwork

DEFAULT_SUBNET = "10.88.0.0/16"  # podman's default network's subnet


def is_network_mode(value: str) -> bool:
    """``pasta``, ``slirp4netns:mtu=1500``, ``none``...: not a bridge network's name."""
    return value.split(":", 1)[0] in MODES


@dataclass(frozen=True, slots=True)
class BridgeRequest:
    """A container's bridge networks as asked for with ``--network``, ``--network-alias``
    and ``--link``, before they are checked."""

    networks: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    links: tuple[str, ...] = ()


def bridge_request(
    network: str | None, networks: Sequence[str], aliases: Sequence[str], links: Sequence[str]
) -> BridgeRequest | None:
    """Sort out the ``--network`` values: None when the container gets a mode (pasta, none,
    host...) and no ``--link``; several values must all be network names (podman)."""
    values = [v for v in (networks or ((network,) if network else ())) if v]
    modes = [v for v in values if is_network_mode(v)]
    if modes and (len(values) > 1):
        raise UsageError(
            f"--network {modes[0]} can't be combined with other --network values",
            hint="give one mode, or one or more network names",
        )
    if modes:
        if aliases:
            raise UsageError("--network-alias needs a bridge network", hint="add --network NAME")
        if links:
            raise UsageError("--link needs a bridge network", hint="drop --network " + modes[0])
        return None
    if not values and not links:
        if aliases:
            raise UsageError("--network-alias needs a bridge network", hint="add --network NAME")
        return None
    names = tuple(DEFAULT_NETWORK if v == "bridge" else v for v in values)
    return BridgeRequest(tuple(dict.fromkeys(names)), tuple(aliases), tuple(links))


def parse_link(text: str) -> tuple[str, str]:
    """``--link NAME[:ALIAS]``."""
    name, _, alias = text.partition(":")
    if not name or ":" in alias:
        raise UsageError(f"invalid --link {text!r}", hint="use --link NAME[:ALIAS]")
    return name, alias or name


class NetworkService:
    """Bridge networks of one store."""

    def __init__(
        self, paths: NetworkPaths, containers: ContainerStore,
        remover: ContainerRemover | None = None,
    ) -> None:  # fmt: skip
        self.paths = paths
        self.store = NetworkStore(paths.store)
        self.containers = containers
        self.remover = remover

    # -- records ---------------------------------------------------------------------------

    def _create_locked(self, options: NetworkCreateOptions) -> NetworkRecord:
        name = check_network_name(options.name)
        if options.driver != "bridge":
            raise UsageError(f"unsupported network driver {options.driver!r}", hint="use -d bridge")
        labels = {}
        for label in options.labels:
            key, _, value = label.partition("=")
            if not key:
                raise UsageError(f"invalid --label {label!r}", hint="use KEY=VALUE")
            labels[key] = value
        self.store.check_free(name)
        records = self.store.all()
        taken = [IPv4Network(r.subnet) for r in records]
        subnet = plan_subnet(options.subnet, options.gateway, taken)
        return self._save_new(name, subnet, internal=options.internal, labels=labels)

    def _save_new(
        self, name: str, subnet: Subnet, *, internal: bool, labels: dict[str, str]
    ) -> NetworkRecord:
        record = NetworkRecord(
            name=name,
            id=new_network_id(),
            subnet=str(subnet.network),
            gateway=str(subnet.gateway),
            bridge=next_bridge_name({r.bridge for r in self.store.all()}),
            internal=internal,
            labels=labels,
            created=now(),
        )
        self.store.save(record)
        return record

    def create(self, options: NetworkCreateOptions) -> NetworkRecord:
        """``rctl network create``: a record; the bridge appears with its first container."""
        with self.store.locked():
            record = self._create_locked(options)
        self.event(record.id, record.name, "create")
        return record

    def event(self, network_id: str, name: str, action: str, **extra: str) -> None:
        """Log a network event (:mod:`rootless.eventlog`)."""
        attributes = {"name": name, "type": "bridge", **extra}
        record_event(str(self.paths.store.parent), "network", action, network_id, attributes)

    def collect(self) -> None:
        """Drop what containers that vanished without their stop hook left behind (and stop
        the rootless namespace if nobody is left in it)."""
        with self.store.locked():
            collect(self.paths, self.store)

    def users(self, record: NetworkRecord) -> list[ContainerRecord]:
        """Containers (running or not) configured on ``record``."""
        return [
            c
            for c in self.containers.all()
            if record.name in load_container_networks(self.containers.dir(c.id)).names()
        ]

    def container_networks(self, container_id: str) -> dict[str, Endpoint]:
        """docker inspect's ``NetworkSettings.Networks`` of a container: its bridge networks,
        with the address while it is attached ({} for a container without any)."""
        directory = self.containers.dir(container_id)
        attachments = load_container_networks(directory).attachments
        if not attachments:
            return {}
        leases = {x.network: x for x in load_leases(self.paths.leases).of(container_id)}
        out: dict[str, Endpoint] = {}
        for attachment in attachments:
            lease = leases.get(attachment.network)
            try:
                record = self.store.get(attachment.network)
            except NotFoundError:
                continue
            out[attachment.network] = Endpoint(
                network_id=record.id,
                aliases=tuple(attachment.aliases),
                ip_address=lease.address if lease else "",
                prefix_len=record.ipam.network.prefixlen if lease else 0,
                gateway=record.gateway if lease else "",
            )
        return out

    def summaries(
        self, filters: Sequence[str] = (), *, builtin: bool = False
    ) -> list[NetworkSummary]:
        """``rctl network ls``, with docker's ``--filter`` name=, id=, label=, driver=,
        type=, scope=; ``builtin`` adds bridge, host, none, pasta, slirp4netns (docker's
        order: by name)."""
        keep = network_matcher(
            parse_filters(filters, NETWORK_KEYS), now=datetime.datetime.now(datetime.UTC)
        )
        self.collect()
        records = self.store.all()
        rows = [
            NetworkSummary(
                id=record.id, name=record.name, driver=record.driver,
                subnet=record.subnet, gateway=record.gateway,
                internal=record.internal, labels=dict(record.labels),
                created=record.created, bridge=record.bridge,
            )
            for record in records
        ]  # fmt: skip
        if builtin:
            default = next((r for r in records if r.name == DEFAULT_NETWORK), None)
            rows += [builtin_summary(name, default) for name in BUILTIN_DRIVERS]
            rows.sort(key=lambda row: row.name)
        return [row for row in rows if keep(network_facts(row))]

    def inspect(self, ref: str) -> NetworkReport:
        """``rctl network inspect``: docker's document; the built-in networks' too."""
        if is_builtin(ref):
            try:
                default = self.inspect(DEFAULT_NETWORK) if ref == "bridge" else None
            except NotFoundError:
                default = None
            users = [
                (c.id, c.name) for c in self.containers.all()
                if str(c.options.get("NetworkMode", "")).split(":", 1)[0] == ref
            ]  # fmt: skip
            return builtin_report(ref, default, users)
        record = self.store.get(ref)
        with self.store.locked():
            state = collect(self.paths, self.store)
        prefix = record.ipam.network.prefixlen
        return NetworkReport(
            name=record.name,
            id=record.id,
            driver=record.driver,
            created=record.created,
            subnet=record.subnet,
            gateway=record.gateway,
            internal=record.internal,
            labels=dict(record.labels),
            containers=tuple(
                NetworkMember(lease.container_id, lease.name, f"{lease.address}/{prefix}")
                for lease in state.on(record.name)
            ),
            interface=record.bridge,
        )

    def reports(self, filters: Sequence[str] = ()) -> list[NetworkReport]:
        """``rctl network ls`` as docker's documents (``GET /networks``), built-in ones
        included."""
        return [self.inspect(row.name) for row in self.summaries(filters, builtin=True)]

    def remove(self, refs: Sequence[str], *, force: bool = False) -> list[str]:
        """``rctl network rm``: refused while a container uses it (``-f`` removes those),
        and for the built-in networks."""
        for ref in refs:
            if is_builtin(ref):
                raise ConflictError(
                    f"{ref} is a pre-defined network and cannot be removed",
                    hint="only networks made with 'rctl network create' can be removed",
                )
        records = [self.store.get(ref) for ref in refs]  # every name checked first
        users = {record.name: self.users(record) for record in records}
        for record in records:
            if users[record.name] and not force:
                names = ", ".join(u.name for u in users[record.name])
                raise ConflictError(
                    f"network {record.name} is in use by container(s): {names}",
                    hint=f"remove them first, or use 'rctl network rm -f {record.name}'",
                )
        done = []
        for record in records:
            for user in users[record.name]:
                if self.remover is not None:
                    self.remover.remove_container(user.id)
            with self.store.locked():
                self.store.delete(record.name)
            self.event(record.id, record.name, "destroy")
            done.append(record.name)
        return done

    def prune(self, filters: Sequence[str] = ()) -> list[str]:
        """Remove every network no container uses (the default one stays); ``filters``:
        docker's until=, label=, label!=."""
        keep = prune_matcher(parse_filters(filters, NETWORK_PRUNE_KEYS))
        self.collect()
        doomed = [
            r.name for r in self.store.all()
            if r.name != DEFAULT_NETWORK and not self.users(r) and keep(r.created, r.labels)
        ]  # fmt: skip
        ids = {r.name: r.id for r in self.store.all()}
        with self.store.locked():
            for name in doomed:
                self.store.delete(name)
        for name in doomed:
            self.event(ids.get(name, name), name, "destroy")
        return doomed

    # -- containers --------------------------------------------------------------------------

    def default_network(self) -> NetworkRecord:
        """``--network bridge``: the default network (10.88.0.0/16 when free), made on
        first use."""
        with self.store.locked():
            try:
                return self.store.get(DEFAULT_NETWORK)
            except NotFoundError:
                pass
            taken = [IPv4Network(r.subnet) for r in self.store.all()]
            free = not any(IPv4Network(DEFAULT_SUBNET).overlaps(t) for t in taken)
            subnet = plan_subnet(DEFAULT_SUBNET if free else None, None, taken)
            return self._save_new(DEFAULT_NETWORK, subnet, internal=False, labels={})

    def plan_container(self, request: BridgeRequest) -> ContainerNetworks:
        """Check a new container's bridge networks and links (every error names its flag)."""
        for alias in request.aliases:
            check_alias(alias)
        links = tuple(parse_link(text) for text in request.links)
        names = list(request.networks)
        linked_networks: list[str] = []
        for name, _ in links:
            try:
                target = self.containers.get(name)
            except NotFoundError:
                raise NotFoundError(
                    f"--link {name}: no such container", hint="start the container to link first"
                ) from None
            theirs = load_container_networks(self.containers.dir(target.id)).names()
            if not theirs:
                raise UsageError(
                    f"--link {name}: container {name} is not on a bridge network",
                    hint="run it with --network NAME and give this container the same one",
                )
            linked_networks += theirs
        if not names:
            # docker's legacy links put both containers on one bridge: join the target's.
            names = list(dict.fromkeys(linked_networks))[:1]
        attachments = []
        for name in names:
            if name == DEFAULT_NETWORK:
                self.default_network()
            try:
                record = self.store.get(name)
            except NotFoundError:
                raise NotFoundError(
                    f"--network {name}: no such network",
                    hint=f"create it first: rctl network create {name}",
                ) from None
            attachments.append(Attachment(record.name, request.aliases))
        for name, _ in links:
            target = self.containers.get(name)
            theirs = load_container_networks(self.containers.dir(target.id)).names()
            if not set(theirs) & {a.network for a in attachments}:
                raise UsageError(
                    f"--link {name}: no network in common with container {name}",
                    hint=f"add --network {theirs[0]}",
                )
        return ContainerNetworks(tuple(attachments), links)

    def _bridged(self, ref: str) -> tuple[ContainerRecord, Path, ContainerNetworks]:
        try:
            record = self.containers.get(ref)
        except NotFoundError:
            raise NotFoundError(
                f"no such container: {ref}", hint="list containers with 'rctl ps -a'"
            ) from None
        directory = self.containers.dir(record.id)
        networks = load_container_networks(directory)
        launch = self.containers.load_launch(record.id)
        if launch.network != "bridge":
            raise UsageError(
                f"container {record.name} is not on a bridge network (--network {launch.network})",
                hint="only containers created with --network NAME can join other networks",
            )
        return record, directory, networks

    def connect(self, network: str, container: str, aliases: Sequence[str] = ()) -> None:
        """``rctl network connect``: now if the container runs, else at its next start
        (``bridge``: the default bridge network, made on first use)."""
        record = self.default_network() if network == "bridge" else self.store.get(network)
        for alias in aliases:
            check_alias(alias)
        target, directory, networks = self._bridged(container)
        if record.name in networks.names():
            raise ConflictError(
                f"container {target.name} is already connected to network {record.name}",
                hint=f"rctl network disconnect {record.name} {target.name} first",
            )
        with self.store.locked():
            attachments = (*networks.attachments, Attachment(record.name, tuple(aliases)))
            save_container_networks(directory, replace(networks, attachments=attachments))
            try:
                connect_running(self.paths, self.store, target.id, record, tuple(aliases))
            except BaseException:
                save_container_networks(directory, networks)
                raise

    def disconnect(self, network: str, container: str) -> None:
        """``rctl network disconnect``: at once if the container runs."""
        record = self.store.get(DEFAULT_NETWORK if network == "bridge" else network)
        target, directory, networks = self._bridged(container)
        if record.name not in networks.names():
            raise ConflictError(
                f"container {target.name} is not connected to network {record.name}",
                hint="see 'rctl network inspect'",
            )
        with self.store.locked():
            kept = tuple(a for a in networks.attachments if a.network != record.name)
            save_container_networks(directory, replace(networks, attachments=kept))
            disconnect_running(self.paths, self.store, target.id, record.name)


def check_alias(alias: str) -> str:
    from rootless.networks.store import NAME  # noqa: PLC0415

    if not NAME.fullmatch(alias):
        raise UsageError(
            f"invalid --network-alias {alias!r}",
            hint="use letters, digits, '_', '.', '-', starting with a letter or digit",
        )
    return alias


def network_facts(row: NetworkSummary) -> NetworkFacts:
    """What ``network ls --filter`` looks at in a row."""
    return NetworkFacts(
        row.id, row.name, row.driver, row.labels, row.created, builtin=is_builtin(row.name)
    )


def bridge_network_for(options: RunOptions, exposed: Sequence[str]) -> ContainerNetwork:
    """A bridged container's ports, host entries and DNS (like a mode's; the name server is
    slirp4netns's forwarder of the rootless namespace, reached through the gateway)."""
    from rootless.containers.netmode import (  # noqa: PLC0415
        NetworkChoice,
        NetworkMode,
        plan_network,
    )
    from rootless.containers.spec import parse_add_host, parse_dns  # noqa: PLC0415

    names = options.networks or ((options.network,) if options.network else ())
    hosts = [parse_add_host(h) for h in options.add_host]
    if any(h.address == "host-gateway" for h in hosts):
        raise UsageError(
            "host-gateway is not available on bridge networks",
            hint="use --network pasta or slirp4netns for host loopback access",
        )
    net = plan_network(
        NetworkChoice(NetworkMode.BRIDGE, name=",".join(names)),
        publish=options.publish,
        publish_all_ports=options.publish_all,
        exposed=exposed,
        add_hosts=hosts,
        dns=[parse_dns(d) for d in options.dns],
        dns_search=list(options.dns_search),
        dns_options=list(options.dns_option),
    )
    if any(":" in p.host_ip for p in net.ports):
        raise UsageError(
            "--publish with an IPv6 host address is not available on bridge networks",
            hint="publish on an IPv4 address",
        )
    return replace(net, dns=net.dns or (DNS_ADDRESS,))
