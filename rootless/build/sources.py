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
belong to 0:0 unless ``--chown`` (numbers, or names of the stage's /etc/passwd and
/etc/group); ``--chmod`` sets files' and directories' modes. ADD extracts a local tar
archive (:mod:`rootless.build.addarchive`). The checksum covers names, types, modes,
owners, link targets and contents, not times: touching a file does not invalidate the cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import hashlib
import os
import posixpath
import re
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rctlbase.errors import UsageError
from rootless.build.ignore import IgnoreRules
from rootless.build.statcache import NotKnown, StatDigests, stat_key

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


@dataclass(frozen=True, slots=True)
class IdFiles:
    """The text of the stage's /etc/passwd and /etc/group (None: the image has none), read
    as untrusted files (:mod:`rootless.containers.untrusted`)."""

    passwd: str | None
    group: str | None


def _id_of(text: str | None, name: str, fields: int) -> int | None:
    for line in (text or "").splitlines():
        parts = line.split(":")
        if len(parts) >= fields and parts[0] == name and parts[2].isdigit():
            number = int(parts[2])
            return number if number < 1 << 32 else None
    return None


def parse_chown(value: str | None, files: IdFiles | None = None) -> Owner:
    """``--chown=USER[:GROUP]``: numbers, or names from the stage's /etc/passwd and
    /etc/group. Without a group, the group named as the user, else the user's number (the
    Dockerfile reference: "the same numeric UID as the GID")."""
    if not value:
        return Owner()
    user, sep, group = value.partition(":")
    ids = files or IdFiles(None, None)
    uid = _number(user, _id_of(ids.passwd, user, 7), value, "user", "/etc/passwd")
    if sep:
        gid = _number(group, _id_of(ids.group, group, 4), value, "group", "/etc/group")
    elif user.isdigit():
        gid = uid
    else:
        named = _id_of(ids.group, user, 4)
        gid = uid if named is None else named
    return Owner(uid, gid)


def _number(part: str, named: int | None, value: str, what: str, where: str) -> int:
    if part.isdigit() and int(part) < 1 << 32:
        return int(part)
    if part == "root":
        return 0
    if named is None:
        raise UsageError(
            f"--chown={value}: no {what} {part!r} in the image's {where}",
            hint=f"give the {what}'s number, or one that exists in the image",
        )
    return named


