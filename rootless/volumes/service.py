"""Volume use cases: ``rctl volume create|ls|inspect|rm|prune``, and what creating and
removing containers needs (planning mounts, making volumes, ``:U``, copy-up, ``rm -v``).

Which containers use a volume comes from the container records' mount points (running or
not, like podman). Checks and changes happen under the store lock the container creation
takes, so a volume can't be removed between a container's planning and its record.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from rctlbase.errors import ConflictError, NotFoundError, UsageError
from rootless.containers.record import ContainerRecord, ContainerStore
from rootless.containers.spec import TmpfsMount, parse_tmpfs
from rootless.contracts import ContainerRemover
from rootless.eventlog import record_event
from rootless.filters import (
    VOLUME_KEYS,
    VOLUME_PRUNE_KEYS,
    FilterSet,
    VolumeFacts,
    parse_filters,
    volume_matcher,
)
from rootless.models import RunOptions
from rootless.reports.volumes import VolumeReport
from rootless.volumes.model import MountPoint, VolumeRecord
from rootless.volumes.parse import (
    VolumeRequest,
    check_volume_name,
    parse_mount,
    parse_volume,
    parse_volumes_from,
)
from rootless.volumes.plan import MountsPlan, inherit_mounts, plan_mounts
from rootless.volumes.store import VolumeStore
from rootless.volumes.userjob import IDTriples, VolumeJob


def filter_volumes(
    records: Iterable[VolumeRecord], filters: FilterSet, used: Collection[str]
) -> list[VolumeRecord]:
    """The volumes docker's ``--filter``s keep (:func:`rootless.filters.volume_matcher`);
    ``used``: the names of volumes some container mounts."""
    keep = volume_matcher(filters)
    return [
        record for record in records
        if keep(VolumeFacts(record.name, record.driver, record.labels, record.name in used))
    ]  # fmt: skip


def parse_volume_options(options: Iterable[str]) -> dict[str, str]:
    """``volume create --opt``: the local driver's ``o=uid=N,gid=N`` (podman), nothing else:
    the mount options (type=, device=) need root."""
    out: dict[str, str] = {}
    for text in options:
        key, eq, value = text.partition("=")
        if key != "o" or not eq:
            raise UsageError(
                f"--opt {text!r} is not supported",
                hint="rootless volumes take only o=uid=N,gid=N (mounting a device needs root)",
            )
        for part in value.split(","):
            if not re.fullmatch(r"(uid|gid)=\d+", part):
                raise UsageError(
                    f"--opt {text!r}: {part!r} is not supported", hint="use uid=N,gid=N"
                )
        out[key] = value
    return out


class VolumeService:
    """Volumes of one user."""

    def __init__(
        self,
        data: Path,
        run_jobs: Callable[[Sequence[VolumeJob]], None],
        lock: Callable[[], AbstractContextManager[Any]],
        remover: ContainerRemover,
    ) -> None:
        self.store = VolumeStore(data / "volumes")
        self.data = data
        self.containers = ContainerStore(data / "containers")
        self.run_jobs = run_jobs
        self.lock = lock
        self.remover = remover

    # -- rctl volume ---------------------------------------------------------------------

    def users(self) -> dict[str, list[ContainerRecord]]:
        """Volume name → the containers (running or not) that mount it."""
        out: dict[str, list[ContainerRecord]] = {}
        for record in self.containers.all():
            for mount in record.mounts:
                if mount.name:
                    out.setdefault(mount.name, []).append(record)
        return out

    def create(
        self,
        name: str | None,
        labels: dict[str, str] | None = None,
        options: Sequence[str] = (),
        driver: str = "local",
    ) -> VolumeRecord:
        """``rctl volume create``: a named volume (a random name when none is given)."""
        if driver != "local":
            raise UsageError(f"volume driver {driver!r} is not supported", hint="use local")
        chosen = check_volume_name(name) if name else os.urandom(32).hex()
        opts = parse_volume_options(options)
        with self.lock():
            record = self.store.create(chosen, labels=labels, options=opts)
            owner = dict(p.split("=") for p in opts.get("o", "").split(",") if p)
            if owner:
                try:
                    self.run_jobs(
                        [
                            VolumeJob(
                                "chown",
                                str(self.store.data(chosen)),
                                uid=int(owner.get("uid", 0)),
                                gid=int(owner.get("gid", 0)),
                            )
                        ]
                    )
                except BaseException:
                    self.discard([chosen])
                    raise
        record_event(str(self.data), "volume", "create", chosen, {"driver": driver})
        return record

    def ls(self, filters: Sequence[str] = ()) -> list[VolumeRecord]:
        """``rctl volume ls``, with docker's ``--filter`` name=, label=, dangling=, driver=."""
        parsed = parse_filters(filters, VOLUME_KEYS)
        return filter_volumes(self.store.all(), parsed, set(self.users()))

    def inspect(self, name: str) -> VolumeReport:
        """``rctl volume inspect``: docker's document of the volume."""
        return volume_report(self.store.get(name))

    def reports(self, filters: Sequence[str] = ()) -> list[VolumeReport]:
        """``rctl volume ls`` as docker's documents (``GET /volumes``)."""
        return [volume_report(record) for record in self.ls(filters)]

    def remove(self, names: Sequence[str], *, force: bool = False) -> list[str]:
        """``rctl volume rm``: refused while a container uses a volume, unless ``force``,
        which removes those containers first (podman). Nothing is removed when any name is
        unknown or (without force) in use."""
        records = [self.store.get(name) for name in names]
        users = self.users()
        for record in records:
            using = users.get(record.name, [])
            if using and not force:
                raise ConflictError(
                    f"volume {record.name} is being used by container "
                    + ", ".join(r.name for r in using),
                    hint="remove the container first, or use volume rm -f to remove both",
                )
        for record in records:
            for container in users.get(record.name, []):
                with contextlib.suppress(NotFoundError):
                    self.remover.remove_container(container.id)
        with self.lock():
            self.discard([r.name for r in records])
        return [r.name for r in records]

    def prune(self, filters: Sequence[str] = ()) -> list[str]:
        """``rctl volume prune``: every volume no container uses (``filters``: docker's
        label=, label!=)."""
        parsed = parse_filters(filters, VOLUME_PRUNE_KEYS)
        with self.lock():
            used = set(self.users())
            doomed = sorted(self.store.names() - used)
            if parsed:  # the records are read only to match labels
                records = [self.store.get(name) for name in doomed]
                doomed = [r.name for r in filter_volumes(records, parsed, used)]
            self.discard(doomed)
        return doomed

    def discard(self, names: Iterable[str]) -> None:
        """Remove volumes and their files (inside the user namespace: mapped owners)."""
        names = list(names)
        for name in names:
            self.store.forget(name)
        leftovers = [self.store.dir(n) for n in names if self.store.dir(n).exists()]
        if leftovers:
            self.run_jobs([VolumeJob("remove", str(path)) for path in leftovers])
        for name in names:
            record_event(str(self.data), "volume", "destroy", name, {"driver": "local"})

    # -- for containers ------------------------------------------------------------------

    def plan_run(
        self, options: RunOptions, image_volumes: Sequence[str]
    ) -> tuple[MountsPlan, tuple[TmpfsMount, ...]]:
        """``-v``, ``--mount``, ``--volumes-from`` and the image's VOLUMEs of a new container:
        its mount plan and the tmpfs mounts ``--mount type=tmpfs`` adds."""
        requests: list[VolumeRequest] = [parse_volume(v) for v in options.volumes]
        tmpfs: list[TmpfsMount] = []
        for text in options.mounts:
            parsed = parse_mount(text)
            if isinstance(parsed, TmpfsMount):
                tmpfs.append(parsed)
            else:
                requests.append(parsed)
        inherited: list[MountPoint] = []
        for text in options.volumes_from:
            source = parse_volumes_from(text)
            inherited += inherit_mounts(
                self.containers.get(source.container).mounts, source.read_only
            )
        destinations = [parse_tmpfs(t).destination for t in options.tmpfs]
        destinations += [t.destination for t in tmpfs]
        plan = self.plan(
            requests,
            inherited=inherited,
            image_volumes=image_volumes,
            other_destinations=destinations,
        )
        return plan, tuple(tmpfs)

    def plan(
        self,
        requests: Sequence[VolumeRequest],
        *,
        inherited: Sequence[MountPoint] = (),
        image_volumes: Sequence[str] = (),
        other_destinations: Collection[str] = (),
        cwd: str | None = None,
    ) -> MountsPlan:
        """Plan a new container's mounts; fails (nothing made) when a bind source is missing."""
        plan = plan_mounts(
            requests,
            cwd=cwd or os.getcwd(),
            volumes_root=str(self.store.root),
            existing=self.store.names(),
            new_name=lambda: os.urandom(32).hex(),
            inherited=inherited,
            image_volumes=image_volumes,
            other_destinations=other_destinations,
        )
        for source in plan.binds:
            if not os.path.exists(source):
                raise UsageError(
                    f"bind source {source} does not exist",
                    hint=f"create it first (mkdir -p {source}); rctl does not make host "
                    "directories from a mistyped path",
                )
        return plan

    def prepare(
        self,
        plan: MountsPlan,
        layers: Sequence[str],
        uid: int,
        gid: int,
        nested: tuple[IDTriples, IDTriples] = ((), ()),
    ) -> list[str]:
        """Make the plan's volumes, fill the empty ones from the image (``layers``: its diff
        directories, top first, owners moved through ``nested``, the uid and gid maps of a
        keep-id container's nested namespace), chown the ``:U`` sources to ``uid:gid``.
        Returns the volumes made; on failure, removes them and raises. Call under
        :attr:`lock`."""
        made: list[str] = []
        try:
            for new in plan.create:
                try:
                    self.store.create(new.name, labels=dict(new.labels), anonymous=new.anonymous)
                except ConflictError:
                    if new.anonymous:
                        raise
                    continue  # made meanwhile by another create: use it
                made.append(new.name)
            jobs = [
                VolumeJob(
                    "copyup",
                    path,
                    layers=tuple(layers),
                    dest=str(self.store.data(name)),
                    uid_map=nested[0],
                    gid_map=nested[1],
                )
                for path, name in plan.copy_up
            ]
            jobs += [VolumeJob("chown", path, uid=uid, gid=gid) for path in plan.chown]
            if jobs:
                self.run_jobs(jobs)
        except BaseException:
            self.discard(made)
            raise
        return made

    def remove_anonymous(self, record: ContainerRecord) -> list[str]:
        """``rm -v``: the container's anonymous volumes no other container uses."""
        if not any(m.anonymous and m.name for m in record.mounts):
            return []  # nothing to look for (run --rm): no reading every record, no lock
        users = self.users()
        doomed = [
            m.name
            for m in record.mounts
            if m.anonymous
            and m.name
            and not [c for c in users.get(m.name, []) if c.id != record.id]
        ]
        with self.lock():
            self.discard(doomed)
        return doomed


def volume_report(record: VolumeRecord) -> VolumeReport:
    """A volume's record as docker's document."""
    return VolumeReport(
        name=record.name,
        created=record.created,
        mountpoint=record.mountpoint,
        driver=record.driver,
        labels=dict(record.labels),
        options=dict(record.options),
        anonymous=record.anonymous,
    )
