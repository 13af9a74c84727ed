"""Extract one layer tar stream into a directory, never writing outside it.

tarfile's ``extract``/``extractall`` and filters are not used: this Python has filter
bypasses (CVE-2025-4517, CVE-2025-4330). tarfile only *reads* the stream (``r|``, after our
own decompression, so the diff_id is hashed on the way); entries are created here, relative
to directory fds:

- names lose a leading ``./``; absolute names, ``..`` components and NUL bytes are refused
  (:class:`UnsafeLayerError`), for entry names and hard link targets alike;
- an entry's parent is opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
  RESOLVE_NO_MAGICLINKS) (:func:`rctlbase.syscalls.open_beneath`), missing parents are made
  one ``O_NOFOLLOW`` component at a time. **A symbolic link in an entry's parent path
  refuses the layer**, pointing outside (``a -> /etc``, ``a/passwd``) or inside alike:
  docker, buildkit and containerd record real paths, so only crafted layers do that;
- what exists at an entry's name is removed first (a directory is kept for a directory
  entry) and files are made with ``O_CREAT | O_EXCL | O_NOFOLLOW``: never written through;
- chmod comes after chown (which clears set-uid bits); directories get their mode and mtime
  last, deepest first, so that later entries still go in.

Whiteouts (``.wh.NAME``, ``.wh..wh..opq``) follow a :class:`WhiteoutFormat`: ``overlay``
turns them into what overlayfs and fuse-overlayfs read (a 0:0 character device; the
``user.overlay.opaque`` and ``user.fuseoverlayfs.opaque`` xattrs, as the layers are mounted
with ``userxattr`` in a user namespace), ``vfs`` applies them to the copy of the parent
layer being extracted over (recursive removal without following links).

Runs as uid 0 in rctl's user namespace in production (as root in the unit tests).
"""

from __future__ import annotations

import contextlib
import enum
import errno
import gzip
import hashlib
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, cast

import zstandard

from rctlbase.errors import ExternalError, UsageError
from rctlbase.syscalls import open_beneath, syscall_error
from rootless.images.manifest import Compression

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_AUFS_PREFIX = ".wh..wh."
OPAQUE_XATTRS = ("user.overlay.opaque", "user.fuseoverlayfs.opaque")
# Overlay metadata a layer must not set itself (redirects, metacopy, opaque, origin...).
_RESERVED_XATTRS = ("user.overlay.", "trusted.overlay.", "user.fuseoverlayfs.")
_XATTR_PREFIX = "SCHILY.xattr."
DEFAULT_MAX_ID = 65536
MAX_WARNINGS = 50
CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CORRUPT = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, zstandard.ZstdError)
_UNSAFE_HINT = (
    "the layer tries to write outside its directory or through a symbolic link (rctl "
    "refuses both): don't use this image"
)
_INCONSISTENT_HINT = "the layer is inconsistent: rebuild or re-push the image"


class WhiteoutFormat(enum.StrEnum):
    """How deletions in a layer are recorded on disk."""

    OVERLAY = "overlay"  # each layer in its own directory, stacked by (fuse-)overlayfs
    VFS = "vfs"  # each layer extracted over a full copy of its parent
    NONE = "none"  # not a layer (``rctl cp``): ``.wh.`` names are ordinary files


class LayerError(ExternalError):
    """A layer blob can't be unpacked: corrupt, inconsistent or unsupported."""

    default_hint = (
        "the layer is damaged or of a kind rctl can't unpack: remove the image, pull again"
    )


class UnsafeLayerError(LayerError):
    """A layer entry would be written outside the layer's directory."""

    default_hint = _UNSAFE_HINT


@dataclass(frozen=True, slots=True)
class UnpackResult:
    """What unpacking one layer did; ``diff_id`` hashes the uncompressed tar stream."""

    entries: int
    bytes_written: int
    uncompressed_size: int
    compressed_size: int
    diff_id: str
    digest: str
    warnings: tuple[str, ...]


