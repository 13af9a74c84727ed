"""Volume reports: ``docker volume inspect``'s document, which is also ``docker volume
ls``'s entry (Engine API v1.44, ``Volume``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class VolumeReport:
    """A named volume; ``anonymous`` (made for one container, removed with it by ``rm -v``
    and ``--rm``) is rctl's, under ``Rctl``."""

    name: str
    created: str  # RFC 3339
    mountpoint: str
    driver: str = "local"
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    anonymous: bool = False

    def to_docker(self) -> dict[str, Any]:
        return {
            "CreatedAt": self.created,
            "Driver": self.driver,
            "Labels": dict(self.labels),
            "Mountpoint": self.mountpoint,
            "Name": self.name,
            "Options": dict(self.options),
            "Scope": "local",
            "Rctl": {"Anonymous": self.anonymous},
        }
