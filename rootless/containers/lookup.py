"""Finding the container's command in its image before anything starts, so that a missing
or non-executable program fails like docker (exit 127 / 126) instead of as a runtime error.

The image is seen through its layer directories, topmost first, as overlayfs merges them:
a whiteout (0:0 character device) deletes the lower layers' entry, an opaque directory
hides the lower layers' contents, and a directory of an upper layer hides a lower layer's
file or link of the same name. Symbolic links are followed inside the image's root only
(absolute ones from the image's /, ``..`` stops at it), never through the host's paths:
every host path looked at is a layer's directory plus components that were each seen, by
lstat, to be directories of that layer (a link in a lower layer under an upper directory
is never walked through, as overlayfs never would). :mod:`rootless.containers.untrusted`
reads files found this way.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

MAX_LINKS = 40  # Linux's MAXSYMLINKS: a longer chain is ELOOP in the container too
OPAQUE_XATTRS = ("user.overlay.opaque", "trusted.overlay.opaque", "user.fuseoverlayfs.opaque")
ROOT = PurePosixPath("/")


def is_whiteout(st: os.stat_result) -> bool:
    """overlayfs' whiteout: a 0:0 character device."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: Path) -> bool:
    """Whether the layer directory ``path`` hides the lower layers' contents."""
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) in (b"y", b"y\n"):
                return True
        except OSError:
            continue
    return False


class Layers:
    """Read-only lookups in a stack of unpacked layers (overlay format), top first.

    A single tree (a vfs layer, a container's root) is a stack of one.
    """

    def __init__(self, diffs_top_first: Sequence[Path]) -> None:
        self.diffs = list(diffs_top_first)
        # Image directory -> the layers (their roots) where it is a directory of the merged
        # view, top first; [] when it is not one.
        self._dirs: dict[PurePosixPath, list[Path]] = {ROOT: self.diffs}

    def _layers_of(self, directory: PurePosixPath) -> list[Path]:
        known = self._dirs.get(directory)
        if known is not None:
            return known
        relative = str(directory).lstrip("/")
        found: list[Path] = []
        for diff in self._layers_of(directory.parent):
            candidate = diff / relative
            try:
                st = candidate.lstat()
            except (FileNotFoundError, NotADirectoryError):
                continue
            except PermissionError:
                break
            if not stat.S_ISDIR(st.st_mode):
                break  # a file, link or whiteout: hides the layers below
            found.append(diff)
            if is_opaque(candidate):
                break
        self._dirs[directory] = found
        return found

    def locate(self, path: PurePosixPath) -> tuple[os.stat_result, Path, str] | None:
        """The entry at the normalised absolute ``path`` (links not followed): its lstat,
        the root of the layer holding it and its path relative to that root."""
        if path == ROOT:
            return (self.diffs[0].lstat(), self.diffs[0], "") if self.diffs else None
        relative = str(path).lstrip("/")
        for diff in self._layers_of(path.parent):
            try:
                st = (diff / relative).lstat()
            except (FileNotFoundError, NotADirectoryError):
                continue
            except PermissionError:
                return None
            if is_whiteout(st):
                return None  # deleted in this layer
            return st, diff, relative
        return None

    def lstat(self, path: PurePosixPath) -> tuple[os.stat_result, Path] | None:
        """The entry at ``path`` (links not followed) and its host path."""
        found = self.locate(path)
        return (found[0], found[1] / found[2]) if found else None

    def resolve(self, path: PurePosixPath) -> tuple[os.stat_result, PurePosixPath] | None:
        """Follow symlinks (absolute ones relative to the image root) to the final entry."""
        parts = list(path.parts[1:] if path.is_absolute() else path.parts)
        current = ROOT
        links = 0
        while parts:
            name = parts.pop(0)
            if name in ("", "."):
                continue
            if name == "..":
                current = current.parent
                continue
            found = self.lstat(current / name)
            if found is None:
                return None
            st, real = found
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_LINKS:
                    return None
                target = PurePosixPath(os.readlink(real))
                parts = list(target.parts[1:] if target.is_absolute() else target.parts) + parts
                if target.is_absolute():
                    current = ROOT
                continue
            current = current / name
            if parts and not stat.S_ISDIR(st.st_mode):
                return None
        found = self.lstat(current)
        return (found[0], current) if found else None


def check_command(
    layers: Layers, argv0: str, env: Sequence[str], cwd: str
) -> tuple[int, str] | None:
    """None when ``argv0`` would run; else docker's (exit code, message)."""
    if "/" in argv0:
        candidates = [PurePosixPath(argv0 if argv0.startswith("/") else f"{cwd}/{argv0}")]
    else:
        path = next(
            (e[5:] for e in env if e.startswith("PATH=")),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        candidates = [PurePosixPath(d or ".") / argv0 for d in path.split(":") if d.startswith("/")]
    for candidate in candidates:
        found = layers.resolve(candidate)
        if found is None:
            continue
        st, _ = found
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return None
        if "/" in argv0:
            what = "is a directory" if stat.S_ISDIR(st.st_mode) else "permission denied"
            return 126, f"{argv0}: {what}"
    if "/" in argv0:
        return 127, f"{argv0}: no such file or directory"
    return 127, f"executable file `{argv0}` not found in $PATH"
