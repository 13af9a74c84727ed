"""A build context sent as a tar (``POST /build``): unpacked by the hardened extractor
(:func:`rootless.images.unpack.unpack_tree`: no entry lands outside the directory, links
included) into a private directory of the user's data directory, removed afterwards.

The tar is the client's: bounded (its unpacked bytes, compressed or not), and an unsafe or
damaged entry is the client's error (400), not a damaged image's.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from rctlbase.errors import UsageError
from rootless.images.unpack import LayerError, unpack_tree

MAX_CONTEXT = 8 * 2**30  # bytes of the unpacked context tar, compressed or not
GZIP_MAGIC = b"\x1f\x8b"


class ContextTooLarge(UsageError):
    """A build context over the service's bound (a gzip bomb, or just too big)."""

    http_status = 413
    default_hint = "make the context smaller (a .dockerignore leaves files out)"


class Bounded:
    """A readable stream that fails once more than ``limit`` bytes were read."""

    def __init__(self, stream: IO[bytes] | gzip.GzipFile, limit: int) -> None:
        self.stream = stream
        self.left = limit

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size if size >= 0 else self.left + 1)
        self.left -= len(data)
        if self.left < 0:
            raise ContextTooLarge(f"the upload is larger than {MAX_CONTEXT >> 30} GiB unpacked")
        return data


def unpack_context(upload: IO[bytes], root: Path, what: str = "the build context") -> None:
    """Extract the context tar (gzip recognised by its magic) below ``root``."""
    head = upload.read(2)
    upload.seek(0)
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        if head == GZIP_MAGIC:
            with gzip.GzipFile(fileobj=upload, mode="rb") as unzipped:
                unpack_tree(Bounded(unzipped, MAX_CONTEXT), root_fd, owners=False)
        else:
            unpack_tree(Bounded(upload, MAX_CONTEXT), root_fd, owners=False)
    except LayerError as exc:  # the client's tar: unsafe or damaged entries are its error
        raise UsageError(f"{what}: {exc.message}", hint="send a plain tar archive") from exc
    except (OSError, EOFError) as exc:  # gzip's own errors: the stream is damaged
        raise UsageError(f"{what} is not a readable tar: {exc}", hint="send a tar archive") from exc
    finally:
        os.close(root_fd)


@contextlib.contextmanager
def build_context(upload: IO[bytes], data: Path, what: str = "the build context") -> Iterator[Path]:
    """The context unpacked into a private directory below ``data``, removed on exit
    (``what`` names the upload in errors: a copy into a container uses it too)."""
    root = Path(tempfile.mkdtemp(prefix="upload-", dir=data))
    try:
        unpack_context(upload, root, what)
        yield root
    finally:
        remove_tree(root)


def remove_tree(root: Path) -> None:
    """Remove the unpacked context, whatever modes the tar gave its directories."""
    with contextlib.suppress(OSError):
        os.chmod(root, 0o700)
    for top, dirs, _files in os.walk(root):
        for name in dirs:
            path = os.path.join(top, name)
            if not os.path.islink(path):
                with contextlib.suppress(OSError):
                    os.chmod(path, 0o700)
    shutil.rmtree(root, ignore_errors=True)
