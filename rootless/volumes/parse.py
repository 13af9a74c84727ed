"""Parsers of ``-v/--volume``, ``--mount`` and ``--volumes-from`` values (docker/podman run).

Pure: nothing here looks at the host. A bind's source is kept as typed (``./site`` stays
relative; the planner resolves it against the CLI's directory), a volume's name is checked.
Every error is a :class:`~rctlbase.errors.UsageError` naming the flag and the value.

Which source is which, as in docker: a source starting with ``/`` or ``.`` is a host path
(a bind mount), anything else is a volume name; no source at all is an anonymous volume.
``z``/``Z`` (SELinux relabelling) are accepted and ignored: rctl does not run under SELinux
labels, so there is nothing to relabel.
"""

from __future__ import annotations

import csv
import posixpath
import re
from dataclasses import dataclass
from enum import StrEnum

from rctlbase.errors import UsageError
from rootless.containers.spec import TmpfsMount, parse_memory

VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")  # docker's volume name pattern
PROPAGATIONS = frozenset({"private", "rprivate", "shared", "rshared", "slave", "rslave"})
# Mount flags passed through to the runtime, with the one each contradicts.
_FLAGS = {
    "nosuid": "suid", "suid": "nosuid", "nodev": "dev", "dev": "nodev",
    "noexec": "exec", "exec": "noexec",
}  # fmt: skip
_VOLUME_HINT = "use [SOURCE:]/CONTAINER/PATH[:OPTIONS], e.g. -v ./site:/srv:ro or -v data:/data"
_MOUNT_HINT = (
    "e.g. --mount type=bind,src=./site,dst=/srv,readonly or type=volume,src=data,dst=/data"
)


class MountKind(StrEnum):
    """What is mounted: a host path, a named (or anonymous) volume, a tmpfs."""

    BIND = "bind"
    VOLUME = "volume"
    TMPFS = "tmpfs"


@dataclass(frozen=True, slots=True)
class VolumeRequest:
    """A bind or volume mount as asked for by ``-v`` or ``--mount``.

    ``source``: a bind's host path as typed, a volume's name, ``""`` for an anonymous
    volume. ``chown`` is ``:U`` (give the source to the container's user). ``options`` are
    mount flags for the runtime (a propagation, nosuid...). ``nocopy`` skips copying the
    image's files into a new volume. ``labels`` label a volume this mount creates
    (``--mount volume-label=``). ``mode`` is the option text as given (docker's "Mode").
    """

    kind: MountKind
    source: str
    destination: str
    read_only: bool = False
    chown: bool = False
    options: tuple[str, ...] = ()
    nocopy: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    mode: str = ""

    @property
    def anonymous(self) -> bool:
        return self.kind is MountKind.VOLUME and not self.source


@dataclass(frozen=True, slots=True)
class VolumesFrom:
    """``--volumes-from CONTAINER[:ro|rw]``; ``read_only`` None keeps each mount's mode."""

    container: str
    read_only: bool | None = None


def _bad(flag: str, value: str, why: str, hint: str) -> UsageError:
    return UsageError(f"invalid {flag} value {value!r}: {why}", hint=hint)


def is_host_path(source: str) -> bool:
    """docker's rule: a source starting with / or . is a host path, else a volume name."""
    return source.startswith(("/", "."))


def check_volume_name(name: str, *, flag: str = "volume name") -> str:
    """A volume name as docker accepts them; returns it."""
    if not VOLUME_NAME.fullmatch(name):
        raise UsageError(
            f"invalid {flag} {name!r}: not a volume name",
            hint="use letters, digits, '_', '.', '-', starting with a letter or digit "
            "(or start a host path with / or ./)",
        )
    return name


def _destination(flag: str, value: str, dest: str, hint: str) -> str:
    if not dest:
        raise _bad(flag, value, "the container path is empty", hint)
    if not dest.startswith("/"):
        raise _bad(flag, value, f"the container path {dest!r} is not absolute", hint)
    dest = posixpath.normpath(dest)
    if dest == "/" or dest.startswith("//"):
        raise _bad(flag, value, "can't mount over the container's /", hint)
    return dest


