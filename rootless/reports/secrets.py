"""Secret reports: ``docker secret inspect``'s document (Engine API v1.44, ``Secret``),
which never holds the value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SecretReport:
    """A secret's metadata; ``size`` (bytes of the value) is rctl's, under ``Rctl``."""

    id: str
    name: str
    created: str  # RFC 3339
    labels: Mapping[str, str] = field(default_factory=dict)
    size: int = 0

    def to_docker(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Version": {"Index": 1},
            "CreatedAt": self.created,
            "UpdatedAt": self.created,
            "Spec": {"Name": self.name, "Labels": dict(self.labels)},
            "Rctl": {"Size": self.size},
        }
