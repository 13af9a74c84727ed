"""Reading, on the host, a file of a tree rctl doesn't trust: an image's layers, a file a
container can write.

rctl reads some of an image's files before the container exists (its /etc/passwd and
/etc/group, to resolve ``--user`` and to add the ``--userns keep-id`` user). The image
chooses what is at those paths, so a plain ``open`` would let it choose what the host
reads: a link ``etc/passwd -> ../../../../.ssh/id_ed25519`` leaves the layer directory and
hands the user's key to the container; a FIFO blocks the read (and every ``rctl run`` of
the image) for ever; a device such as ``/dev/zero``, or a huge file, fills the memory.
So, here:

- a path is resolved in the image's own root, through the layers as overlayfs merges them
  (:class:`rootless.containers.lookup.Layers`): links keep working as inside the
  container, ``..`` stops at the image's root, and a link that goes nowhere in the image
  is a missing file, as it is for the container;
- the file is opened below its layer's directory with openat2(RESOLVE_BENEATH |
  RESOLVE_NO_SYMLINKS) (:func:`rctlbase.syscalls.open_beneath`): no link of any kind is
  followed by the host's kernel, whatever was swapped in since the lookup;
- it is opened with ``O_NONBLOCK | O_NOCTTY`` (a FIFO's open returns at once, a terminal
  is not taken) and must be a regular file by ``fstat`` of the open descriptor: anything
  else (FIFO, device, socket, directory) is refused, and devices are refused before
  being opened at all (opening some has effects);
- at most ``limit`` bytes are read, checked before (``st_size``) and while reading (the
  file may grow): a larger file is refused, not cut.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import PurePosixPath

from rctlbase.errors import RctlError
from rctlbase.syscalls import open_beneath
from rootless.containers.lookup import Layers

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_NOFOLLOW | os.O_CLOEXEC
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
)
_CHUNK = 65536


class UntrustedFileError(RctlError):
    """A file rctl must read from an image or a container is not a regular file, or is
    larger than rctl reads."""


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _refuse_unless_regular(st: os.stat_result, what: str, hint: str) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise UntrustedFileError(
            f"{what} is {kind_of(st.st_mode)}, not a regular file: rctl does not read it",
            hint=hint,
        )


def read_beneath(dir_fd: int, relative: str, limit: int, *, what: str, hint: str) -> bytes:
    """The contents of the regular file ``relative`` below the directory ``dir_fd``, at
    most ``limit`` bytes; no link is followed (see the module docstring).

    Raises OSError (ENOENT, ELOOP for a link...) when it can't be opened, and
    :class:`UntrustedFileError`, naming ``what``, when it is not a regular file or is
    larger than ``limit``.
    """
    fd = open_beneath(dir_fd, relative, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        _refuse_unless_regular(st, what, hint)
        too_large = UntrustedFileError(
            f"{what} is larger than {limit} bytes: rctl does not read it", hint=hint
        )
        if st.st_size > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, min(_CHUNK, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise too_large
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_file(path: str, limit: int, *, what: str, hint: str) -> bytes:
    """:func:`read_beneath` of the file ``path`` (its directory is trusted, the file not)."""
    directory, _, name = path.rpartition("/")
    dir_fd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return read_beneath(dir_fd, name, limit, what=what, hint=hint)
    finally:
        os.close(dir_fd)


def read_image_file(layers: Layers, path: str, limit: int, *, what: str, hint: str) -> bytes | None:
    """The contents of ``path`` in the image whose layers are ``layers``, resolved in the
    image's root; None when the image has no file there (or its links lead nowhere, or
    loop). Raises :class:`UntrustedFileError` as :func:`read_beneath`."""
    found = layers.resolve(PurePosixPath("/", path))
    if found is None:
        return None
    located = layers.locate(found[1])
    if located is None:
        return None
    st, diff, relative = located
    # Refused before any open: opening a device can have effects of its own.
    _refuse_unless_regular(st, what, hint)
    dir_fd = os.open(diff, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return read_beneath(dir_fd, relative, limit, what=what, hint=hint)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EXDEV):
            return None  # changed since the lookup: as if it were not there
        if exc.errno == errno.EACCES:
            return None  # owned by an image user and closed to others: unreadable here
        raise
    finally:
        os.close(dir_fd)
