"""``rctl cp``: files between a container and the host, in both directions, symlink-safe.

Where docker's daemon resolves paths "in the container's root" with its own symlink
scoping, rctl lets the kernel do it: a forked child joins the running container's user and
mount namespaces (:func:`uidmap.unshare.fork_joined`); setns(2) into the mount namespace
makes the container's root the child's root, so every path and every symbolic link of the
container resolves inside it, as in the container itself (volumes and /etc/hosts
included). A stopped container's root is mounted in a user namespace of its own and the
child chroots into it (volumes of a stopped container are not visible: copy while it runs).
The host side is reached only through directory descriptors opened before the fork.

Everything the child runs is imported before it forks, and it never asks the name service
(uid → name) once inside: glibc would load the container's NSS libraries into it (docker's
CVE-2019-14271). The data moves as a tar stream inside the child, from a reader thread
(tarfile, which never follows the links it archives) to
:func:`rootless.images.unpack.unpack_tree`, the hardened extractor that also unpacks image
layers: every entry is created below a directory descriptor with openat2(RESOLVE_BENEATH |
RESOLVE_NO_SYMLINKS), never through a link the container planted. Owners become root of
the container (``0:0``) unless ``--archive``, as in docker; on the host, files belong to
the user.

Where the copy lands follows docker's rules (:func:`plan_placement`): a file goes into an
existing directory under its own name, or becomes DEST; a directory becomes DEST when DEST
does not exist, goes into DEST as a subdirectory when it does, and ``SRC/.`` copies the
directory's contents into DEST. A directory copied into one that exists (DEST with
``SRC/.``, DEST/NAME otherwise) brings its contents only: the existing directory keeps its
mode, times and owner, on the host as in the container (:func:`_add`).
"""

from __future__ import annotations

import enum
import os
import stat
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass

from rctlbase.errors import ExternalError, NotFoundError, UsageError
from rootless.images.unpack import unpack_tree


class Kind(enum.StrEnum):
    """What a path names."""

    MISSING = "missing"
    FILE = "file"  # anything but a directory: file, link, device, fifo
    DIR = "dir"


@dataclass(frozen=True, slots=True)
class CopyPath:
    """One side of ``rctl cp``: ``container`` None for the host."""

    container: str | None
    path: str


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the copy's top entry is created: in ``directory``, as ``name`` ("." = into)."""

    directory: str
    name: str


def parse_copy_path(arg: str) -> CopyPath:
    """docker's ``CONTAINER:PATH`` or a host path (one with a ``:`` must start with / or .)."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return CopyPath(None, arg)
    name, _, path = arg.partition(":")
    if not name:
        return CopyPath(None, arg)
    if not path:
        raise UsageError(f"no path after {name}:", hint="give CONTAINER:PATH, e.g. web:/etc/hosts")
    return CopyPath(name, path if path.startswith("/") else f"/{path}")


def parse_copy_args(source: str, destination: str) -> tuple[CopyPath, CopyPath]:
    """Both sides; exactly one of them is in a container."""
    src, dst = parse_copy_path(source), parse_copy_path(destination)
    if (src.container is None) == (dst.container is None):
        raise UsageError(
            "copying between two containers or two host paths is not supported"
            if src.container
            else "one of SRC and DEST must be CONTAINER:PATH",
            hint="rctl cp CONTAINER:SRC HOSTDEST, or rctl cp HOSTSRC CONTAINER:DEST",
        )
    return src, dst


def contents_only(path: str) -> bool:
    """``SRC/.``: the directory's contents, not the directory."""
    return path == "." or path.endswith("/.")


def plan_placement(src_kind: Kind, contents: bool, dest: str, dest_kind: Kind) -> Placement:
    """docker's rules for where a copy of a ``src_kind`` lands at ``dest``."""
    base = os.path.basename(dest.rstrip("/")) or "."
    parent = os.path.dirname(dest.rstrip("/")) or ("/" if dest.startswith("/") else ".")
    if src_kind is Kind.DIR:
        if dest_kind is Kind.FILE:
            raise UsageError(
                f"cannot copy a directory to a file: {dest}", hint="give a directory as DEST"
            )
        if dest_kind is Kind.MISSING:
            return Placement(parent, base)
        return Placement(dest, "." if contents else "")
    if dest_kind is Kind.DIR:
        return Placement(dest, "")
    if dest_kind is Kind.MISSING and dest.endswith("/"):
        raise UsageError(
            f"destination directory {dest} does not exist",
            hint="create it first, or drop the trailing /",
        )
    return Placement(parent, base)


