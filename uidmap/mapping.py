"""Planning the ID mappings of a user namespace from a user's subordinate ranges.

Pure functions: the subid files are read by :mod:`uidmap.subid`, the plan is applied by
:mod:`uidmap.userns`. Two layouts, both podman's:

- default (``rctl run``, ``podman unshare``): container 0 → the user's own ID, container
  1..size → the subordinate ranges in file order, so 65536 subordinate IDs give 65537 IDs;
- ``keep_id`` (``--userns=keep-id``): the user's ID is itself inside; container 0..uid-1 and
  uid+1..size take the subordinate IDs, so files the user owns stay the user's.

The user's own ID and IDs listed twice are never mapped twice: the kernel refuses overlapping
extents (user_namespaces(7), "Defining user and group ID mappings").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from rctlbase.errors import HostError
from uidmap.subid import SUBGID_PATH, SUBUID_PATH, IDRange

DEFAULT_SIZE = 65536
# useradd's SUB_UID_MIN/SUB_GID_MIN (login.defs(5)): where hints put a first range.
DEFAULT_SUB_START = 100000
# Lines a uid_map/gid_map accepts since Linux 4.15 (user_namespaces(7)).
MAX_EXTENTS = 340


@dataclass(frozen=True, slots=True)
class IDMap:
    """IDs ``container_id``..+size inside the namespace are ``host_id``..+size outside."""

    container_id: int
    host_id: int
    size: int

    def to_oci(self) -> dict[str, int]:
        """The runtime-spec form (``linux.uidMappings`` items of config.json)."""
        return {"containerID": self.container_id, "hostID": self.host_id, "size": self.size}


def lookup(maps: tuple[IDMap, ...], container_id: int) -> int | None:
    """The host ID that ``container_id`` maps to, or None when it is not mapped."""
    for m in maps:
        if m.container_id <= container_id < m.container_id + m.size:
            return m.host_id + container_id - m.container_id
    return None


@dataclass(frozen=True, slots=True)
class UsernsPlan:
    """The uid and gid maps of one user namespace, in host terms."""

    uid_maps: tuple[IDMap, ...]
    gid_maps: tuple[IDMap, ...]

    def to_host(self, container_uid: int) -> int | None:
        """The host uid of ``container_uid`` (None when unmapped: it shows as nobody)."""
        return lookup(self.uid_maps, container_uid)

    def to_host_gid(self, container_gid: int) -> int | None:
        """The host gid of ``container_gid`` (None when unmapped)."""
        return lookup(self.gid_maps, container_gid)

    def to_oci(self) -> dict[str, list[dict[str, int]]]:
        """``{"uidMappings": [...], "gidMappings": [...]}`` for config.json's ``linux``."""
        return {
            "uidMappings": [m.to_oci() for m in self.uid_maps],
            "gidMappings": [m.to_oci() for m in self.gid_maps],
        }


class IDKind(StrEnum):
    """Which of the two ID spaces."""

    UID = "uid"
    GID = "gid"


@dataclass(frozen=True, slots=True)
class Shortage:
    """A user has fewer usable subordinate IDs in ``path`` than a plan needs."""

    kind: IDKind
    path: Path
    found: int
    needed: int


def subtract(a: IDRange, b: IDRange) -> list[IDRange]:
    """The parts of ``a`` outside ``b`` (zero, one or two ranges)."""
    parts = []
    if a.start < b.start:
        parts.append(IDRange(a.start, min(a.end, b.start) - a.start))
    if a.end > b.end:
        start = max(a.start, b.end)
        parts.append(IDRange(start, a.end - start))
    return parts


def usable_ranges(ranges: tuple[IDRange, ...], own_id: int) -> list[IDRange]:
    """The ranges in order, without the user's own ID and without IDs an earlier range had."""
    taken = [IDRange(own_id, 1)]
    usable: list[IDRange] = []
    for candidate in ranges:
        pieces = [candidate]
        for used in taken:
            pieces = [part for piece in pieces for part in subtract(piece, used)]
        usable += pieces
        taken.append(candidate)
    return usable


def take(ranges: list[IDRange], count: int) -> tuple[list[IDRange], list[IDRange]]:
    """Split ``ranges`` into the first ``count`` IDs and the rest."""
    taken: list[IDRange] = []
    rest = list(ranges)
    while count > 0 and rest:
        head = rest.pop(0)
        if head.count > count:
            rest.insert(0, IDRange(head.start + count, head.count - count))
            head = IDRange(head.start, count)
        taken.append(head)
        count -= head.count
    return taken, rest


def lay_out(container_start: int, ranges: list[IDRange]) -> list[IDMap]:
    """Map consecutive container IDs from ``container_start`` onto ``ranges`` in order."""
    maps = []
    for r in ranges:
        maps.append(IDMap(container_start, r.start, r.count))
        container_start += r.count
    return maps


def ids_needed(own_id: int, *, keep_id: bool, size: int) -> int:
    """Subordinate IDs a plan needs: ``size``, or with keep-id at least one per ID below own."""
    return max(size, own_id) if keep_id else size


def plan_ids(own_id: int, ranges: tuple[IDRange, ...], *, keep_id: bool, size: int) -> list[IDMap]:
    """One side (uids or gids) of a plan; assumes enough IDs (see :func:`find_shortages`)."""
    pieces = usable_ranges(ranges, own_id)
    if not keep_id:
        taken, _ = take(pieces, size)
        return [IDMap(0, own_id, 1), *lay_out(1, taken)]
    below, rest = take(pieces, own_id)
    above, _ = take(rest, size - own_id)
    return [*lay_out(0, below), IDMap(own_id, own_id, 1), *lay_out(own_id + 1, above)]