def _add_flag(flag: str, value: str, options: list[str], opt: str, hint: str) -> None:
    """Add a propagation or a nosuid-like flag, refusing contradictions."""
    if opt in PROPAGATIONS and PROPAGATIONS & set(options):
        raise _bad(flag, value, "more than one propagation", hint)
    if opt in _FLAGS and _FLAGS[opt] in options:
        raise _bad(flag, value, f"{opt} contradicts {_FLAGS[opt]}", hint)
    if opt not in options:
        options.append(opt)


def parse_volume(value: str) -> VolumeRequest:  # noqa: PLR0912 - a branch per option
    """``-v [SOURCE:]DEST[:OPTIONS]`` with OPTIONS a comma list of ``ro``/``rw``, ``U``,
    ``z``/``Z`` (ignored), ``nocopy``, a propagation, ``nosuid``/``nodev``/``noexec``."""
    flag = "--volume"
    parts = value.split(":")
    if len(parts) > 3:
        raise _bad(flag, value, "too many ':'", _VOLUME_HINT)
    if any(not part for part in parts):
        raise _bad(flag, value, "an empty part", _VOLUME_HINT)
    source, dest = ("", parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    dest = _destination(flag, value, dest, _VOLUME_HINT)
    read_only: bool | None = None
    chown = nocopy = False
    options: list[str] = []
    for opt in parts[2].split(",") if len(parts) == 3 else ():
        if opt in ("ro", "rw"):
            if read_only is not None:
                raise _bad(flag, value, "ro/rw given twice", _VOLUME_HINT)
            read_only = opt == "ro"
        elif opt in ("z", "Z", "copy"):
            pass  # no SELinux labels to set; copying is the default
        elif opt == "U":
            chown = True
        elif opt == "nocopy":
            nocopy = True
        elif opt in PROPAGATIONS or opt in _FLAGS:
            _add_flag(flag, value, options, opt, _VOLUME_HINT)
        else:
            raise _bad(
                flag,
                value,
                f"unknown option {opt!r}" if opt else "an empty option",
                "options are ro, rw, U, z, Z, nocopy, a propagation (rslave...), "
                "nosuid, nodev, noexec",
            )
    if not source:
        kind = MountKind.VOLUME
    elif is_host_path(source):
        kind = MountKind.BIND
        if nocopy:
            raise _bad(flag, value, "nocopy applies to volumes, not host paths", _VOLUME_HINT)
    else:
        kind = MountKind.VOLUME
        check_volume_name(source, flag=f"{flag} {value!r}: volume name")
    return VolumeRequest(
        kind=kind,
        source=source,
        destination=dest,
        read_only=bool(read_only),
        chown=chown,
        options=tuple(options),
        nocopy=nocopy,
        mode=parts[2] if len(parts) == 3 else "",
    )


def _parse_bool(flag: str, value: str, key: str, text: str) -> bool:
    if text.lower() in ("", "1", "true"):
        return True
    if text.lower() in ("0", "false"):
        return False
    raise _bad(flag, value, f"{key}={text!r} is not true or false", _MOUNT_HINT)


def parse_mount(value: str) -> VolumeRequest | TmpfsMount:  # noqa: PLR0912, PLR0915 - per key
    """``--mount type=bind|volume|tmpfs,src=…,dst=…[,readonly][,…]`` (docker's CSV syntax).

    Keys: ``type`` (default volume), ``source``/``src``, ``target``/``destination``/``dst``,
    ``readonly``/``ro``, ``bind-propagation``, ``volume-nocopy``, ``volume-label``,
    ``volume-driver`` (local), ``tmpfs-size``, ``tmpfs-mode``, podman's ``U``/``chown``;
    ``z``, ``Z``, ``relabel``, ``consistency`` are accepted and ignored.
    """
    flag = "--mount"
    try:
        fields = next(csv.reader([value]), [])
    except csv.Error as exc:
        raise _bad(flag, value, f"not CSV ({exc})", _MOUNT_HINT) from exc
    kind = MountKind.VOLUME
    source: str | None = None
    dest: str | None = None
    read_only = chown = nocopy = False
    options: list[str] = []
    labels: list[tuple[str, str]] = []
    tmpfs: list[str] = []
    seen: set[str] = set()
    for field in fields:
        key, eq, val = field.partition("=")
        key = key.strip().lower()
        if not key:
            raise _bad(flag, value, "an empty field", _MOUNT_HINT)
        if key in seen and key not in ("volume-label",):
            raise _bad(flag, value, f"{key} given twice", _MOUNT_HINT)
        seen.add(key)
        if key in ("type", "source", "src", "target", "destination", "dst") and not eq:
            raise _bad(flag, value, f"{key} needs a value", _MOUNT_HINT)
        if key == "type":
            try:
                kind = MountKind(val)
            except ValueError:
                raise _bad(
                    flag, value, f"unknown type {val!r}", "use bind, volume or tmpfs"
                ) from None
        elif key in ("source", "src"):
            source = val
        elif key in ("target", "destination", "dst"):
            dest = val
        elif key in ("readonly", "ro"):
            read_only = _parse_bool(flag, value, key, val)
        elif key in ("u", "chown"):
            chown = _parse_bool(flag, value, key, val)
        elif key == "bind-propagation":
            if val not in PROPAGATIONS:
                raise _bad(flag, value, f"unknown propagation {val!r}", "use rprivate, rshared...")
            options.append(val)
        elif key == "volume-nocopy":
            nocopy = _parse_bool(flag, value, key, val)
        elif key == "volume-label":
            label_key, _, label_value = val.partition("=")
            if not label_key:
                raise _bad(flag, value, "volume-label needs KEY=VALUE", _MOUNT_HINT)
            labels.append((label_key, label_value))
        elif key == "volume-driver":
            if val != "local":
                raise _bad(flag, value, f"volume driver {val!r}", "only the local driver exists")
        elif key == "tmpfs-size":
            tmpfs.append(f"size={parse_memory(val, flag='--mount tmpfs-size')}")
        elif key == "tmpfs-mode":
            if not re.fullmatch(r"[0-7]{1,4}", val):
                raise _bad(flag, value, f"tmpfs-mode {val!r} is not octal", "e.g. tmpfs-mode=1777")
            tmpfs.append(f"mode={val}")
        elif key in ("z", "relabel", "consistency"):
            pass  # no SELinux labels here; consistency is a Docker Desktop matter
        else:
            raise _bad(flag, value, f"unknown key {key!r}", _MOUNT_HINT)
    dest = _destination(flag, value, dest or "", _MOUNT_HINT)
    volume_keys = {"volume-nocopy", "volume-label", "volume-driver"}
    if kind is MountKind.TMPFS:
        if source:
            raise _bad(flag, value, "a tmpfs has no source", _MOUNT_HINT)
        if chown or options or seen & volume_keys:
            raise _bad(flag, value, "bind and volume keys don't apply to a tmpfs", _MOUNT_HINT)
        base = ["ro" if read_only else "rw", "noexec", "nosuid", "nodev"]
        return TmpfsMount(dest, (*base, *tmpfs))
    if tmpfs:
        raise _bad(flag, value, "tmpfs-size/tmpfs-mode apply to type=tmpfs", _MOUNT_HINT)
    if kind is MountKind.BIND:
        if not source:
            raise _bad(flag, value, "a bind mount needs a source", _MOUNT_HINT)
        if not is_host_path(source):
            raise _bad(
                flag, value, f"bind source {source!r} is not a path", "start it with / or ./"
            )
        if seen & volume_keys:
            raise _bad(flag, value, "volume keys don't apply to type=bind", _MOUNT_HINT)
    else:
        if source and is_host_path(source):
            raise _bad(flag, value, "a volume's source is a name", "use type=bind for host paths")
        if source:
            check_volume_name(source, flag=f"{flag} {value!r}: volume name")
        if options:
            raise _bad(flag, value, "bind-propagation applies to type=bind", _MOUNT_HINT)
    return VolumeRequest(
        kind=kind,
        source=source or "",
        destination=dest,
        read_only=read_only,
        chown=chown,
        options=tuple(options),
        nocopy=nocopy,
        labels=tuple(labels),
    )


def parse_volumes_from(value: str) -> VolumesFrom:
    """``--volumes-from CONTAINER[:ro|rw][,z]``."""
    flag = "--volumes-from"
    container, colon, opts = value.partition(":")
    hint = "use CONTAINER, CONTAINER:ro or CONTAINER:rw"
    if not container or (colon and not opts):
        raise _bad(flag, value, "not CONTAINER[:ro|rw]", hint)
    read_only: bool | None = None
    for opt in opts.split(",") if colon else ():
        if opt in ("ro", "rw") and read_only is None:
            read_only = opt == "ro"
        elif opt not in ("z", "Z"):
            raise _bad(flag, value, f"unknown option {opt!r}", hint)
    return VolumesFrom(container, read_only)
