"""Content digests of context files remembered by their ``stat``, so that a rebuild whose
COPY sources did not change reads none of them.

A file's key is its device, inode, size, modification and change times (nanoseconds): an
edit changes the size or the times, and the change time cannot be set back by the user, so
a file whose key is known has the content it had when its digest was taken. A file changed
within the last :data:`RACY_NS` is not remembered: the file system's clock ticks coarsely,
and an edit in the same tick as the read would keep the key (git's "racy" files). Only a COPY
whose every file is known is decided by stat alone (:class:`NotKnown` otherwise: the
builder then reads the sources once, archiving and hashing them together, as without
this cache). A digest is remembered only once a complete read of the file gave it.

``build-digests.json`` is the user's own file next to the build cache: bounded (the oldest
entries go first), replaced atomically, and a damaged one is an empty cache.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

MAX_ENTRIES = 200_000
MAX_FILE = 64 << 20
RACY_NS = 2_000_000_000


class NotKnown(Exception):
    """A source file whose digest the cache does not know (yet)."""


def stat_key(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


class StatDigests:
    """``stat_key`` → sha256 hex of the file's content."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries = self._load()
        self.added = 0

    def _load(self) -> dict[str, str]:
        if self.path is None:
            return {}
        try:
            with open(self.path, "rb") as fh:
                data = json.loads(fh.read(MAX_FILE))
        except (OSError, ValueError, RecursionError):
            return {}
        entries = data.get("entries") if isinstance(data, dict) else None
        if not isinstance(entries, dict):
            return {}
        return {k: v for k, v in entries.items() if isinstance(k, str) and isinstance(v, str)}

    def get(self, st: os.stat_result) -> str | None:
        return self.entries.get(stat_key(st))

    def remember(self, st: os.stat_result, digest: str) -> None:
        if max(st.st_mtime_ns, st.st_ctime_ns) > time.time_ns() - RACY_NS:
            return
        key = stat_key(st)
        if self.entries.get(key) != digest:
            self.entries.pop(key, None)
            self.entries[key] = digest
            self.added += 1

    def save(self) -> None:
        """Write the file if anything was added (entries beyond the bound dropped, oldest
        first); a failure to write only costs reading the files again next time."""
        if self.path is None or not self.added:
            return
        while len(self.entries) > MAX_ENTRIES:
            del self.entries[next(iter(self.entries))]
        try:
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".build-digests-")
            with os.fdopen(fd, "w") as fh:
                json.dump({"version": 1, "entries": self.entries}, fh)
            os.replace(tmp, self.path)
        except OSError:
            return
        self.added = 0