def kind_of(path: str, *, dir_fd: int | None = None, follow: bool = True) -> Kind:
    try:
        mode = os.stat(path, dir_fd=dir_fd, follow_symlinks=follow).st_mode
    except FileNotFoundError:
        return Kind.MISSING
    except NotADirectoryError:
        return Kind.MISSING
    return Kind.DIR if stat.S_ISDIR(mode) else Kind.FILE


@dataclass(frozen=True, slots=True)
class HostEnd:
    """The host side, opened before the child leaves the host's view."""

    path: str  # absolute, normalised
    kind: Kind
    parent_fd: int  # the directory holding it
    fd: int | None  # the directory itself, when it is one
    contents: bool = False  # a source given as DIR/.


def open_host(path: str, *, as_source: bool) -> HostEnd:
    """Open the host side; a source must exist (its link is copied, not followed)."""
    absolute = os.path.abspath(path)
    kind = kind_of(absolute, follow=not as_source)
    if as_source and kind is Kind.MISSING:
        raise NotFoundError(f"no such file or directory: {path}", hint="check the source path")
    parent = os.path.dirname(absolute) if absolute != "/" else "/"
    try:
        parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(
            f"{parent}: {exc.strerror}", hint="the destination's directory must exist"
        ) from exc
    fd = None
    if kind is Kind.DIR and not as_source:
        fd = os.open(absolute, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return HostEnd(absolute, kind, parent_fd, fd, contents=as_source and contents_only(path))


def _owner_filter(archive: bool) -> Callable[[tarfile.TarInfo], tarfile.TarInfo]:
    def reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
        if not archive:
            info.uid = info.gid = 0
            info.uname = info.gname = ""
        return info

    return reset


def _add(tar: tarfile.TarFile, path: str, arcname: str, archive: bool, *, into: bool) -> None:
    """Archive ``path`` as ``arcname``; ``into`` (a directory going into one that exists):
    its entries only. The directory's own entry would give the existing directory its
    mode, times and owner: a container could make the user's directory world-writable or
    its own, and a host directory copied into ``/`` would change the container's root.
    docker skips that entry too (the contents go into DEST, DEST stays as it was)."""
    reset = _owner_filter(archive)
    if not into:
        tar.add(path, arcname=arcname, filter=reset)
        return
    for name in sorted(os.listdir(path)):
        tar.add(os.path.join(path, name), arcname=f"{arcname}/{name}", filter=reset)


def _stream(
    add: Callable[[tarfile.TarFile], None],
    extract_fd: int,
    errors: list[BaseException],
    keep_kinds: bool = False,
) -> None:
    """Archive with ``add`` in a thread, extract into ``extract_fd`` here."""
    read_fd, write_fd = os.pipe()

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb") as out, tarfile.open(fileobj=out, mode="w|") as tar:
                add(tar)
        except BaseException as exc:  # reported by the consumer's side
            errors.append(exc)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        with os.fdopen(read_fd, "rb") as source:
            unpack_tree(source, extract_fd, keep_kinds=keep_kinds)
    finally:
        thread.join()


def copy_in(
    src: HostEnd,
    dest: str,
    archive: bool,
    report: Callable[[str], None],
    keep_kinds: bool = False,
) -> int:
    """In the container's view: host ``src`` (opened before) to container path ``dest``;
    with ``keep_kinds`` no directory is replaced by a non-directory, nor the reverse."""
    placement = plan_placement(src.kind, src.contents, dest, kind_of(dest))
    try:
        extract_fd = os.open(placement.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        report(f"{placement.directory} in the container: {exc.strerror}")
        return 1
    name = os.path.basename(src.path) or "."
    arcname = placement.name or name
    into = src.kind is Kind.DIR and (
        placement.name == "." or kind_of(arcname, dir_fd=extract_fd, follow=False) is Kind.DIR
    )
    errors: list[BaseException] = []

    def add(tar: tarfile.TarFile) -> None:
        os.fchdir(src.parent_fd)  # relative names resolve on the host side
        _add(tar, name, arcname, archive, into=into)

    _stream(add, extract_fd, errors, keep_kinds)
    if errors:
        report(f"reading {src.path}: {errors[0]}")
        return 1
    return 0


def copy_out(
    container: str, src: str, dest: HostEnd, archive: bool, report: Callable[[str], None]
) -> int:
    """In the container's view: container path ``src`` to the host ``dest`` (opened before)."""
    src_kind = kind_of(src, follow=False)
    if src_kind is Kind.MISSING:
        report(f"could not find the file {src} in container {container}")
        return 2
    contents = contents_only(src)
    placement = plan_placement(src_kind, contents, dest.path, dest.kind)
    extract_fd = dest.fd if placement.directory == dest.path and dest.fd is not None else None
    if extract_fd is None:
        extract_fd = dest.parent_fd
    arcname = placement.name or os.path.basename(os.path.normpath(src))
    # The host's directory is looked at through its descriptor, never by a path.
    into = src_kind is Kind.DIR and (
        placement.name == "." or kind_of(arcname, dir_fd=extract_fd, follow=False) is Kind.DIR
    )
    errors: list[BaseException] = []

    def add(tar: tarfile.TarFile) -> None:
        _add(tar, os.path.normpath(src), arcname, archive, into=into)

    _stream(add, extract_fd, errors)
    if errors:
        report(f"reading {src} in the container: {errors[0]}")
        return 1
    return 0


Enter = Callable[[Callable[[], int]], int]


def run_copy(
    source: str,
    destination: str,
    enter: Enter,
    *,
    archive: bool = False,
    keep_kinds: bool = False,
) -> None:
    """Copy between the host and the container that ``enter`` forks a child into (it
    returns the child's pid; see the module docstring). Raises what the child reported."""
    src, dst = parse_copy_args(source, destination)
    err_r, err_w = os.pipe()

    def report(message: str) -> None:
        os.write(err_w, message.encode(errors="replace")[:4000])

    if src.container is None:
        host = open_host(src.path, as_source=True)
        container = str(dst.container)

        def work() -> int:
            return copy_in(host, dst.path, archive, report, keep_kinds)
    else:
        host = open_host(dst.path, as_source=False)
        container = src.container

        def work() -> int:
            return copy_out(container, src.path, host, archive, report)

    def guarded() -> int:
        # In the container's view now: nothing may be imported or loaded from here on
        # (its root is the container's), and no name service either: glibc would load the
        # container's libnss_*.so into this process (docker's CVE-2019-14271).
        tarfile.pwd = None  # type: ignore[attr-defined]
        tarfile.grp = None  # type: ignore[attr-defined]
        try:
            return work()
        except (UsageError, NotFoundError) as exc:
            report(exc.message)
            return 3
        except OSError as exc:
            report(f"{exc.filename or container}: {exc.strerror or exc}")
            return 1

    try:
        pid = enter(guarded)
        os.close(err_w)
        err_w = -1
        with os.fdopen(err_r, "rb") as said:
            message = said.read().decode(errors="replace").strip()
        _, status = os.waitpid(pid, 0)
    finally:
        if err_w >= 0:
            os.close(err_w)
        for fd in (host.parent_fd, host.fd):
            if fd is not None:
                os.close(fd)
    code = os.waitstatus_to_exitcode(status)
    if code == 2:
        raise NotFoundError(message, hint="paths in a container start at its root")
    if code == 3:
        raise UsageError(message, hint="see 'rctl cp --help' for where copies land")
    if code != 0:
        raise CopyFailed(message or f"the copy ended with status {code}")


class CopyFailed(ExternalError):
    """The copy started but could not finish (permissions, a full disk...)."""

    default_hint = "check the permissions and the free space at both ends of the copy"
