"""COPY and ADD from the build context: which files, where they land, their checksum (the
cache key's part) and the layer tar they make.

The context is untrusted (it also arrives over the API): sources are relative to it and
may not leave it (absolute sources and ``..`` are refused); nothing below the context is
reached through a symbolic link (a link is copied as a link, a link on the way to a source
is not walked through); FIFOs, sockets and devices are refused (opening a FIFO would hang
the build); entries and bytes per instruction are bounded; files are opened ``O_NOFOLLOW |
O_NONBLOCK`` and must still be what was listed when archived. ``.dockerignore``'d paths
do not exist for COPY.

Where a source lands follows docker's rules: a directory's *contents* are copied into the
destination; a file goes into the destination when it ends with ``/``, names a directory
of the image, or several sources are copied; else it becomes the destination. New files
belong to 0:0 unless ``--chown`` (numeric, or root); ``--chmod`` sets files' and
directories' modes. The checksum covers names, types, modes, owners, link targets and
contents, not times: touching a file does not invalidate the cache.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import re
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rctlbase.errors import UsageError
from rootless.build.ignore import IgnoreRules

MAX_ENTRIES = 500_000
MAX_BYTES = 32 << 30
CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_MAGIC = re.compile(r"[*?\[]")


@dataclass(frozen=True, slots=True)
class CopyEntry:
    """One entry of the layer: ``dest`` relative to the image's root."""

    dest: str
    kind: str  # file | dir | symlink
    mode: int
    size: int = 0
    mtime: int = 0
    source: str = ""  # a file's path relative to the context
    linkname: str = ""
    digest: str = ""  # a file's content
    data: bytes | None = None  # a heredoc's content


@dataclass(frozen=True, slots=True)
class Owner:
    uid: int = 0
    gid: int = 0


def parse_chown(value: str | None) -> Owner:
    """``--chown=UID[:GID]`` (numeric, or ``root``)."""
    if not value:
        return Owner()
    user, _, group = value.partition(":")
    ids = []
    for part in (user, group or user):
        if part == "root":
            ids.append(0)
        elif part.isdigit() and int(part) < 1 << 32:
            ids.append(int(part))
        else:
            raise UsageError(
                f"--chown={value}: rctl takes numeric IDs (or root) here",
                hint="write the user's and group's numbers, e.g. --chown=1000:1000",
            )
    return Owner(ids[0], ids[1])


def parse_chmod(value: str | None) -> int | None:
    """``--chmod=0755`` (octal)."""
    if value is None:
        return None
    if not re.fullmatch(r"[0-7]{3,4}", value):
        raise UsageError(f"--chmod={value}: not an octal mode", hint="e.g. --chmod=0644")
    return int(value, 8)


def check_source(source: str) -> str:
    """A source pattern, normalised; refused when it is absolute or leaves the context."""
    if source.startswith("/"):
        raise UsageError(
            f"COPY source {source!r} is absolute",
            hint="sources are relative to the build context: write it without the leading /",
        )
    clean = posixpath.normpath(source)
    if clean == ".." or clean.startswith("../"):
        raise UsageError(
            f"COPY source {source!r} is outside the build context",
            hint="move what you copy into the context directory",
        )
    return "" if clean == "." else clean


def _lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def match_sources(context_fd: int, pattern: str, rules: IgnoreRules) -> list[str]:
    """Context paths matching ``pattern`` (globs per component), not ignored, sorted; no
    directory on the way is a link."""
    if not pattern:
        return [""]
    parts = pattern.split("/")
    found: list[str] = []

    def walk(fd: int, prefix: list[str], rest: list[str]) -> None:
        part, more = rest[0], rest[1:]
        names = (
            sorted(n for n in os.listdir(fd) if fnmatch.fnmatchcase(n, part))
            if _MAGIC.search(part)
            else [part]
        )
        for name in names:
            st = _lstat_at(fd, name)
            if st is None:
                continue
            path = [*prefix, name]
            if not more:
                found.append("/".join(path))
                continue
            if not stat.S_ISDIR(st.st_mode):
                continue
            sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
            try:
                walk(sub, path, more)
            finally:
                os.close(sub)

    walk(context_fd, [], parts)
    return [path for path in found if not rules.ignored(path)]


class _Budget:
    def __init__(self) -> None:
        self.entries = 0
        self.bytes = 0

    def take(self, size: int, what: str) -> None:
        self.entries += 1
        self.bytes += size
        if self.entries > MAX_ENTRIES or self.bytes > MAX_BYTES:
            raise UsageError(
                f"COPY of {what!r} brings more than {MAX_ENTRIES} entries or {MAX_BYTES >> 30} GiB",
                hint="copy less at once, or leave build output out with .dockerignore",
            )


