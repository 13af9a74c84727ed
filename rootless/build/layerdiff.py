"""A container's r/w layer as changes (``rctl diff``) and as a layer tar (``rctl commit``).

Two shapes of r/w layer (:mod:`rootless.storage.drivers`):

- **overlay, fuse-overlayfs**: the upper directory holds only what changed. A deletion is a
  0:0 character device (overlayfs(5) "whiteouts"), or a ``.wh.NAME`` file where
  fuse-overlayfs could not make one; a directory made anew over a lower one carries
  ``user.overlay.opaque`` (or ``user.fuseoverlayfs.opaque``). An entry is *added* when no
  lower layer shows it, *changed* otherwise.
- **vfs**: the container's root is a full copy of the image's top tree; the two are compared
  entry by entry (type, mode, owner, size, mtime, device, link target).

The tar uses the OCI layer format (image-spec layer.md): deletions are ``.wh.NAME`` entries,
an opaque directory a ``.wh..wh..opq`` entry; owners are numeric (the IDs inside the
container), never looked up by name (glibc would load the container's NSS modules).

This runs inside the user namespace, where the layer's files have their container owners,
often while the container runs: its processes may swap a directory for a symbolic link
at any moment. So every step is relative to a directory descriptor opened with
``O_NOFOLLOW``, files are opened ``O_NOFOLLOW | O_NONBLOCK`` and checked with fstat: a link
is archived as a link, never followed out of the layer.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import stat
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTRS = ("user.overlay.opaque", "user.fuseoverlayfs.opaque", "trusted.overlay.opaque")
# overlayfs' and fuse-overlayfs' own bookkeeping: never part of an image.
_PRIVATE_XATTRS = ("user.overlay.", "trusted.overlay.", "user.fuseoverlayfs.")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class ChangeKind(enum.StrEnum):
    """docker diff's letters."""

    ADDED = "A"
    CHANGED = "C"
    DELETED = "D"


@dataclass(frozen=True, slots=True)
class Change:
    """One path of the container that differs from its image."""

    kind: ChangeKind
    path: str  # absolute, as seen in the container


