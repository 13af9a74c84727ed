"""The typed values of volumes: a container's recorded mount points and a volume's record.

Imports nothing of the project, so that container records (:mod:`rootless.containers.record`)
can hold :class:`MountPoint` without importing the volume service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class MountPoint:
    """A bind or volume mount of a container, resolved at create time and kept in its record.

    ``source`` is the host path mounted (a volume's ``_data``); ``name`` the volume's name
    ("" for binds); ``anonymous`` marks volumes made for this container (``-v /path``, the
    image's VOLUMEs), which ``rm -v`` and ``run --rm`` remove. ``options`` are the extra
    mount flags for the runtime; ``mode`` is docker's "Mode" (the options as given).
    """

    type: str  # bind | volume
    source: str
    destination: str
    name: str = ""
    read_only: bool = False
    anonymous: bool = False
    options: tuple[str, ...] = ()
    mode: str = ""

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> MountPoint:
        """A mount point from its record's JSON (``dataclasses.asdict``)."""
        return cls(**{**raw, "options": tuple(raw.get("options", ()))})


@dataclass(frozen=True, slots=True)
class VolumeRecord:
    """``volumes/NAME/volume.json``: what ``rctl volume inspect`` shows."""

    name: str
    created: str  # RFC 3339, as docker's CreatedAt
    mountpoint: str
    driver: str = "local"
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False
