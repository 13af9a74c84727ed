"""Pod use cases (``rctl pod ...``): a pod's record and unit, and its members through the
container service (a member is an ordinary container whose record names its pod).

Starting a pod starts its unit (:mod:`rootless.pods.unit`), then its members; stopping it
stops the members (each with its stop timeout and stop hook), then the unit. The members'
units are bound to the pod's (``BindsTo=``), so ``systemctl --user stop rctl-pod-ID`` or the
holder's death stops them as well.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rctlbase.errors import ConflictError, NotFoundError, UsageError
from rootless.containers.ports import check_available, choose_ports, parse_publish
from rootless.containers.record import new_id, now, random_name
from rootless.models import PodCreateOptions
from rootless.pods.record import PodRecord, check_pod_name, parse_share
from rootless.pods.unit import ACTIVE, pod_store, start_pod_unit
from rootless.reports.pods import PodInspect, PodListRow, PodMember, PodPort

if TYPE_CHECKING:
    from rootless.containers.service import ContainerService
    from units.journal import JournalEntry

NETWORKS = ("slirp4netns", "pasta", "none")
HOSTNAME = re.compile(r"(?!-)[a-zA-Z0-9-]{1,63}(?<!-)(\.(?!-)[a-zA-Z0-9-]{1,63}(?<!-))*")
FILTER_KEYS = ("name", "id", "label", "status")


class PodService:
    """One user's pods."""

    def __init__(
        self, containers: ContainerService, data: Path, runtime: Path, default_network: str
    ) -> None:
        self.containers = containers
        self.store = pod_store(data, runtime)
        self.default_network = default_network

    # -- create ----------------------------------------------------------------------------

    def create(self, options: PodCreateOptions) -> PodRecord:
        """``rctl pod create``: the record; nothing runs until a member starts (or
        ``pod start``)."""
        return self._make(options)

    def unit_record(self, options: PodCreateOptions, unit: str) -> PodRecord:
        """A definition's pod at its generated unit's start: made if missing, else its
        record brought to the definition, keeping its ID (members find it by ID)."""
        current = self.store.find(options.name or "")
        if current is None:
            return self._make(options, unit)
        if self.is_running(current) and current.unit != unit:
            raise ConflictError(
                f"pod {current.name} runs in its own unit {current.unit}",
                hint=f"stop it (rctl pod stop {current.name}) or rename the definition's pod",
            )
        return self._make(options, unit, keep=current)

    def _make(
        self, options: PodCreateOptions, unit: str = "", keep: PodRecord | None = None
    ) -> PodRecord:
        name = check_pod_name(options.name) if options.name else None
        share = parse_share(options.share)
        network = options.network or self.default_network.partition(":")[0]
        if options.infra:
            if network not in NETWORKS:
                raise UsageError(
                    f"--network {network}: a pod's network is slirp4netns, pasta or none",
                    hint="bridge networks and helper options are not available to pods",
                )
        elif options.publish or options.network or options.share != "net,ipc,uts":
            raise UsageError(
                "a pod without infra has no namespaces to share or publish from",
                hint="drop --no-infra, or publish ports on its containers",
            )
        hostname = options.hostname or ""
        if hostname and not (len(hostname) <= 64 and HOSTNAME.fullmatch(hostname)):
            raise UsageError(f"--hostname {hostname!r} is not a valid host name",
                             hint="use RFC 1123 labels")  # fmt: skip
        ports = [p for spec in options.publish for p in choose_ports(parse_publish(spec))]
        if ports and network == "none":
            raise UsageError("--network none publishes no port", hint="drop -p or --network none")
        check_available(ports)
        with self.store.locked():
            taken = {r.name for r in self.store.all()}
            name = name or random_name(taken)
            if keep is None:
                self.store.check_free(name)
            record = PodRecord(
                id=keep.id if keep else new_id(),
                name=name,
                created=keep.created if keep else now(),
                unit_name=unit,
                labels=dict(options.labels),
                ports=tuple(ports),
                network=network if options.infra else "",
                share=share if options.infra else (),
                hostname=hostname,
                infra=options.infra,
            )
            self.store.save(record)
        return record

    # -- queries ---------------------------------------------------------------------------

    def get(self, ref: str) -> PodRecord:
        return self.store.get(ref)

    def unit_paths(self, record: PodRecord) -> tuple[str, str]:
        """The holder's arguments: the pod's directory and its runtime state's."""
        return str(self.store.dir(record.id)), str(self.store.state(record.id))

    def exists(self, ref: str) -> bool:
        """``rctl pod exists``."""
        return self.store.find(ref) is not None

    def members(self, record: PodRecord) -> list[PodMember]:
        """The pod's containers with their states."""
        # ps words a paused container "running" with a "(Paused)" status, as docker does.
        states = {
            row.id: "paused" if row.status.endswith("(Paused)") else row.state
            for row in self.containers.summaries(all_containers=True)
        }
        return [
            PodMember(c.id, c.name, states.get(c.id, "created"))
            for c in self.containers.store.all()
            if c.pod == record.id
        ]

    def is_running(self, record: PodRecord) -> bool:
        state = self.containers.manager.unit_state(record.unit)
        return state is not None and state.active_state in ACTIVE

    def status(self, record: PodRecord, members: Sequence[PodMember]) -> str:
        """podman's pod status: Created, Running, Degraded, Paused, Exited."""
        states = [m.state for m in members]
        if not self.is_running(record):
            return "Exited" if any(s == "exited" for s in states) else "Created"
        if states and all(s == "paused" for s in states):
            return "Paused"
        if all(s in ("running", "paused") for s in states):
            return "Running"
        return "Degraded"

    def inspect(self, ref: str) -> PodInspect:
        """``rctl pod inspect``."""
        record = self.store.get(ref)
        members = self.members(record)
        return PodInspect(
            id=record.id,
            name=record.name,
            created=record.created,
            state=self.status(record, members),
            hostname=record.hostname or (record.name if "uts" in record.shared else ""),
            labels=record.labels,
            infra=record.infra,
            shared=record.shared,
            network=record.network,
            ports=tuple(
                PodPort(str(p.protocol), p.host_ip, p.host_port, p.container_port)
                for p in record.ports
            ),
            members=tuple(members),
            unit=record.unit,
        )

    def find_report(self, ref: str) -> PodInspect | None:
        """The pod ``ref`` names, inspected; None when no pod has that name or ID (a
        container may: ``kube generate`` takes either)."""
        return self.inspect(ref) if self.store.find(ref) is not None else None

    def summaries(self, filters: Sequence[str] = ()) -> list[PodListRow]:
        """``rctl pod ps``, with podman's filters name=, id=, label=, status=."""
        wanted = parse_pod_filters(filters)
        rows = []
        for record in self.store.all():
            members = self.members(record)
            row = PodListRow(
                id=record.id,
                name=record.name,
                created=record.created,
                status=self.status(record, members),
                labels=record.labels,
                network=record.network,
                members=tuple(members),
            )
            if all(matches(row, key, values) for key, values in wanted.items()):
                rows.append(row)
        return rows

    # -- life ------------------------------------------------------------------------------

    def start(self, ref: str) -> PodRecord:
        """``rctl pod start``: the pod's unit, then every member not running."""
        record = self.store.get(ref)
        start_pod_unit(self.containers.manager, self.store, record)
        for member in self.members(record):
            if member.state not in ("running", "paused"):
                self.containers.start(member.id)
        return record

    def stop(self, ref: str, timeout: int | None = None) -> PodRecord:
        """``rctl pod stop``: the members (each its stop signal and timeout), then the unit."""
        record = self.store.get(ref)
        for member in self.members(record):
            if member.state in ("running", "paused"):
                self.containers.stop(member.id, timeout)
        self.stop_unit(record)
        return record

    def stop_unit(self, record: PodRecord) -> None:
        manager = self.containers.manager
        with contextlib.suppress(NotFoundError):
            manager.stop(record.unit)
        with contextlib.suppress(NotFoundError):
            manager.reset_failed(record.unit)

    def restart(self, ref: str) -> PodRecord:
        self.stop(ref)
        return self.start(ref)

    def kill(self, ref: str, signum: int) -> PodRecord:
        """``rctl pod kill``: the signal to each running member's main process."""
        record = self.store.get(ref)
        running = [m for m in self.members(record) if m.state in ("running", "paused")]
        if not running:
            raise ConflictError(f"pod {record.name} has no running container",
                                hint="start it: rctl pod start")  # fmt: skip
        for member in running:
            with contextlib.suppress(ConflictError):  # ended meanwhile
                self.containers.kill(member.id, signum)
        return record

    def pause(self, ref: str, *, resume: bool = False) -> PodRecord:
        """``rctl pod pause`` (``unpause`` with ``resume``): every running member."""
        record = self.store.get(ref)
        for member in self.members(record):
            if resume and member.state == "paused":
                self.containers.unpause(member.id)
            elif not resume and member.state == "running":
                self.containers.pause(member.id)
        return record

    def remove(self, ref: str, *, force: bool = False) -> PodRecord:
        """``rctl pod rm``: the members, the unit and the record; a running pod only with
        ``force`` (stopped first)."""
        record = self.store.get(ref)
        if self.is_running(record):
            if not force:
                raise ConflictError(
                    f"pod {record.name} is running",
                    hint="stop it first (rctl pod stop), or remove it with -f",
                )
            self.stop(record.id)
        for member in self.members(record):
            self.containers.remove(member.id, force=force)
        self.stop_unit(record)
        with self.store.locked():
            self.store.remove(record.id)
        return record

    def prune(self) -> list[str]:
        """``rctl pod prune``: every pod that is not running, with its members."""
        removed = []
        for record in self.store.all():
            if not self.is_running(record):
                self.remove(record.id)
                removed.append(record.id)
        return removed

    # -- members' output -------------------------------------------------------------------

    def top(self, ref: str, ps_args: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        """``rctl pod top``: each running member's name and its ``top`` output."""
        record = self.store.get(ref)
        running = [m for m in self.members(record) if m.state in ("running", "paused")]
        if not running:
            raise ConflictError(f"pod {record.name} has no running container",
                                hint="start it: rctl pod start")  # fmt: skip
        return [(m.name, self.containers.top(m.id, ps_args)) for m in running]

    def logs(self, ref: str, *, tail: int | None = None) -> Iterator[tuple[str, JournalEntry]]:
        """``rctl pod logs``: each member's journal lines, member by member."""
        record = self.store.get(ref)
        for member in self.members(record):
            for entry in self.containers.logs(member.id, tail=tail):
                yield member.name, entry


def parse_pod_filters(filters: Sequence[str]) -> dict[str, list[str]]:
    """``--filter KEY=VALUE`` (repeated) by key; UsageError for a key pods don't have."""
    wanted: dict[str, list[str]] = {}
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep or key not in FILTER_KEYS:
            raise UsageError(f"invalid pod filter {item!r}",
                             hint="use name=, id=, label=KEY[=VALUE] or status=")  # fmt: skip
        wanted.setdefault(key, []).append(value)
    return wanted


def matches(row: PodListRow, key: str, values: Sequence[str]) -> bool:
    """Whether ``row`` passes one filter key (values of one key are alternatives)."""
    if key == "name":
        return any(v in row.name for v in values)
    if key == "id":
        return any(row.id.startswith(v) for v in values)
    if key == "status":
        return any(v.lower() == row.status.lower() for v in values)
    for value in values:
        label, sep, expected = value.partition("=")
        if label in row.labels and (not sep or row.labels[label] == expected):
            return True
    return False