class _Writer:
    """Tar entries of the layer, or nothing when only the changes are wanted."""

    def __init__(self, out: BinaryIO | None, skip: frozenset[str] = frozenset()) -> None:
        self.skip = skip
        self.tar = (
            tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115 - closed by close()
            if out is not None
            else None
        )
        self._links: dict[tuple[int, int], str] = {}

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()

    def marker(self, parts: Sequence[str], name: str) -> None:
        """A whiteout or opaque marker: an empty file named ``name`` in ``parts``."""
        if self.tar is None:
            return
        info = tarfile.TarInfo("/".join([*parts, name]))
        info.mode = 0o600
        self.tar.addfile(info)

    def entry(self, dir_fd: int, parts: Sequence[str], st: os.stat_result) -> None:
        """The entry ``parts[-1]`` of ``dir_fd`` (already lstat'ed as ``st``)."""
        if self.tar is None or stat.S_ISSOCK(st.st_mode):
            return  # sockets are not archived (docker skips them too)
        name = parts[-1]
        info = tarfile.TarInfo("/".join(parts))
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        info.mtime = int(st.st_mtime)
        info.mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISREG(st.st_mode):
            self._file(dir_fd, name, info)
            return
        if stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
            fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            try:
                info.pax_headers = _xattr_headers(fd)
            finally:
                os.close(fd)
        elif stat.S_ISLNK(st.st_mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(name, dir_fd=dir_fd)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(st.st_mode):
            info.type = tarfile.FIFOTYPE
        self.tar.addfile(info)

    def _file(self, dir_fd: int, name: str, info: tarfile.TarInfo) -> None:
        assert self.tar is not None
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return  # swapped for something else since the walk saw it: gone now
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self._links:
                info.type = tarfile.LNKTYPE
                info.linkname = self._links[key]
                self.tar.addfile(info)
                return
            if st.st_nlink > 1:
                self._links[key] = info.name
            info.size = st.st_size
            info.pax_headers = _xattr_headers(fd)
            self.tar.addfile(info, _Exact(fh, st.st_size))


class _Exact:
    """A file read as exactly ``size`` bytes: a file that grew is cut, one that shrank is
    padded with zeros (a running container may write it while it is archived; the tar's
    header already holds the size)."""

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self.fh = fh
        self.left = size

    def read(self, size: int = -1) -> bytes:
        want = self.left if size < 0 else min(size, self.left)
        data = self.fh.read(want)
        if len(data) < want:
            data += bytes(want - len(data))
        self.left -= len(data)
        return data


def _xattr_headers(fd: int) -> dict[str, str]:
    """PAX ``SCHILY.xattr.*`` records of the file ``fd`` (capabilities, user attributes),
    without the overlay's own."""
    try:
        names = os.listxattr(fd)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM, errno.EACCES):
            return {}
        raise
    headers: dict[str, str] = {}
    for name in sorted(names):
        if name.startswith(_PRIVATE_XATTRS):
            continue
        try:
            value = os.getxattr(fd, name)
        except OSError:
            continue  # removed meanwhile, or not readable here
        headers[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
    return headers


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(fd: int) -> bool:
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(fd, name) == b"y":
                return True
        except OSError:
            continue
    return False


def _listing(fd: int) -> list[str]:
    return sorted(os.listdir(fd))


class _Lowers:
    """The image's layers below an overlay upper directory, top first, as directory fds."""

    def __init__(self, lowers: Sequence[Path]) -> None:
        self.fds: list[int] = []
        try:
            for lower in lowers:
                self.fds.append(os.open(lower, _DIR_FLAGS))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []

    def shows(self, parts: Sequence[str]) -> bool:
        """Whether the merged lower layers have an entry at ``parts``: the first layer
        (from the top) that has it decides; a whiteout or a non-directory on the way hides
        it, an opaque directory on the way hides the layers below."""
        for fd in self.fds:
            found, stop = _lookup(fd, parts)
            if found is not None:
                return found
            if stop:
                return False
        return False


def _lookup(root: int, parts: Sequence[str]) -> tuple[bool | None, bool]:
    """(whether this layer shows ``parts`` or None when it says nothing, whether layers
    below are hidden by an opaque directory on the way)."""
    fd = os.dup(root)
    opaque = False
    try:
        for depth, part in enumerate(parts, 1):
            try:
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return None, opaque
            if depth == len(parts):
                return not _is_whiteout(st), opaque
            if not stat.S_ISDIR(st.st_mode):
                return False, True  # a file, link or whiteout on the way: nothing below
            nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
            opaque = opaque or _is_opaque(fd)
        return True, opaque
    finally:
        os.close(fd)


def overlay_changes(
    upper: Path, lowers: Sequence[Path], out: BinaryIO | None, skip: frozenset[str] = frozenset()
) -> list[Change]:
    """The changes an overlay upper directory holds over ``lowers`` (top first), written as
    a layer tar to ``out`` when given. ``skip``: absolute paths left out when they are new
    (the mount points the runtime made for a build step's mounts)."""
    writer = _Writer(out, skip)
    changes: list[Change] = []
    below = _Lowers(lowers)
    root = os.open(upper, _DIR_FLAGS)
    try:
        _walk_upper(root, [], below, writer, changes)
    finally:
        os.close(root)
        below.close()
    writer.close()
    return changes


def _walk_upper(
    dir_fd: int, parts: list[str], below: _Lowers | None, writer: _Writer, changes: list[Change]
) -> None:
    for name in _listing(dir_fd):
        child = [*parts, name]
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue  # removed by the running container meanwhile
        if _is_whiteout(st):
            changes.append(Change(ChangeKind.DELETED, _absolute(child)))
            writer.marker(parts, WHITEOUT_PREFIX + name)
            continue
        if name == OPAQUE_MARKER:
            writer.marker(parts, name)  # fuse-overlayfs' fallback for the xattr
            continue
        if name.startswith(WHITEOUT_PREFIX):
            gone = name.removeprefix(WHITEOUT_PREFIX)
            changes.append(Change(ChangeKind.DELETED, _absolute([*parts, gone])))
            writer.marker(parts, name)
            continue
        existed = below is not None and below.shows(child)
        if not existed and _absolute(child) in writer.skip:
            continue
        kind = ChangeKind.CHANGED if existed else ChangeKind.ADDED
        changes.append(Change(kind, _absolute(child)))
        writer.entry(dir_fd, child, st)
        if stat.S_ISDIR(st.st_mode):
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                    continue  # swapped or removed meanwhile
                raise
            try:
                opaque = _is_opaque(fd)
                if opaque:
                    writer.marker(child, OPAQUE_MARKER)
                _walk_upper(fd, child, None if opaque or not existed else below, writer, changes)
            finally:
                os.close(fd)


def vfs_changes(
    rootfs: Path, base: Path | None, out: BinaryIO | None, skip: frozenset[str] = frozenset()
) -> list[Change]:
    """The changes of a full copy ``rootfs`` against the tree ``base`` it was copied from
    (None: an image without layers), written as a layer tar to ``out`` when given; ``skip``
    as for :func:`overlay_changes`."""
    writer = _Writer(out, skip)
    changes: list[Change] = []
    root = os.open(rootfs, _DIR_FLAGS)
    base_fd = os.open(base, _DIR_FLAGS) if base is not None else None
    try:
        _walk_copy(root, base_fd, [], writer, changes)
    finally:
        os.close(root)
        if base_fd is not None:
            os.close(base_fd)
    writer.close()
    return changes


def _walk_copy(
    dir_fd: int, base_fd: int | None, parts: list[str], writer: _Writer, changes: list[Change]
) -> None:
    names = set(_listing(dir_fd))
    base_names = set(_listing(base_fd)) if base_fd is not None else set()
    for name in sorted(names | base_names):
        child = [*parts, name]
        if name not in names:
            changes.append(Change(ChangeKind.DELETED, _absolute(child)))
            writer.marker(parts, WHITEOUT_PREFIX + name)
            continue
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        old = (
            os.stat(name, dir_fd=base_fd, follow_symlinks=False)
            if base_fd is not None and name in base_names
            else None
        )
        if old is None and _absolute(child) in writer.skip:
            continue
        same = old is not None and _same(st, old, name, dir_fd, base_fd)
        if not same:
            kind = ChangeKind.ADDED if old is None else ChangeKind.CHANGED
            changes.append(Change(kind, _absolute(child)))
            writer.entry(dir_fd, child, st)
        if not stat.S_ISDIR(st.st_mode):
            continue
        with _opened(dir_fd, name) as fd:
            if fd is None:
                continue
            old_dir = old is not None and stat.S_ISDIR(old.st_mode)
            with _opened(base_fd, name if old_dir else None) as sub_base:
                _walk_copy(fd, sub_base, child, writer, changes)


def _same(
    st: os.stat_result, old: os.stat_result, name: str, dir_fd: int, base_fd: int | None
) -> bool:
    if (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns) != (
        old.st_mode,
        old.st_uid,
        old.st_gid,
        old.st_mtime_ns,
    ):
        return False
    if stat.S_ISDIR(st.st_mode):
        return True
    if (st.st_size, st.st_rdev) != (old.st_size, old.st_rdev):
        return False
    if stat.S_ISLNK(st.st_mode):
        return os.readlink(name, dir_fd=dir_fd) == os.readlink(name, dir_fd=base_fd)
    return True


@contextlib.contextmanager
def _opened(dir_fd: int | None, name: str | None) -> Iterator[int | None]:
    """The directory ``name`` of ``dir_fd`` opened without following a link; None when
    there is none (or it was swapped for something else meanwhile)."""
    if dir_fd is None or name is None:
        yield None
        return
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
            raise
        yield None
        return
    try:
        yield fd
    finally:
        os.close(fd)


def _absolute(parts: Sequence[str]) -> str:
    return "/" + "/".join(parts)
