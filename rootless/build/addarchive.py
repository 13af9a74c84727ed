"""ADD's extraction of a local archive: its entries re-written into the step's layer.

A file of the context is an archive when its content says so (docker's rule, not its
name): a tar, plain or compressed with gzip, bzip2, xz or zstd. Its entries go below the
destination directory with their modes, owners and times (``--chown``/``--chmod`` replace
them when given); the archive is untrusted, so each entry is checked as the hardened
extractor checks a layer (:func:`rootless.images.unpack.split_name`) before it reaches the
layer, which that extractor unpacks again:

- absolute names, ``..`` components and NUL bytes are refused, for hard link targets too;
  a hard link must name a file earlier in the archive;
- an entry below one of the archive's own symbolic links is refused (``a -> /etc`` then
  ``a/passwd`` would write through it); links themselves are kept, they point inside the
  image;
- devices and FIFOs are refused, owners above the user namespace's range too;
- a bomb stops: entries and bytes count against the COPY budget, and the expanded size may
  not pass :data:`MAX_RATIO` times the archive's size (beyond :data:`FREE_BYTES`).

Only the archive's bytes, hashed as they are read, stand for it in the cache key.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import lzma
import stat
import tarfile
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO, Protocol, cast

import zstandard

from rctlbase.errors import UsageError
from rootless.images.unpack import DEFAULT_MAX_ID, LayerError, split_name

MAX_RATIO = 200
FREE_BYTES = 64 << 20
_CORRUPT = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError,
            zstandard.ZstdError)  # fmt: skip
_MAGICS = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


# Writes one entry to the layer (with its content for a file).
Emit = Callable[[tarfile.TarInfo, Readable | None], None]


class _Counting:
    """Hashes (raw side) or counts and bounds (expanded side) what is read through it."""

    def __init__(self, raw: Readable, limit: int | None = None, what: str = "") -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0
        self.limit = limit
        self.what = what

    def read(self, size: int = -1, /) -> bytes:
        data = self.raw.read(size)
        self.size += len(data)
        if self.limit is None:
            self.sha.update(data)
        elif self.size > self.limit:
            raise UsageError(
                f"ADD {self.what}: the archive expands to more than {self.limit} bytes "
                f"({MAX_RATIO} times its size): refused as a decompression bomb",
                hint="extract it in a RUN step if it is really meant to be that large",
            )
        return data


@contextlib.contextmanager
def _expanded(raw: Readable, kind: str) -> Iterator[Readable]:
    src = cast(BinaryIO, raw)
    if kind == "gzip":
        with gzip.GzipFile(fileobj=src, mode="rb") as out:
            yield out
    elif kind == "bzip2":
        with bz2.BZ2File(src, "rb") as bzout:
            yield bzout
    elif kind == "xz":
        with lzma.LZMAFile(src, "rb") as xzout:
            yield xzout
    elif kind == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(
            src, read_across_frames=True, closefd=False
        )
        with reader as zout:
            yield zout
    else:
        yield raw


def archive_kind(fh: BinaryIO) -> str | None:
    """``plain``, ``gzip``, ``bzip2``, ``xz`` or ``zstd`` when ``fh`` (a file at offset 0,
    left there) holds a tar, else None: it is then copied as a file."""
    head = fh.read(8)
    kind = next((name for magic, name in _MAGICS if head.startswith(magic)), "plain")
    fh.seek(0)
    try:
        with _expanded(fh, kind) as stream:
            block = stream.read(512)
    except _CORRUPT:
        block = b""
    fh.seek(0)
    # POSIX ("ustar\0") and GNU ("ustar ") headers; v7 tars carry no magic and stay files.
    return kind if len(block) == 512 and block[257:262] == b"ustar" else None


def _refuse(what: str, name: str, why: str) -> UsageError:
    return UsageError(
        f"ADD {what}: the archive's entry {name!r} {why}: refused",
        hint="the archive is unsafe to extract; fix it, or COPY it and extract it in a RUN step",
    )


def relay(
    fh: BinaryIO, kind: str, what: str, target: str, *, size: int,
    owner: tuple[int, int] | None, chmod: int | None, emit: Emit,
    take: Callable[[int, str], None],
) -> str:  # fmt: skip
    """Write the archive's entries below ``target`` through ``emit``; the sha256 of the
    archive's ``size`` bytes."""
    raw = _Counting(fh)
    seen_files: set[str] = set()
    links: set[str] = set()
    limit = max(FREE_BYTES, MAX_RATIO * size)
    try:
        with _expanded(raw, kind) as stream:
            counted = _Counting(stream, limit, what)
            with tarfile.open(fileobj=cast(BinaryIO, counted), mode="r|") as tar:
                while (member := tar.next()) is not None:
                    _entry(tar, member, what, target, owner, chmod, emit, take,
                           (seen_files, links))  # fmt: skip
                    tar.members.clear()  # type: ignore[attr-defined]
        while raw.read(1 << 20):
            pass
    except UsageError:
        raise
    except LayerError as exc:
        raise UsageError(f"ADD {what}: {exc.message}", hint=exc.hint) from exc
    except _CORRUPT as exc:
        raise UsageError(
            f"ADD {what}: the archive is corrupt: {exc}",
            hint="check the file, or COPY it instead of ADD",
        ) from exc
    if raw.size != size:
        raise UsageError(
            f"ADD {what}: the archive changed while the build read it",
            hint="don't change the context during a build; run it again",
        )
    return "sha256:" + raw.sha.hexdigest()


def _entry(
    tar: tarfile.TarFile, member: tarfile.TarInfo, what: str, target: str,
    owner: tuple[int, int] | None, chmod: int | None, emit: Emit,
    take: Callable[[int, str], None], state: tuple[set[str], set[str]],
) -> None:  # fmt: skip
    seen_files, links = state
    parts = split_name(member.name, "archive entry")
    if not parts:
        return
    name = "/".join(parts)
    for depth in range(1, len(parts)):
        if "/".join(parts[:depth]) in links:
            raise _refuse(what, member.name, "lies below a symbolic link of the archive")
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise _refuse(what, member.name, "is a device or a FIFO")
    uid, gid = owner if owner is not None else (member.uid, member.gid)
    if not (0 <= uid <= DEFAULT_MAX_ID and 0 <= gid <= DEFAULT_MAX_ID):
        raise _refuse(what, member.name, f"belongs to {uid}:{gid}, beyond the mapped IDs")
    take(member.size if member.isreg() else 0, f"{what}:{name}")
    info = tarfile.TarInfo(f"{target}/{name}" if target else name)
    info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
    mode = stat.S_IMODE(member.mode)
    info.mode = mode if chmod is None or member.issym() else chmod
    info.mtime = max(0, int(member.mtime))
    links.discard(name)
    if member.isdir():
        info.type = tarfile.DIRTYPE
        emit(info, None)
    elif member.issym():
        if "\0" in member.linkname:
            raise _refuse(what, member.name, "links to a name with a NUL byte")
        info.type, info.linkname = tarfile.SYMTYPE, member.linkname
        links.add(name)
        emit(info, None)
    elif member.islnk():
        linked = "/".join(split_name(member.linkname, "hard link target"))
        if linked not in seen_files:
            raise _refuse(what, member.name, "is a hard link to no earlier file of the archive")
        info.type = tarfile.LNKTYPE
        info.linkname = f"{target}/{linked}" if target else linked
        emit(info, None)
    else:
        info.size = member.size
        emit(info, tar.extractfile(member))
        seen_files.add(name)
