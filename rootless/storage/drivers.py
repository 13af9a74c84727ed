"""Planning a container's root filesystem (pure) and the commands that mount it."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from rctlbase.errors import UsageError

# mount(2) takes at most a page of options; relative lower directories keep the list short.
MOUNT_OPTIONS_MAX = 4000


class Driver(enum.StrEnum):
    """A storage driver, by the name users write in rctl.toml's ``[storage] driver``."""

    OVERLAY = "overlay"
    FUSE_OVERLAYFS = "fuse-overlayfs"
    VFS = "vfs"


def parse_driver(name: str) -> Driver:
    """The driver called ``name``; UsageError naming the choices otherwise."""
    try:
        return Driver(name)
    except ValueError:
        choices = ", ".join(d.value for d in Driver)
        raise UsageError(
            f"unknown storage driver {name!r}", hint=f"use one of: {choices}"
        ) from None


def layer_format(driver: Driver) -> str:
    """The on-disk layer format a driver needs (see :mod:`rootless.images.unpack`)."""
    return "vfs" if driver is Driver.VFS else "overlay"


@dataclass(frozen=True, slots=True)
class RootfsPlan:
    """Where a container's root filesystem comes from and where it appears."""

    driver: Driver
    layers_root: Path  # the directory lower layers are named relative to
    lowers: tuple[str, ...]  # top layer first, relative to layers_root
    upper: Path  # the container's r/w layer (vfs: the copied root itself)
    work: Path
    merged: Path  # what the runtime uses as root.path
    # fuse-overlayfs only: (stored ID, presented ID, count) triples (see fuse_idmapping).
    uid_mapping: tuple[tuple[int, int, int], ...] = ()
    gid_mapping: tuple[tuple[int, int, int], ...] = ()

    @property
    def rootfs(self) -> Path:
        """The directory given to the OCI runtime."""
        return self.upper if self.driver is Driver.VFS else self.merged


def plan_rootfs(
    driver: Driver,
    layers_root: Path,
    chain_hexes: tuple[str, ...],
    container_dir: Path,
    *,
    uid_mapping: tuple[tuple[int, int, int], ...] = (),
    gid_mapping: tuple[tuple[int, int, int], ...] = (),
) -> RootfsPlan:
    """The rootfs of a container over layers ``chain_hexes`` (bottom first); the mappings
    (fuse-overlayfs only) shift the IDs files appear with (:func:`fuse_idmapping`)."""
    if (uid_mapping or gid_mapping) and driver is not Driver.FUSE_OVERLAYFS:
        raise ValueError(f"the {driver} driver can't shift IDs; only fuse-overlayfs can")
    lowers = tuple(f"{chain}/diff" for chain in reversed(chain_hexes))
    plan = RootfsPlan(
        driver=driver,
        layers_root=layers_root,
        lowers=lowers,
        upper=container_dir / ("rootfs" if driver is Driver.VFS else "upper"),
        work=container_dir / "work",
        merged=container_dir / "merged",
        uid_mapping=uid_mapping,
        gid_mapping=gid_mapping,
    )
    if driver is not Driver.VFS and len(mount_options(plan)) > MOUNT_OPTIONS_MAX:
        raise UsageError(
            f"the image has too many layers ({len(lowers)}) for one overlay mount",
            hint='rebuild the image with fewer layers, or set driver = "vfs" under [storage] '
            "in ~/.config/rctl/rctl.toml",
        )
    return plan


def mount_options(plan: RootfsPlan) -> str:
    """overlayfs options; lower directories relative to ``plan.layers_root`` (the cwd)."""
    lowers = (
        ":".join(plan.lowers)
        if plan.driver is Driver.OVERLAY
        else ":".join(str(plan.layers_root / lower) for lower in plan.lowers)
    )
    options = f"lowerdir={lowers},upperdir={plan.upper},workdir={plan.work}"
    if plan.driver is Driver.OVERLAY:
        # Opaque directories and redirects live in user.overlay.* xattrs inside a userns.
        options += ",userxattr"
    if plan.driver is Driver.FUSE_OVERLAYFS:
        for name, mapping in (("uidmapping", plan.uid_mapping), ("gidmapping", plan.gid_mapping)):
            if mapping:
                options += f",{name}={fuse_idmapping(mapping)}"
    return options


def fuse_idmapping(mapping: tuple[tuple[int, int, int], ...]) -> str:
    """fuse-overlayfs's ``uidmapping=``/``gidmapping=`` value: ``STORED:PRESENTED:COUNT``
    triples joined by colons. fuse-overlayfs(1) shows a file stored with ID S+i as
    PRESENTED+i and stores what is created as PRESENTED+i with S+i (measured with
    fuse-overlayfs 1.10: ``0:1:1000`` shows a file stored as 0 owned by 1). So the
    triples of a nested namespace's map, (nested ID, outer ID, count), make files stored
    with ID d appear as d inside the nested namespace (``--userns keep-id``)."""
    return ":".join(f"{stored}:{presented}:{count}" for stored, presented, count in mapping)


def mount_command(plan: RootfsPlan) -> list[str] | None:
    """The command that mounts the rootfs (run inside the user and mount namespaces, with
    ``plan.layers_root`` as working directory); None for vfs, which needs no mount."""
    if plan.driver is Driver.OVERLAY:
        return ["mount", "-t", "overlay", "overlay", "-o", mount_options(plan), str(plan.merged)]
    if plan.driver is Driver.FUSE_OVERLAYFS:
        return ["fuse-overlayfs", "-o", mount_options(plan), str(plan.merged)]
    return None