def parse_chmod(value: str | None) -> int | None:
    """``--chmod=0755`` (octal)."""
    if value is None:
        return None
    if not re.fullmatch(r"[0-7]{3,4}", value):
        raise UsageError(
            f"--chmod={value}: not an octal mode", hint="write an octal mode, e.g. 0644"
        )
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
    owner: Owner | None = None,
    out: BinaryIO | None = None,
    extract: bool = False,
    known: StatDigests | None = None,
    stat_only: bool = False,
) -> list[CopyEntry]:
    """The entries of ``COPY SOURCES... DEST`` from ``context``; with ``out``, their layer
    tar is written there in the same pass (each file is opened and read once). With
    ``extract`` (ADD), a file holding a tar archive is extracted into ``DEST``
    (:mod:`rootless.build.addarchive`); its entries keep their owners unless ``owner``
    is given. ``known`` remembers the digests of files read; with ``stat_only`` no file is
    read: their digests come from ``known``, else :class:`~rootless.build.statcache.NotKnown`
    is raised."""
    target = absolute_dest(dest, workdir)
    into = dest.endswith("/") or len(sources) > 1 or any(_MAGIC.search(s) for s in sources)
    root = os.open(context, _DIR_FLAGS)
    copier = _Copier(rules, chmod, owner or Owner(), out)
    copier.known, copier.stat_only = known, stat_only
    archive_owner = (owner.uid, owner.gid) if owner is not None else None
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
            parent, _, base = path.rpartition("/")
            from rctlbase.syscalls import open_beneath  # noqa: PLC0415 - ctypes when used

            parent_fd = open_beneath(root, parent) if parent else os.dup(root)
            try:
                st = os.stat(base or ".", dir_fd=parent_fd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    if target != "" and not is_dir(target):
                        copier.add(parent_fd, base or ".", path, target, st)
                    with _opened_dir(parent_fd, base or ".") as fd:
                        copier.walk(fd, path, target)
                    continue
                if extract and stat.S_ISREG(st.st_mode):
                    made = target != "" and not is_dir(target)
                    if copier.add_archive(parent_fd, base, path, (target, made), st, archive_owner):
                        continue
                where = _join(target, base) if into or is_dir(target) else target
                copier.add(parent_fd, base, path, where, st)
            finally:
                os.close(parent_fd)
        copier.close()
    finally:
        os.close(root)
    return copier.entries


def absolute_dest(dest: str, workdir: str) -> str:
    """COPY's destination relative to the image's root (relative ones from WORKDIR)."""
    path = dest if dest.startswith("/") else posixpath.join(workdir or "/", dest)
    return posixpath.normpath(path).lstrip("/").removeprefix(".")


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


@contextlib.contextmanager
def _opened_dir(dir_fd: int, name: str) -> Iterator[int]:
    fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def _changed(path: str) -> UsageError:
    return UsageError(
        f"COPY: {path!r} changed while the build read it",
        hint="don't change the context during a build; run it again",
    )


class _Copier:
    """One COPY's walk: entries listed, files hashed and archived as they are read."""

    def __init__(
        self, rules: IgnoreRules, chmod: int | None, owner: Owner, out: BinaryIO | None
    ) -> None:
        self.rules = rules
        self.chmod = chmod
        self.owner = owner
        self.tar = (
            tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115 - closed by close()
            if out is not None
            else None
        )
        self.entries: list[CopyEntry] = []
        self.budget = _Budget()
        self.known: StatDigests | None = None
        self.stat_only = False
        # Ignored directories walked for their exceptions: written once something in
        # them is kept.
        self.pending: list[CopyEntry] = []

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()

    def walk(self, dir_fd: int, path: str, target: str) -> None:
        for name in sorted(os.listdir(dir_fd)):
            child, dest = _join(path, name), _join(target, name)
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError as exc:
                raise _changed(child) from exc
            directory = stat.S_ISDIR(st.st_mode)
            if self.rules.ignored(child):
                if directory and self.rules.has_exceptions:
                    entry = CopyEntry(dest, "dir", self._mode(st), mtime=int(st.st_mtime))
                    self.pending.append(entry)
                    with _opened_dir(dir_fd, name) as fd:
                        self.walk(fd, child, dest)
                    if self.pending and self.pending[-1] is entry:
                        self.pending.pop()
                continue
            self.add(dir_fd, name, child, dest, st)
            if directory:
                with _opened_dir(dir_fd, name) as fd:
                    self.walk(fd, child, dest)

    def _mode(self, st: os.stat_result) -> int:
        return stat.S_IMODE(st.st_mode) if self.chmod is None else self.chmod

    def _header(self, entry: CopyEntry) -> tarfile.TarInfo:
        info = tarfile.TarInfo(entry.dest)
        info.uid, info.gid = self.owner.uid, self.owner.gid
        info.uname = info.gname = ""
        info.mode, info.mtime = entry.mode, entry.mtime
        if entry.kind == "dir":
            info.type = tarfile.DIRTYPE
        elif entry.kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, entry.linkname
        else:
            info.size = entry.size
        return info

    def _emit(self, entry: CopyEntry) -> None:
        self.entries.append(entry)
        if self.tar is not None:
            self.tar.addfile(self._header(entry))

    def add(self, dir_fd: int, name: str, path: str, dest: str, st: os.stat_result) -> None:
        """The entry ``name`` of ``dir_fd`` (lstat'ed as ``st``), copied to ``dest``."""
        for waiting in self.pending:
            self._emit(waiting)
        self.pending = []
        self.budget.take(st.st_size if stat.S_ISREG(st.st_mode) else 0, path)
        mtime = int(st.st_mtime)
        if stat.S_ISDIR(st.st_mode):
            self._emit(CopyEntry(dest, "dir", self._mode(st), mtime=mtime, source=path))
            return
        if stat.S_ISLNK(st.st_mode):
            link = os.readlink(name, dir_fd=dir_fd)
            self._emit(CopyEntry(dest, "symlink", 0o777, mtime=mtime, linkname=link))
            return
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(
                f"COPY: {path!r} in the build context is neither a file, a directory nor a link",
                hint="FIFOs, sockets and devices are not copied: leave them out with .dockerignore",
            )
        if self.stat_only:
            digest = self.known.get(st) if self.known is not None else None
            if digest is None:
                raise NotKnown(path)
            self.entries.append(CopyEntry(dest, "file", self._mode(st), size=st.st_size,
                                          mtime=mtime, source=path, digest=digest))  # fmt: skip
            return
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        with os.fdopen(fd, "rb") as fh:
            now = os.fstat(fd)
            if (now.st_ino, now.st_size) != (st.st_ino, st.st_size) or not stat.S_ISREG(
                now.st_mode
            ):
                raise _changed(path)
            reader = _Hashing(fh)
            entry = CopyEntry(dest, "file", self._mode(st), size=st.st_size, mtime=mtime,
                              source=path)  # fmt: skip
            if self.tar is not None:
                try:
                    self.tar.addfile(self._header(entry), reader)
                except OSError as exc:  # tarfile's "unexpected end of data": it shrank
                    raise _changed(path) from exc
            else:
                reader.drain()
            if reader.size != st.st_size or fh.read(1):
                raise _changed(path)
            after = os.fstat(fd)
        digest = reader.digest.hexdigest()
        if self.known is not None and stat_key(after) == stat_key(now):
            self.known.remember(now, digest)  # unchanged while read: the digest is its
        self.entries.append(dataclasses.replace(entry, digest=digest))

    def add_archive(
        self, dir_fd: int, name: str, path: str, target: tuple[str, bool],
        st: os.stat_result, owner: tuple[int, int] | None,
    ) -> bool:  # fmt: skip
        """ADD's archive ``name`` extracted into the directory ``target[0]`` (made first
        when ``target[1]``); False when the file holds no archive."""
        from rootless.build import addarchive  # noqa: PLC0415 - ADD of archives only

        if self.stat_only:
            raise NotKnown(path)  # whether it is an archive takes reading it
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        with os.fdopen(fd, "rb") as fh:
            now = os.fstat(fd)
            if (now.st_ino, now.st_size) != (st.st_ino, st.st_size):
                raise _changed(path)
            kind = addarchive.archive_kind(fh)
            if kind is None:
                return False
            directory, make = target
            for waiting in self.pending:
                self._emit(waiting)
            self.pending = []
            if make:
                self._emit(CopyEntry(directory, "dir", 0o755))

            def emit(info: tarfile.TarInfo, content: addarchive.Readable | None) -> None:
                if self.tar is not None:
                    self.tar.addfile(info, content)

            digest = addarchive.relay(
                fh, kind, path, directory, size=st.st_size, owner=owner, chmod=self.chmod,
                emit=emit, take=self.budget.take,
            )  # fmt: skip
        self.entries.append(CopyEntry(directory, "archive", 0, size=st.st_size, source=path,
                                      digest=digest))  # fmt: skip
        return True


class _Hashing:
    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


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


def write_layer(entries: list[CopyEntry], owner: Owner, out: BinaryIO) -> None:
    """The layer tar of entries that carry their content (directories, links, heredocs);
    files of a context are archived by :func:`plan_copy` as it reads them."""
    copier = _Copier(IgnoreRules(), None, owner, out)
    assert copier.tar is not None
    for entry in entries:
        if entry.kind == "file" and entry.data is None:
            raise ValueError(f"{entry.dest}: a context file is archived by plan_copy")
        info = copier._header(entry)
        if entry.data is not None:
            info.size = len(entry.data)
            copier.tar.addfile(info, _BytesReader(entry.data))
        else:
            copier.tar.addfile(info)
    copier.close()


def write_files(entries: list[CopyEntry], paths: list[Path], owner: Owner, out: BinaryIO) -> None:
    """The layer tar of file entries whose content is in the files ``paths`` (ADD's
    downloads, which rctl wrote itself)."""
    copier = _Copier(IgnoreRules(), None, owner, out)
    assert copier.tar is not None
    for entry, path in zip(entries, paths, strict=True):
        with open(path, "rb") as fh:
            copier.tar.addfile(copier._header(entry), fh)
    copier.close()


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.offset + size
        chunk = self.data[self.offset : end]
        self.offset += len(chunk)
        return chunk