def find_shortages(
    uid: int,
    gid: int,
    subuids: tuple[IDRange, ...],
    subgids: tuple[IDRange, ...],
    *,
    keep_id: bool = False,
    size: int = DEFAULT_SIZE,
    subuid_path: Path = SUBUID_PATH,
    subgid_path: Path = SUBGID_PATH,
) -> list[Shortage]:
    """Which of the two files gives the user too few usable IDs for the plan (may be none)."""
    shortages = []
    for kind, own, ranges, path in (
        (IDKind.UID, uid, subuids, subuid_path),
        (IDKind.GID, gid, subgids, subgid_path),
    ):
        found = sum(r.count for r in usable_ranges(ranges, own))
        needed = ids_needed(own, keep_id=keep_id, size=size)
        if found < needed:
            shortages.append(Shortage(kind, path, found, needed))
    return shortages


def usermod_command(user: str, shortages: list[Shortage], start: int) -> str:
    """The ``usermod`` line that adds the missing IDs, each kind from ``start``."""
    flags = [
        f"--add-sub{s.kind}s {start}-{start + s.needed - s.found - 1}"
        for s in sorted(shortages, key=lambda s: s.kind != IDKind.UID)
    ]
    return f"sudo usermod {' '.join(flags)} {user}"


def shortage_error(user: str, shortages: list[Shortage], free_start: int) -> HostError:
    """The diagnostic for ``shortages``: which file lacks what, and the command that fixes it."""
    paths = " and ".join(str(s.path) for s in shortages)
    command = usermod_command(user, shortages, free_start)
    if all(s.found == 0 for s in shortages):
        count = max(s.needed for s in shortages)
        return HostError(
            f"no entry for {user} in {paths}",
            hint=f"add `{user}:{free_start}:{count}` to {paths} ({command})",
        )
    parts = [
        f"no entry for {user} in {s.path}"
        if s.found == 0
        else f"{user} has {s.found} subordinate {s.kind}s in {s.path}, {s.needed} are needed"
        for s in shortages
    ]
    return HostError("; ".join(parts), hint=f"give {user} more subordinate IDs: {command}")


def plan_userns(
    uid: int,
    gid: int,
    subuids: tuple[IDRange, ...],
    subgids: tuple[IDRange, ...],
    *,
    keep_id: bool = False,
    size: int = DEFAULT_SIZE,
    user: str | None = None,
    subuid_path: Path = SUBUID_PATH,
    subgid_path: Path = SUBGID_PATH,
    free_start: int | None = None,
) -> UsernsPlan:
    """Plan the maps of a user namespace for ``uid``/``gid`` (see the module docstring).

    ``size`` is how many subordinate IDs to map (65536: container IDs 0..65536). ``user``,
    the paths and ``free_start`` only shape the diagnostics: a HostError naming the file, the
    IDs found and needed, and the ``usermod`` command that fixes it, adding IDs from
    ``free_start`` (the first ID no user has, which :func:`uidmap.userns.load_plan` finds;
    by default the first after 100000 and this user's ranges).
    """
    name = user if user is not None else str(uid)
    shortages = find_shortages(
        uid,
        gid,
        subuids,
        subgids,
        keep_id=keep_id,
        size=size,
        subuid_path=subuid_path,
        subgid_path=subgid_path,
    )
    if shortages:
        if free_start is None:
            free_start = max([DEFAULT_SUB_START, *(r.end for r in (*subuids, *subgids))])
        raise shortage_error(name, shortages, free_start)
    plan = UsernsPlan(
        tuple(plan_ids(uid, subuids, keep_id=keep_id, size=size)),
        tuple(plan_ids(gid, subgids, keep_id=keep_id, size=size)),
    )
    for kind, maps in ((IDKind.UID, plan.uid_maps), (IDKind.GID, plan.gid_maps)):
        if len(maps) > MAX_EXTENTS:
            raise HostError(
                f"the {kind} map of {name} needs {len(maps)} lines, the kernel takes {MAX_EXTENTS}",
                hint=f"merge {name}'s subordinate ranges into fewer, larger ones",
            )
    return plan


def nest_keep_id(outer: UsernsPlan) -> UsernsPlan:
    """keep-id maps for a user namespace made inside ``outer``, written in ``outer``'s IDs.

    ``outer`` has the default layout (0 → the user, 1..N → subordinate IDs). The nested
    namespace gives the user's own host ID back to itself and lays the subordinate IDs
    around it, in order, as :func:`plan_userns` with ``keep_id`` does from the host: nested
    0..own-1 → outer 1..own, nested own → outer 0, nested own+1..N → outer own+1..N. This is
    what an unprivileged OCI runtime running as root of ``outer`` is given (runtime-spec
    ``linux.uidMappings``: hostID is the runtime's namespace's ID).
    """
    sides = []
    for kind, maps in ((IDKind.UID, outer.uid_maps), (IDKind.GID, outer.gid_maps)):
        own = lookup(maps, 0)
        total = sum(m.size for m in maps)
        if own is None or lookup(maps, total - 1) is None or total - 1 < own:
            raise HostError(
                f"--userns keep-id needs {own if own is not None else '?'} subordinate "
                f"{kind}s below your own, the namespace has {max(total - 1, 0)}",
                hint=f"keep-id works for IDs up to {max(total - 1, 0)}: run without it",
            )
        nested = [IDMap(0, 1, own), IDMap(own, 0, 1)] if own else [IDMap(0, 0, 1)]
        if total - 1 > own:
            nested.append(IDMap(own + 1, own + 1, total - 1 - own))
        sides.append(tuple(m for m in nested if m.size))
    return UsernsPlan(sides[0], sides[1])
