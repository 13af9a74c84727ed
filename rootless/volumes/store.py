"""Named volumes on disk, under ``$XDG_DATA_HOME/rctl/volumes``::

    volumes/NAME/volume.json   the record (name, created, labels, options, mountpoint)
    volumes/NAME/_data/        the files, bind-mounted into containers

``_data`` is made by the user, who is uid 0 in containers: container root can write it.
A volume exists once its ``volume.json`` does (written last, atomically); a directory
without one is a volume being created or removed, and is not listed.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

from rctlbase.errors import ConflictError, NotFoundError
from rootless.volumes.model import VolumeRecord

RECORD = "volume.json"


class VolumeStore:
    """The volumes under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def dir(self, name: str) -> Path:
        return self.root / name

    def data(self, name: str) -> Path:
        """The directory containers mount."""
        return self.root / name / "_data"

    def names(self) -> set[str]:
        """Names of the volumes that exist."""
        if not self.root.is_dir():
            return set()
        return {p.name for p in self.root.iterdir() if (p / RECORD).is_file()}

    def all(self) -> list[VolumeRecord]:
        """Every volume, by name."""
        records = []
        for name in sorted(self.names()):
            try:
                records.append(self.get(name))
            except NotFoundError:
                continue  # removed meanwhile
        return records

    def get(self, name: str) -> VolumeRecord:
        """A volume by name."""
        try:
            raw = json.loads((self.dir(name) / RECORD).read_text())
        except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
            raise NotFoundError(
                f"no such volume: {name}", hint="list volumes with 'rctl volume ls'"
            ) from None
        return VolumeRecord(**raw)

    def create(
        self,
        name: str,
        *,
        labels: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
        anonymous: bool = False,
    ) -> VolumeRecord:
        """Make the volume's directories and record; ConflictError when it exists."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory = self.dir(name)
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            raise ConflictError(
                f"volume {name} already exists", hint="use it, or choose another name"
            ) from None
        try:
            self.data(name).mkdir(mode=0o755)
            created = datetime.datetime.now(datetime.UTC).astimezone().isoformat(timespec="seconds")
            record = VolumeRecord(
                name=name,
                created=created,
                mountpoint=str(self.data(name)),
                labels=dict(labels or {}),
                options=dict(options or {}),
                anonymous=anonymous,
            )
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".volume-")
            with os.fdopen(fd, "w") as fh:
                json.dump(asdict(record), fh, indent=1)
            os.replace(tmp, directory / RECORD)
        except BaseException:
            self.forget(name)
            raise
        return record

    def forget(self, name: str) -> None:
        """Remove the record first (the volume stops existing), then what the user owns.

        Files of mapped IDs stay behind: the caller removes the directory inside the user
        namespace (:mod:`rootless.volumes.userjob`).
        """
        directory = self.dir(name)
        for path in (directory / RECORD, *directory.glob(".volume-*")):
            path.unlink(missing_ok=True)
        for path in (self.data(name), directory):
            try:
                path.rmdir()
            except OSError:
                continue  # not empty or gone
