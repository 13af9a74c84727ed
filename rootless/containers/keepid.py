"""``--userns keep-id`` (podman's meaning): the user's own uid and gid are themselves inside.

What the container sees: its main process runs as the user's uid:gid (unless ``--user``),
files the user owns on the host (a ``-v ~/dir:/data`` bind) are the user's inside, and
what the container creates there is the user's on the host; the image's files keep their
owners (root's are 0, image user 33's are 33). /etc/passwd and /etc/group get an entry for
the user when the image has none, as podman adds one.

How, without copying the image: the launcher's user namespace keeps the default mapping
(0 → the user, k → subordinate ID k-1), so the overlay's layers, the network helper,
volumes and cleanup are unchanged. crun makes a second, nested user namespace for the
container with the keep-id maps written in the launcher's IDs
(:func:`uidmap.mapping.nest_keep_id`: nested 0..U-1 → outer 1..U, U → outer 0, the rest
unchanged). Layers on disk are owned for the default mapping: under the nested map a file
stored as root (outer 0) would show as the user. So the root is mounted with fuse-overlayfs
and its ``uidmapping=``/``gidmapping=`` options (fuse-overlayfs(1)), which present a file
stored with ID d as the outer ID that the nested namespace sees as d: the same triples as
the nested map (:func:`rootless.storage.drivers.fuse_idmapping`). Kernel overlayfs has no
such option, and idmapped mounts of the layers' filesystem need CAP_SYS_ADMIN in the
initial user namespace (mount_setattr(2)), so a keep-id container uses fuse-overlayfs
whatever the configured driver (same layer format); vfs is refused (its root is a plain
copy whose IDs would show shifted). This is podman's approach with fuse-overlayfs as its
mount program.

The passwd and group entries are written into the container's r/w layer at create, by the
engine as the host user: that owner is stored ID 0, so the files still show as root's
inside. HOME is the user's home directory when something is mounted there, else the
container's working directory (podman's rule, without its look into the image for the
directory).

Not covered: the network namespace is the launcher's (pasta serves it), owned by the outer
namespace, so the container has no capabilities there: no port below 1024 can be bound
(net.ipv4.ip_unprivileged_port_start stays 1024) and ``ping_group_range`` can't be set by
crun. Bridge networks share one user namespace and are refused with keep-id.
"""

from __future__ import annotations

import dataclasses
import grp
import os
import pwd
import shutil
from collections.abc import Iterable
from dataclasses import dataclass

from rctlbase.errors import HostError, UsageError
from rootless.containers.spec import ContainerSpec, UserSpec
from rootless.storage.drivers import Driver
from uidmap.mapping import UsernsPlan, lookup, nest_keep_id

Triples = tuple[tuple[int, int, int], ...]


@dataclass(frozen=True, slots=True)
class HostUser:
    """The user running rctl, as the host's password database has them."""

    name: str
    uid: int
    gid: int
    gecos: str = ""
    home: str = "/"
    group: str = ""  # the primary group's name ("": the user's name)


@dataclass(frozen=True, slots=True)
class KeepIdPlan:
    """What a keep-id container needs beyond a default one (see the module docstring)."""

    nested: UsernsPlan  # the container's namespace, in the launcher namespace's IDs
    passwd: str | None  # the image's /etc/passwd with the user added; None: no change
    group: str | None  # the same for /etc/group

    @property
    def uid_mapping(self) -> Triples:
        """fuse-overlayfs's uidmapping triples (stored ID, presented ID, count)."""
        return tuple((m.container_id, m.host_id, m.size) for m in self.nested.uid_maps)

    @property
    def gid_mapping(self) -> Triples:
        """fuse-overlayfs's gidmapping triples."""
        return tuple((m.container_id, m.host_id, m.size) for m in self.nested.gid_maps)


def host_user() -> HostUser:
    """The real uid's entry (its number as name and / as home when there is none)."""
    uid, gid = os.getuid(), os.getgid()
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = ""
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return HostUser(str(uid), uid, gid, group=group)
    gecos = entry.pw_gecos.split(",")[0]
    return HostUser(entry.pw_name, uid, gid, gecos, entry.pw_dir or "/", group)