class Readable(Protocol):
    """What :func:`unpack_layer` reads from: a file, a socket stream, a response body."""

    def read(self, size: int = -1, /) -> bytes: ...


class _HashingReader:
    """A read-only stream that hashes and counts what passes through it."""

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self._sha = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._raw.read(size)
        self._sha.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Read to the end, so the hash covers the whole stream."""
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return f"sha256:{self._sha.hexdigest()}"


def unpack_layer(
    stream: Readable,
    dest: Path,
    *,
    compression: Compression = Compression.NONE,
    whiteouts: WhiteoutFormat = WhiteoutFormat.OVERLAY,
    expected_diff_id: str | None = None,
    expected_digest: str | None = None,
    max_id: int = DEFAULT_MAX_ID,
    create_devices: bool = True,
    as_caller: bool = False,
) -> UnpackResult:
    """Extract the layer blob read from ``stream`` into the existing directory ``dest``.

    ``stream`` is read once, to its end. Owners above ``max_id`` are refused (they are not
    mapped in the user namespace). With ``create_devices`` false, or where mknod(2) is not
    permitted, device nodes are skipped with a warning. On any error, and when the diff_id
    or digest differs from the expected one, this raises and the caller deletes ``dest``.
    With ``as_caller`` (outside the user namespace, where the caller is its uid 0) only
    files, directories and links owned by 0:0 are accepted, made the caller's own; any
    other entry raises :class:`LayerError`, for the caller to unpack in the namespace.
    """
    raw = _HashingReader(stream)
    try:
        root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise syscall_error(exc, f"open the layer directory {dest}") from exc
    unpacker = _Unpacker(root_fd, whiteouts, max_id, create_devices)
    try:
        with _decompressed(raw, compression) as plain:
            tar_in = _HashingReader(plain)
            # Stream mode reads strictly forward; only read() is ever called on tar_in.
            with tarfile.open(fileobj=cast(BinaryIO, tar_in), mode="r|") as tar:
                while (member := tar.next()) is not None:
                    if as_caller:
                        _as_caller(member, unpacker.ids)
                    unpacker.extract(tar, member)
                    # Stream mode would keep every header (undeclared in typeshed).
                    tar.members.clear()  # type: ignore[attr-defined]
            tar_in.drain()
        raw.drain()
        unpacker.finish()
    except _CORRUPT as exc:
        raise LayerError(
            f"layer data is corrupt near entry {unpacker.current!r}: {exc}",
            hint="the download may be truncated or the blob damaged; pull again",
        ) from exc
    except OSError as exc:
        raise syscall_error(exc, f"unpack layer entry {unpacker.current!r}") from exc
    finally:
        unpacker.close()
        os.close(root_fd)
    for what, expected, actual in (
        ("diff_id", expected_diff_id, tar_in.digest),
        ("digest", expected_digest, raw.digest),
    ):
        if expected is not None and expected != actual:
            raise LayerError(
                f"layer {what} mismatch: expected {expected}, got {actual}",
                hint="the registry sent different content than the image lists; pull again, "
                "or ask the publisher to fix the image",
            )
    return UnpackResult(
        entries=unpacker.entries,
        bytes_written=unpacker.bytes_written,
        uncompressed_size=tar_in.size,
        compressed_size=raw.size,
        diff_id=tar_in.digest,
        digest=raw.digest,
        warnings=unpacker.warnings(),
    )


def unpack_tree(
    stream: Readable,
    root_fd: int,
    *,
    max_id: int = DEFAULT_MAX_ID,
    owners: bool = True,
    keep_kinds: bool = False,
) -> int:
    """Extract a plain tar stream (not a layer: no whiteouts, no digests) below the
    directory ``root_fd``, with the same guarantees as :func:`unpack_layer`; the number of
    entries. ``rctl cp`` uses it on both sides: into a container and onto the host. With
    ``owners`` false every entry is the caller's own (a build context outside the user
    namespace, whose COPY sets owners of its own). With ``keep_kinds`` an entry never
    replaces a directory with a non-directory or the reverse (docker's
    ``noOverwriteDirNonDir``): :class:`KindConflict`.
    """
    unpacker = _Unpacker(root_fd, WhiteoutFormat.NONE, max_id, devices=True)
    unpacker.keep_kinds = keep_kinds
    uid, gid = os.getuid(), os.getgid()
    try:
        with tarfile.open(fileobj=cast(BinaryIO, stream), mode="r|") as tar:
            while (member := tar.next()) is not None:
                if not owners:
                    member.uid, member.gid = uid, gid
                unpacker.extract(tar, member)
                tar.members.clear()  # type: ignore[attr-defined]
        unpacker.finish()
    except _CORRUPT as exc:
        raise LayerError(f"the copied data is corrupt near {unpacker.current!r}: {exc}") from exc
    except OSError as exc:
        raise syscall_error(exc, f"copy {unpacker.current!r}") from exc
    finally:
        unpacker.close()
    return unpacker.entries


@contextlib.contextmanager
def _decompressed(raw: _HashingReader, compression: Compression) -> Iterator[Readable]:
    """The uncompressed tar stream of a layer blob, read incrementally."""
    if compression is Compression.GZIP:
        with gzip.GzipFile(fileobj=cast(BinaryIO, raw), mode="rb") as unzipped:
            yield unzipped
    elif compression is Compression.ZSTD:
        decompressor = zstandard.ZstdDecompressor()
        # Layers may hold several frames (zstd:chunked does): read across them.
        with decompressor.stream_reader(
            cast(BinaryIO, raw), read_across_frames=True, closefd=False
        ) as unzstd:
            yield unzstd
    else:
        yield raw


def split_name(name: str, what: str = "entry") -> list[str]:
    """The components of a tar member name below the root; ``[]`` is the root itself.

    Raises UnsafeLayerError for NUL bytes, absolute names and ``..`` components.
    """
    why = None
    clean = name
    while clean.startswith("./"):
        clean = clean[2:]
    parts = [part for part in clean.split("/") if part not in ("", ".")]
    if "\0" in name:
        why = "contains a NUL byte"
    elif clean.startswith("/"):
        why = "is an absolute path"
    elif ".." in parts:
        why = "has a '..' component"
    if why is not None:
        raise UnsafeLayerError(f"unsafe layer {what} {name!r}: it {why}", hint=_UNSAFE_HINT)
    return parts


class KindConflict(UsageError):
    """A copy would replace a directory with a non-directory, or the reverse."""

    default_hint = "remove what is there first, or copy to another path"


class _Unpacker:
    """The state of one extraction: the root fd, a cached parent fd, deferred metadata."""

    def __init__(self, root_fd: int, whiteouts: WhiteoutFormat, max_id: int, devices: bool):
        self.root_fd = root_fd
        self.whiteouts = whiteouts
        self.max_id = max_id
        self.devices = devices
        self.keep_kinds = False  # refuse to replace a directory by a non-directory and back
        self.current = ""
        self.entries = 0
        self.bytes_written = 0
        self._warnings: list[str] = []
        self._suppressed = 0
        self._dirs: dict[str, tuple[int, int]] = {}  # path -> (mode, mtime ns), set last
        self._created: set[str] = set()  # paths this layer made (vfs opaque keeps them)
        self._parent: tuple[str, int] | None = None  # the last parent directory opened
        self.ids = (os.geteuid(), os.getegid())  # who a new file belongs to, mostly

    # ---- bookkeeping ----

    def warn(self, message: str) -> None:
        if len(self._warnings) < MAX_WARNINGS:
            self._warnings.append(message)
        else:
            self._suppressed += 1

    def warnings(self) -> tuple[str, ...]:
        more = [f"... and {self._suppressed} more warnings"] if self._suppressed else []
        return (*self._warnings, *more)

    def close(self) -> None:
        if self._parent is not None:
            os.close(self._parent[1])
            self._parent = None

    def _forget(self, path: str) -> None:
        """Drop cached state about ``path`` and below after removing a directory there."""
        prefix = f"{path}/"
        if self._parent is not None and (self._parent[0] + "/").startswith(prefix):
            self.close()
        for key in [k for k in self._dirs if k == path or k.startswith(prefix)]:
            del self._dirs[key]
        if self.whiteouts is WhiteoutFormat.VFS:
            self._created -= {k for k in self._created if k == path or k.startswith(prefix)}

    # ---- entries ----

    def extract(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        """Create one tar member below the root."""
        self.current = member.name
        self.entries += 1
        parts = split_name(member.name)
        path = "/".join(parts)
        layer = self.whiteouts is not WhiteoutFormat.NONE
        if (
            layer
            and any(part.startswith(_AUFS_PREFIX) for part in parts)
            and parts[-1] != OPAQUE_MARKER
        ):
            self.warn(f"skipped aufs metadata {path!r}")  # docker skips it too
            return
        self._check_owner(member)
        if not parts:
            if not member.isdir():
                raise LayerError(f"layer entry {member.name!r} is the root but not a directory")
            self._set_metadata(self.root_fd, member, "")
            return
        parent = self._open_parent(parts[:-1], path)
        base = parts[-1]
        if layer and base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parent, parts[:-1], base, path)
            return
        if member.isdir():
            self._make_dir(parent, base, path, member)
        elif member.isreg():
            self._make_file(tar, member, parent, base, path)
        elif member.issym():
            self._make_symlink(parent, base, path, member)
        elif member.islnk():
            self._make_hardlink(parent, base, path, member)
        elif member.ischr() or member.isblk() or member.isfifo():
            self._make_node(parent, base, path, member)
        else:
            self.warn(f"skipped {path!r}: unsupported tar entry type {member.type!r}")
            return
        if self.whiteouts is WhiteoutFormat.VFS:
            self._created.add(path)

    def _check_owner(self, member: tarfile.TarInfo) -> None:
        for owner in (member.uid, member.gid):
            if owner < 0 or owner > self.max_id:
                raise LayerError(
                    f"layer entry {member.name!r} is owned by ID {owner}, beyond the "
                    f"{self.max_id} IDs rctl maps",
                    hint=f"give your user at least {owner} IDs in /etc/subuid and /etc/subgid "
                    f"(e.g. alice:100000:{max(owner, 65536)})",
                )

    def _open_parent(self, parts: list[str], entry: str) -> int:
        """A borrowed fd of the entry's parent directory, made when missing."""
        key = "/".join(parts)
        if not parts:
            return self.root_fd
        if self._parent is not None and self._parent[0] == key:
            return self._parent[1]
        self.close()
        try:
            fd = open_beneath(self.root_fd, key)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                raise
            fd = self._walk_parents(parts, entry)
        self._parent = (key, fd)
        return fd

    def _walk_parents(self, parts: list[str], entry: str) -> int:
        """Open ``parts`` one directory at a time, making missing ones; refuse links."""
        fd = os.dup(self.root_fd)
        try:
            for depth, part in enumerate(parts, 1):
                try:
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    os.mkdir(part, 0o755, dir_fd=fd)
                    if self.whiteouts is WhiteoutFormat.VFS:
                        self._created.add("/".join(parts[:depth]))
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    where = "/".join(parts[:depth])
                    if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                        why = f"unsafe layer entry {entry!r}: its parent {where!r} is a symlink"
                        raise UnsafeLayerError(why, hint=_UNSAFE_HINT) from exc
                    why = f"layer entry {entry!r}: its parent {where!r} is not a directory"
                    raise LayerError(why, hint=_INCONSISTENT_HINT) from exc
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _clear(self, parent: int, base: str, path: str, *, keep_dir: bool = False) -> bool:
        """Remove what is at ``base`` (without following links); keep a directory if asked.

        Returns whether a directory was kept.
        """
        try:
            st = os.stat(base, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if self.keep_kinds and stat.S_ISDIR(st.st_mode) != keep_dir:
            what = ("directory", "non-directory") if keep_dir else ("non-directory", "directory")
            raise KindConflict(f"cannot overwrite {what[1]} {path!r} with {what[0]}")
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            shutil.rmtree(base, dir_fd=parent)
            self._forget(path)
        else:
            os.unlink(base, dir_fd=parent)
        return False

    def _make_dir(self, parent: int, base: str, path: str, member: tarfile.TarInfo) -> None:
        if not self._clear(parent, base, path, keep_dir=True):
            os.mkdir(base, 0o700, dir_fd=parent)
        fd = os.open(base, _DIR_FLAGS, dir_fd=parent)
        try:
            self._set_metadata(fd, member, path)
        finally:
            os.close(fd)

    def _make_file(
        self, tar: tarfile.TarFile, member: tarfile.TarInfo, parent: int, base: str, path: str
    ) -> None:
        source = tar.extractfile(member)
        if source is None:  # pragma: no cover - regular members always have a body
            raise LayerError(f"layer entry {path!r} has no data")
        # A file that is already the right owner's (the common case: 0:0 in the namespace)
        # is made with its final permissions, so that it needs no chown or chmod, each an
        # inode update that costs as much as the create when thousands of files are made.
        mine = (member.uid, member.gid) == self.ids
        fd = self._create(parent, base, path, member.mode & 0o777 if mine else 0o600)
        try:
            while chunk := source.read(CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
                self.bytes_written += len(chunk)
            self._file_metadata(fd, member, path)
        finally:
            os.close(fd)

    def _create(self, parent: int, base: str, path: str, mode: int) -> int:
        """A new regular file at ``base``, replacing what is there (which is rare: only
        then is it looked at)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            return os.open(base, flags, mode, dir_fd=parent)
        except FileExistsError:
            self._clear(parent, base, path)
        return os.open(base, flags, mode, dir_fd=parent)

    def _make_symlink(self, parent: int, base: str, path: str, member: tarfile.TarInfo) -> None:
        if "\0" in member.linkname:
            raise UnsafeLayerError(f"unsafe layer entry {path!r}: NUL byte in its link target")
        self._clear(parent, base, path)
        # The target is stored as given: nothing here ever follows it.
        os.symlink(member.linkname, base, dir_fd=parent)
        self._chown(base, member, path, parent)
        self._set_time(base, member, path, parent)
        if _xattrs(member):
            self.warn(f"skipped extended attributes of symbolic link {path!r}")

    def _make_hardlink(self, parent: int, base: str, path: str, member: tarfile.TarInfo) -> None:
        target = split_name(member.linkname, "hard link target")
        target_path = "/".join(target)
        if target_path == path:
            return  # a link to itself: nothing to do
        if not target:
            raise UnsafeLayerError(f"layer entry {path!r} is a hard link to the root directory")
        missing = LayerError(
            f"layer entry {path!r} links to {target_path!r}, which does not exist",
            hint="a hard link's target must come earlier in the same layer",
        )
        try:
            source = open_beneath(self.root_fd, "/".join(target[:-1]))
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                why = f"unsafe layer entry {path!r}: its link target {target_path!r} is below a"
                raise UnsafeLayerError(f"{why} symlink or a file", hint=_UNSAFE_HINT) from exc
            raise (missing if exc.errno == errno.ENOENT else exc) from exc
        try:
            st = os.stat(target[-1], dir_fd=source, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                raise LayerError(f"layer entry {path!r} is a hard link to a directory")
            self._clear(parent, base, path)
            os.link(target[-1], base, src_dir_fd=source, dst_dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError as exc:
            raise missing from exc
        finally:
            os.close(source)

    def _make_node(self, parent: int, base: str, path: str, member: tarfile.TarInfo) -> None:
        if not member.isfifo() and not self.devices:
            self.warn(f"skipped device node {path!r}: device creation is off")
            return
        self._clear(parent, base, path)
        kind = stat.S_IFIFO if member.isfifo() else stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        try:
            device = os.makedev(member.devmajor, member.devminor)
            os.mknod(base, kind | 0o600, device, dir_fd=parent)
        except PermissionError:
            self.warn(f"skipped device node {path!r}: mknod is not permitted here")
            return
        self._chown(base, member, path, parent)
        # We made this node just now, so it is not a link: plain fchmodat is safe.
        os.chmod(base, member.mode & 0o7777, dir_fd=parent)
        self._set_time(base, member, path, parent)

    # ---- whiteouts ----

    def _whiteout(self, parent: int, parent_parts: list[str], base: str, path: str) -> None:
        dir_path = "/".join(parent_parts)
        if base == OPAQUE_MARKER:
            if self.whiteouts is WhiteoutFormat.VFS:
                self._empty_dir(parent, dir_path)
                return
            for name in OPAQUE_XATTRS:
                try:
                    os.setxattr(parent, name, b"y")
                except OSError as exc:
                    raise LayerError(
                        f"cannot mark {dir_path or '/'!r} opaque: {os.strerror(exc.errno or 0)}",
                        hint="the storage filesystem needs user extended attributes (tmpfs "
                        "has them since Linux 6.6); or use the vfs storage driver",
                    ) from exc
            return
        name = base.removeprefix(WHITEOUT_PREFIX)
        if name in ("", ".", ".."):  # ".wh..." would delete the parent's parent
            raise UnsafeLayerError(f"unsafe layer entry {path!r}: bad whiteout", hint=_UNSAFE_HINT)
        gone = f"{dir_path}/{name}" if dir_path else name
        self._clear(parent, name, gone)
        if self.whiteouts is WhiteoutFormat.VFS:
            self._created.discard(gone)
            return
        try:
            # overlayfs' whiteout: a 0:0 character device; unprivileged since Linux 5.8.
            os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent)
        except PermissionError as exc:
            raise LayerError(
                f"cannot create the whiteout for {gone!r}: mknod is not permitted",
                hint="creating whiteouts in a user namespace needs Linux 5.8 or newer; "
                "or use the vfs storage driver",
            ) from exc

    def _empty_dir(self, fd: int, path: str) -> None:
        """vfs opaque directory: remove what lower layers put below ``path``."""
        for child in os.listdir(fd):
            child_path = f"{path}/{child}" if path else child
            st = os.stat(child, dir_fd=fd, follow_symlinks=False)
            if child_path not in self._created:
                self._clear(fd, child, child_path)
            elif stat.S_ISDIR(st.st_mode):
                sub = os.open(child, _DIR_FLAGS, dir_fd=fd)
                try:
                    self._empty_dir(sub, child_path)
                finally:
                    os.close(sub)

    # ---- metadata ----

    def _set_metadata(self, fd: int, member: tarfile.TarInfo, path: str) -> None:
        """Owner, xattrs, mode and times of a file or directory opened as ``fd``.

        chown clears set-uid/set-gid bits and file capabilities, so it comes first; a
        directory's mode and times are set by :meth:`finish`, after its contents.
        """
        self._chown(fd, member, path)
        for name, value in _xattrs(member):
            self._set_xattr(fd, name, value, path)
        if member.isdir():
            self._dirs[path] = (member.mode & 0o7777, _mtime_ns(member))
            return
        os.fchmod(fd, member.mode & 0o7777)
        self._set_time(fd, member, path)

    def _file_metadata(self, fd: int, member: tarfile.TarInfo, path: str) -> None:
        """:meth:`_set_metadata` of a new regular file, skipping the owner and mode when
        the file has them already (a set-gid directory or the umask may have chosen
        others, so they are read back rather than assumed)."""
        st = os.fstat(fd)
        changed = (st.st_uid, st.st_gid) != (member.uid, member.gid)
        if changed:
            self._chown(fd, member, path)
        for name, value in _xattrs(member):
            self._set_xattr(fd, name, value, path)
        mode = member.mode & 0o7777
        if changed or stat.S_IMODE(st.st_mode) != mode:
            os.fchmod(fd, mode)
        self._set_time(fd, member, path)

    def _chown(
        self, target: int | str, member: tarfile.TarInfo, path: str, parent: int | None = None
    ) -> None:
        try:
            # A name is a link or node we just made: never follow it; an fd is never a link.
            nofollow = isinstance(target, str)
            os.chown(target, member.uid, member.gid, dir_fd=parent, follow_symlinks=not nofollow)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EPERM):
                raise
            raise LayerError(
                f"cannot give {path!r} owner {member.uid}:{member.gid}: {os.strerror(exc.errno)}",
                hint="the ID is not mapped in rctl's user namespace (or this runs outside it): "
                "check your ranges in /etc/subuid and /etc/subgid",
            ) from exc

    def _set_xattr(self, fd: int, name: str, value: bytes, path: str) -> None:
        if name.startswith(_RESERVED_XATTRS):
            self.warn(f"ignored overlay attribute {name} of {path!r}")
            return
        try:
            os.setxattr(fd, name, value)
        except OSError as exc:
            benign = (errno.EPERM, errno.EACCES, errno.ENOTSUP, errno.E2BIG, errno.ERANGE)
            if exc.errno not in (*benign, errno.EINVAL):
                raise
            self.warn(f"skipped attribute {name} of {path!r}: {os.strerror(exc.errno or 0)}")

    def _set_time(
        self, target: int | str, member: tarfile.TarInfo, path: str, parent: int | None = None
    ) -> None:
        ns = _mtime_ns(member)
        try:
            os.utime(target, ns=(ns, ns), dir_fd=parent, follow_symlinks=isinstance(target, int))
        except (OverflowError, ValueError):
            self.warn(f"kept the current time for {path!r}: bad mtime {member.mtime!r}")

    def finish(self) -> None:
        """Apply directories' modes and times, deepest first (children touch parents)."""
        self.close()
        order = sorted(self._dirs, key=lambda p: p.count("/") if p else -1, reverse=True)
        for path in order:
            mode, ns = self._dirs[path]
            try:
                fd = open_beneath(self.root_fd, path)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                    continue  # replaced or removed by a later entry
                raise
            try:
                os.fchmod(fd, mode)
                os.utime(fd, ns=(ns, ns))
            finally:
                os.close(fd)


def _as_caller(member: tarfile.TarInfo, ids: tuple[int, int]) -> None:
    plain = member.isdir() or member.isreg() or member.issym() or member.islnk()
    base = member.name.rstrip("/").rpartition("/")[2]
    if member.uid or member.gid or not plain or base.startswith(WHITEOUT_PREFIX):
        raise LayerError(f"layer entry {member.name!r} needs the user namespace")
    member.uid, member.gid = ids


def _xattrs(member: tarfile.TarInfo) -> list[tuple[str, bytes]]:
    """The PAX ``SCHILY.xattr.*`` records of a member (GNU tar, docker, buildkit write them)."""
    return [
        (key.removeprefix(_XATTR_PREFIX), value.encode("utf-8", "surrogateescape"))
        for key, value in member.pax_headers.items()
        if key.startswith(_XATTR_PREFIX)
    ]


def _mtime_ns(member: tarfile.TarInfo) -> int:
    mtime = member.mtime
    return mtime * 1_000_000_000 if isinstance(mtime, int) else int(mtime * 1e9)
