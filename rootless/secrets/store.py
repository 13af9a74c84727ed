"""Secrets on disk, under ``$XDG_DATA_HOME/rctl/secrets`` (0700)::

    secrets/NAME/value         the value, 0600, written to a temporary file then renamed
    secrets/NAME/secret.json   the record (id, name, created, labels, size), written last

A secret exists once its record does; a directory without one is a secret being created or
removed, and is not listed. Nothing here logs or returns the value but :meth:`value`.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rctlbase.errors import ConflictError, NotFoundError, UsageError
from rootless.secrets.parse import MAX_SECRET_BYTES, check_secret_name

RECORD = "secret.json"
VALUE = "value"
_MAX_RECORD = 64 << 10  # a record is a few hundred bytes; labels are bounded by this


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """What ``secret.json`` holds."""

    id: str
    name: str
    created: str
    labels: dict[str, str] = field(default_factory=dict)
    size: int = 0


def _write_atomically(directory: Path, name: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, directory / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class SecretStore:
    """The secrets under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> set[str]:
        """Names of the secrets that exist."""
        if not self.root.is_dir():
            return set()
        return {p.name for p in self.root.iterdir() if (p / RECORD).is_file()}

    def all(self) -> list[SecretRecord]:
        """Every secret, by name."""
        records = []
        for name in sorted(self.names()):
            try:
                records.append(self.get(name))
            except NotFoundError:
                continue  # removed meanwhile
        return records

    def _load(self, name: str) -> SecretRecord | None:
        try:
            with (self.root / name / RECORD).open("rb") as fh:
                raw: Any = json.loads(fh.read(_MAX_RECORD))
            return SecretRecord(**raw)
        except (OSError, ValueError, TypeError):
            return None

    def get(self, ref: str) -> SecretRecord:
        """A secret by name, by ID, or by a unique prefix of its ID."""
        record = self._load(ref) if "/" not in ref and ref not in ("", ".", "..") else None
        if record is not None:
            return record
        matches = [r for r in self.all() if ref and r.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UsageError(f"secret ID prefix {ref!r} is ambiguous", hint="give more of it")
        raise NotFoundError(f"no such secret: {ref}", hint="list secrets with 'rctl secret ls'")

    def value(self, name: str) -> bytes:
        """The secret's value (for a container's file or variable only)."""
        with (self.root / name / VALUE).open("rb") as fh:
            return fh.read(MAX_SECRET_BYTES + 1)

    def create(
        self, name: str, value: bytes, labels: dict[str, str], *, replace: bool = False
    ) -> SecretRecord:
        """Store a secret; ConflictError when the name is taken (unless ``replace``)."""
        check_secret_name(name)
        if len(value) > MAX_SECRET_BYTES:
            raise UsageError(
                f"secret {name} is larger than {MAX_SECRET_BYTES} bytes",
                hint="secrets are for keys and passwords; mount larger files as volumes",
            )
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        directory = self.root / name
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            if not replace and (directory / RECORD).exists():
                raise ConflictError(
                    f"secret {name} already exists",
                    hint="remove it first with 'rctl secret rm', or choose another name",
                ) from None
        created = datetime.datetime.now(datetime.UTC).astimezone().isoformat(timespec="seconds")
        record = SecretRecord(os.urandom(12).hex(), name, created, dict(labels), len(value))
        try:
            _write_atomically(directory, VALUE, value)
            _write_atomically(directory, RECORD, json.dumps(asdict(record)).encode())
        except BaseException:
            self.forget(name)
            raise
        return record

    def forget(self, name: str) -> None:
        """Remove the record first (the secret stops existing), then the value."""
        directory = self.root / name
        for path in (directory / RECORD, directory / VALUE, *directory.glob(".tmp-*")):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # gone, or not ours to clean
            directory.rmdir()
