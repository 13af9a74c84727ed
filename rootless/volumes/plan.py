"""Planning a container's mounts: requests, inherited mounts and image VOLUMEs → mount points.

Pure: the caller says which volumes exist, what the CLI's directory is and where volumes
live, and gets back the container's :class:`~rootless.volumes.model.MountPoint` list, the
volumes to create, the sources to chown (``:U``) and the volumes to fill from the image.

Precedence, as docker's ``daemon/volumes.go`` ``registerMountPoints``: the user's ``-v`` and
``--mount`` first, then ``--volumes-from`` mounts on other destinations, then an anonymous
volume for each image ``VOLUME`` nothing else covers (a tmpfs covers it too).
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from rctlbase.errors import UsageError
from rootless.containers.spec import BindMount
from rootless.volumes.model import MountPoint
from rootless.volumes.parse import MountKind, VolumeRequest


@dataclass(frozen=True, slots=True)
class NewVolume:
    """A volume the container's creation makes: named on first use, or anonymous."""

    name: str
    anonymous: bool = False
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class MountsPlan:
    """What creating a container does about its mounts.

    ``copy_up`` pairs (container path, volume name): the image's files at that path go into
    the volume when it is empty (docker's copy-up; ``nocopy`` opts out). ``chown`` lists the
    host paths ``:U`` gives to the container's user. ``binds`` are host paths that must exist.
    """

    mounts: tuple[MountPoint, ...] = ()
    create: tuple[NewVolume, ...] = ()
    copy_up: tuple[tuple[str, str], ...] = ()
    chown: tuple[str, ...] = ()
    binds: tuple[str, ...] = ()


def volume_data(volumes_root: str, name: str) -> str:
    """Where a volume's files are: ``VOLUMES/NAME/_data``."""
    return posixpath.join(volumes_root, name, "_data")


def resolve_host_path(source: str, cwd: str) -> str:
    """A bind source made absolute against the CLI's directory, normalised."""
    return posixpath.normpath(posixpath.join(cwd, source))


def inherit_mounts(mounts: Sequence[MountPoint], read_only: bool | None) -> tuple[MountPoint, ...]:
    """``--volumes-from``: another container's mounts, ``:ro``/``:rw`` applied to all of them.

    The inherited volumes stay the other container's: ``rm -v`` of this one keeps them.
    """
    out = []
    for mount in mounts:
        ro = mount.read_only if read_only is None else read_only
        out.append(dataclasses.replace(mount, read_only=ro, anonymous=False))
    return tuple(out)


def plan_mounts(
    requests: Sequence[VolumeRequest],
    *,
    cwd: str,
    volumes_root: str,
    existing: Collection[str],
    new_name: Callable[[], str],
    inherited: Sequence[MountPoint] = (),
    image_volumes: Sequence[str] = (),
    other_destinations: Collection[str] = (),
) -> MountsPlan:
    """The container's mount points and what must be done for them (see the module doc).

    ``existing`` names the volumes that exist; ``new_name()`` names anonymous volumes;
    ``other_destinations`` are the container's tmpfs mount points.
    """
    mounts: list[MountPoint] = []
    create: dict[str, NewVolume] = {}
    copy_up: list[tuple[str, str]] = []
    chown: list[str] = []
    binds: list[str] = []
    taken = {posixpath.normpath(d) for d in other_destinations}
    for request in requests:
        if request.destination in taken:
            raise UsageError(
                f"duplicate mount point: {request.destination}",
                hint="mount one thing per container path",
            )
        taken.add(request.destination)
        if request.kind is MountKind.BIND:
            source = resolve_host_path(request.source, cwd)
            binds.append(source)
            name = ""
        else:
            name = request.source or new_name()
            source = volume_data(volumes_root, name)
            if name not in existing and name not in create:
                create[name] = NewVolume(name, request.anonymous, request.labels)
            if not request.nocopy:
                copy_up.append((request.destination, name))
        if request.chown and source not in chown:
            chown.append(source)
        mounts.append(
            MountPoint(
                type=str(request.kind),
                source=source,
                destination=request.destination,
                name=name,
                read_only=request.read_only,
                anonymous=request.anonymous,
                options=request.options,
                mode=request.mode,
            )
        )
    for mount in inherited:
        if mount.destination not in taken:
            taken.add(mount.destination)
            mounts.append(mount)
    for raw in image_volumes:
        destination = posixpath.normpath("/" + raw.lstrip("/"))
        if destination in taken or destination == "/":
            continue
        taken.add(destination)
        name = new_name()
        create[name] = NewVolume(name, anonymous=True)
        copy_up.append((destination, name))
        mounts.append(
            MountPoint(
                type=str(MountKind.VOLUME),
                source=volume_data(volumes_root, name),
                destination=destination,
                name=name,
                anonymous=True,
            )
        )
    return MountsPlan(
        mounts=tuple(mounts),
        create=tuple(create.values()),
        copy_up=tuple(copy_up),
        chown=tuple(chown),
        binds=tuple(binds),
    )


def bind_mounts(plan: MountsPlan) -> tuple[BindMount, ...]:
    """The plan's mount points as the runtime's bind mounts (volumes are their ``_data``)."""
    return tuple(BindMount(m.source, m.destination, m.read_only, m.options) for m in plan.mounts)