def keep_id_driver(driver: Driver, fuse_overlayfs: str | None) -> Driver:
    """The storage driver a keep-id container mounts its root with (see the docstring);
    ``fuse_overlayfs`` is the program's path (None: not installed)."""
    if driver is Driver.VFS:
        raise UsageError(
            "--userns keep-id needs the overlay or fuse-overlayfs storage driver, not vfs",
            hint='set [storage] driver = "fuse-overlayfs" in ~/.config/rctl/rctl.toml, '
            "or run without --userns keep-id",
        )
    if fuse_overlayfs is None:
        raise HostError(
            "--userns keep-id needs fuse-overlayfs, which is not installed",
            hint="install it (apt-get install fuse-overlayfs), or run without --userns keep-id",
        )
    return Driver.FUSE_OVERLAYFS


def check_keep_id(driver: Driver) -> Driver:
    """:func:`keep_id_driver` with the host's fuse-overlayfs."""
    return keep_id_driver(driver, shutil.which("fuse-overlayfs"))


def with_keep_id_user(spec: ContainerSpec, user: HostUser) -> ContainerSpec:
    """``spec`` running as the user's uid:gid unless ``--user`` was given (podman's
    keep-id overrides the image's USER too)."""
    if spec.user is not None:
        return spec
    return dataclasses.replace(spec, user=UserSpec(str(user.uid), str(user.gid)))


def keep_id_home(home: str, destinations: Iterable[str], cwd: str) -> str:
    """HOME in the added passwd entry: ``home`` when a mount's destination is it, else
    ``cwd`` (podman's ``userPasswdEntry``)."""
    wanted = home.rstrip("/") or "/"
    if any((d.rstrip("/") or "/") == wanted for d in destinations):
        return home
    return cwd


def _entries(text: str | None, fields: int) -> list[list[str]]:
    return [line.split(":") for line in (text or "").splitlines() if line.count(":") >= fields]


def _append(text: str | None, line: str) -> str:
    base = text or ""
    if base and not base.endswith("\n"):
        base += "\n"
    return f"{base}{line}\n"


def passwd_with_user(passwd: str | None, user: HostUser, home: str) -> str | None:
    """The image's /etc/passwd text with an entry for ``user`` (``NAME:*:UID:GID:GECOS:
    HOME:/bin/sh``, podman's), or None when the image has the name or the uid already."""
    for entry in _entries(passwd, 6):
        if entry[0] == user.name or entry[2] == str(user.uid):
            return None
    gecos = user.gecos.replace(":", " ").replace("\n", " ")
    return _append(passwd, f"{user.name}:*:{user.uid}:{user.gid}:{gecos}:{home}:/bin/sh")


def group_with_user(group: str | None, user: HostUser) -> str | None:
    """The image's /etc/group text with the user's primary group (listing the user),
    or None when the image has that name or that gid already (podman's rule)."""
    name = user.group or user.name
    for entry in _entries(group, 3):
        if entry[0] == name or entry[2] == str(user.gid):
            return None
    return _append(group, f"{name}:x:{user.gid}:{user.name}")


def plan_keep_id(
    outer: UsernsPlan,
    user: HostUser,
    passwd: str | None,
    group: str | None,
    *,
    home: str,
) -> KeepIdPlan:
    """The nested maps and the /etc files of a keep-id container whose launcher's
    namespace is ``outer`` (default layout); ``home`` see :func:`keep_id_home`."""
    return KeepIdPlan(
        nested=nest_keep_id(outer),
        passwd=passwd_with_user(passwd, user, home),
        group=group_with_user(group, user),
    )


def outer_ids(nested: UsernsPlan, uid: int, gid: int) -> tuple[int, int]:
    """The launcher namespace's IDs of the container's ``uid``:``gid`` (what a chown made
    outside the container must give for the container to see ``uid``:``gid``); an
    unmapped ID stays as it is, the container's check reports it."""
    outer_uid, outer_gid = lookup(nested.uid_maps, uid), lookup(nested.gid_maps, gid)
    return (uid if outer_uid is None else outer_uid, gid if outer_gid is None else outer_gid)
