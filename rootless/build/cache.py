"""The build cache: step keys (:func:`rootless.build.plan.cache_key`) to the image each
step made, in ``build-cache.json`` next to the image store.

The images themselves are the cache's content: an entry whose image is gone (``rctl rmi``,
``image prune``) is a miss. The file is bounded (the oldest entries go first), replaced
atomically, and read and written under the store's lock by its callers; a damaged file
is an empty cache, not an error (it only costs a rebuild).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

MAX_ENTRIES = 20_000
MAX_FILE = 16 << 20


class BuildCache:
    """Step keys to image IDs, saved after every new step."""

    def __init__(self, path: Path, locked: Callable[[], AbstractContextManager[None]]) -> None:
        self.path = path
        self.locked = locked
        self.entries = self._load()

    def _load(self) -> dict[str, str]:
        try:
            with open(self.path, "rb") as fh:
                data = json.loads(fh.read(MAX_FILE))
        except (OSError, ValueError, RecursionError):
            return {}
        entries = data.get("entries") if isinstance(data, dict) else None
        if not isinstance(entries, dict):
            return {}
        return {k: v for k, v in entries.items() if isinstance(k, str) and isinstance(v, str)}

    def get(self, key: str) -> str | None:
        return self.entries.get(key)

    def remember(self, key: str, image_id: str) -> None:
        with self.locked():
            entries = self._load()
            entries.pop(key, None)
            entries[key] = image_id
            while len(entries) > MAX_ENTRIES:
                del entries[next(iter(entries))]
            self._save(entries)
        self.entries[key] = image_id

    def clear(self) -> int:
        """Forget every entry (``rctl builder prune``); how many there were."""
        with self.locked():
            count = len(self._load())
            self.path.unlink(missing_ok=True)
        self.entries = {}
        return count

    def images(self) -> Iterator[str]:
        yield from self.entries.values()

    def _save(self, entries: dict[str, str]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".build-cache-")
        with os.fdopen(fd, "w") as fh:
            json.dump({"version": 1, "entries": entries}, fh)
        os.replace(tmp, self.path)
