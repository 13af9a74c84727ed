"""Finding the container's command in its image before anything starts, so that a missing
or non-executable program fails like docker (exit 127 / 126) instead of as a runtime error.

The image is seen through its layer directories, topmost first, honouring overlay
whiteouts (0:0 character devices) and following symlinks inside the image's root.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

MAX_LINKS = 40


class Layers:
    """Read-only lookups in a stack of unpacked layers (overlay format), top first."""

    def __init__(self, diffs_top_first: Sequence[Path]) -> None:
        self.diffs = list(diffs_top_first)

    def lstat(self, path: PurePosixPath) -> tuple[os.stat_result, Path] | None:
        for diff in self.diffs:
            candidate = diff / str(path).lstrip("/")
            try:
                st = candidate.lstat()
            except (FileNotFoundError, NotADirectoryError):
                continue
            except PermissionError:
                return None
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                return None  # a whiteout: deleted in this layer
            return st, candidate
        return None

    def resolve(self, path: PurePosixPath) -> tuple[os.stat_result, PurePosixPath] | None:
        """Follow symlinks (absolute ones relative to the image root) to the final entry."""
        parts = list(path.parts[1:])
        current = PurePosixPath("/")
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
                    current = PurePosixPath("/")
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
