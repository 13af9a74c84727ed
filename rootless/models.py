"""Options and reports: the typed values the CLI and the API exchange with the engine."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PullOptions:
    """``rctl pull``."""

    name: str
    platform: str | None = None
    tls_verify: bool | None = None
    quiet: bool = False


@dataclass(frozen=True, slots=True)
class ImageSummary:
    """One row of ``rctl images``."""

    id: str
    short_id: str
    repository: str
    tag: str
    digest: str
    created: str
    size: int
    names: tuple[str, ...] = ()
    dangling: bool = False


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One row of ``rctl image history``."""

    id: str
    created: str
    created_by: str
    size: int
    comment: str


@dataclass(frozen=True, slots=True)
class RemovedImage:
    """What ``rctl rmi`` did to one name or ID."""

    untagged: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DiskUsage:
    """``rctl system df``."""

    images: int
    images_size: int
    layers: int
    blobs_size: int
    reclaimable: int
    containers: int = 0
    volumes: int = 0
    details: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PullEvent:
    """Progress of a pull, for the CLI to render (bars on a TTY, lines otherwise)."""

    kind: str  # resolved | exists | start | progress | done | unpacking | stored
    digest: str = ""
    done: int = 0
    total: int = 0
    text: str = ""