def plan_copy(
    context: Path,
    sources: list[str],
    dest: str,
    workdir: str,
    rules: IgnoreRules,
    *,
    chmod: int | None,
    is_dir: Callable[[str], bool],
) -> list[CopyEntry]:
    """The entries of ``COPY SOURCES... DEST`` from ``context``."""
    target = absolute_dest(dest, workdir)
    into = dest.endswith("/") or len(sources) > 1 or any(_MAGIC.search(s) for s in sources)
    budget = _Budget()
    entries: list[CopyEntry] = []
    root = os.open(context, _DIR_FLAGS)
    try:
        matched: list[str] = []
        for source in sources:
            found = match_sources(root, check_source(source), rules)
            if not found:
                raise UsageError(
                    f"COPY source {source!r} is not in the build context "
                    "(or .dockerignore leaves it out)",
                    hint="check the path, relative to the context directory",
                )
            matched.extend(found)
        into = into or len(matched) > 1
        for path in matched:
            st = os.stat(path or ".", dir_fd=root, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                if target != "" and not is_dir(target):
                    entries.append(_entry(root, path, target, st, chmod, budget))
                _walk(root, path, target, rules, chmod, budget, entries)
                continue
            name = posixpath.basename(path)
            where = _join(target, name) if into or is_dir(target) else target
            entries.append(_entry(root, path, where, st, chmod, budget))
    finally:
        os.close(root)
    return entries


def absolute_dest(dest: str, workdir: str) -> str:
    path = dest if dest.startswith("/") else posixpath.join(workdir or "/", dest)
    return posixpath.normpath(path).lstrip("/").removeprefix(".")


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


def _entry(
    root: int, path: str, dest: str, st: os.stat_result, chmod: int | None, budget: _Budget
) -> CopyEntry:
    mode = stat.S_IMODE(st.st_mode) if chmod is None else chmod
    budget.take(st.st_size if stat.S_ISREG(st.st_mode) else 0, path)
    if stat.S_ISDIR(st.st_mode):
        return CopyEntry(dest, "dir", mode, mtime=int(st.st_mtime), source=path)
    if stat.S_ISLNK(st.st_mode):
        link = os.readlink(path, dir_fd=root)
        return CopyEntry(dest, "symlink", 0o777, mtime=int(st.st_mtime), linkname=link)
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(
            f"COPY: {path!r} in the build context is neither a file, a directory nor a link",
            hint="FIFOs, sockets and devices are not copied: leave them out with .dockerignore",
        )
    digest = hashlib.sha256()
    fd = _open_regular(root, path, st)
    with os.fdopen(fd, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return CopyEntry(
        dest, "file", mode, size=st.st_size, mtime=int(st.st_mtime), source=path,
        digest=digest.hexdigest(),
    )  # fmt: skip


def _open_regular(root: int, path: str, st: os.stat_result) -> int:
    """``path`` below ``root`` opened without following links; it must still be ``st``."""
    parent, _, base = path.rpartition("/")
    from rctlbase.syscalls import open_beneath  # noqa: PLC0415 - ctypes on first copy only

    dir_fd = open_beneath(root, parent) if parent else os.dup(root)
    try:
        fd = os.open(base, _FILE_FLAGS, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    now = os.fstat(fd)
    if (now.st_ino, now.st_size) != (st.st_ino, st.st_size) or not stat.S_ISREG(now.st_mode):
        os.close(fd)
        raise UsageError(
            f"COPY: {path!r} changed while the build read it",
            hint="don't change the context during a build; run it again",
        )
    return fd


def _walk(
    root: int, path: str, target: str, rules: IgnoreRules, chmod: int | None,
    budget: _Budget, entries: list[CopyEntry],
) -> None:  # fmt: skip
    fd = os.open(path or ".", _DIR_FLAGS, dir_fd=root)
    try:
        names = sorted(os.listdir(fd))
    finally:
        os.close(fd)
    for name in names:
        child = _join(path, name)
        dest = _join(target, name)
        st = os.stat(child, dir_fd=root, follow_symlinks=False)
        is_dir = stat.S_ISDIR(st.st_mode)
        if rules.ignored(child):
            if is_dir and rules.has_exceptions:
                kept: list[CopyEntry] = []
                _walk(root, child, dest, rules, chmod, budget, kept)
                if kept:
                    entries.append(_entry(root, child, dest, st, chmod, budget))
                    entries.extend(kept)
            continue
        entries.append(_entry(root, child, dest, st, chmod, budget))
        if is_dir:
            _walk(root, child, dest, rules, chmod, budget, entries)


def heredoc_entry(dest: str, workdir: str, data: bytes, chmod: int | None) -> CopyEntry:
    """``COPY <<EOF DEST``: a file made of the here-document."""
    digest = hashlib.sha256(data).hexdigest()
    mode = 0o644 if chmod is None else chmod
    return CopyEntry(absolute_dest(dest, workdir), "file", mode, len(data), 0, "", "", digest, data)


def checksum(entries: list[CopyEntry], owner: Owner) -> str:
    """What the cache compares: every entry but its time."""
    digest = hashlib.sha256(f"{owner.uid}:{owner.gid}\n".encode())
    for entry in entries:
        line = f"{entry.dest}\0{entry.kind}\0{entry.mode:o}\0{entry.linkname}\0{entry.digest}\n"
        digest.update(line.encode("utf-8", "surrogateescape"))
    return "sha256:" + digest.hexdigest()


def write_layer(context: Path, entries: list[CopyEntry], owner: Owner, out: BinaryIO) -> None:
    """The layer tar of ``entries``, files read again from ``context``."""
    root = os.open(context, _DIR_FLAGS)
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for entry in entries:
                info = tarfile.TarInfo(entry.dest)
                info.uid, info.gid = owner.uid, owner.gid
                info.uname = info.gname = ""
                info.mode, info.mtime = entry.mode, entry.mtime
                if entry.kind == "dir":
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif entry.kind == "symlink":
                    info.type, info.linkname = tarfile.SYMTYPE, entry.linkname
                    tar.addfile(info)
                elif entry.data is not None:
                    info.size = len(entry.data)
                    tar.addfile(info, _BytesReader(entry.data))
                else:
                    info.size = entry.size
                    st = os.stat(entry.source, dir_fd=root, follow_symlinks=False)
                    fd = _open_regular(root, entry.source, st)
                    with os.fdopen(fd, "rb") as fh:
                        if os.fstat(fh.fileno()).st_size != entry.size:
                            raise UsageError(
                                f"COPY: {entry.source!r} changed while the build read it",
                                hint="don't change the context during a build; run it again",
                            )
                        tar.addfile(info, fh)
    finally:
        os.close(root)


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.offset + size
        chunk = self.data[self.offset : end]
        self.offset += len(chunk)
        return chunk
