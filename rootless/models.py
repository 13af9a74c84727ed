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


@dataclass(frozen=True, slots=True)
class RunOptions:
    """``rctl run`` / ``rctl create``: docker's flags as given; the engine validates them."""

    image: str
    command: tuple[str, ...] = ()
    detach: bool = False
    interactive: bool = False
    tty: bool = False
    remove: bool = False
    name: str | None = None
    env: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    entrypoint: str | None = None
    hostname: str | None = None
    labels: tuple[str, ...] = ()
    read_only: bool = False
    tmpfs: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    init: bool = False
    userns: str | None = None
    pull: str = "missing"
    memory: str | None = None
    memory_swap: str | None = None
    cpus: str | None = None
    cpu_shares: int | None = None
    pids_limit: str | None = None
    restart: str = "no"
    stop_timeout: int | None = None
    stop_signal: str | None = None
    publish: tuple[str, ...] = ()
    network: str | None = None
    storage_driver: str | None = None
    console_socket: str | None = None  # -t: where crun sends the terminal's master side


@dataclass(frozen=True, slots=True)
class ContainerSummary:
    """One row of ``rctl ps``."""

    id: str
    name: str
    image: str
    command: str
    created: float
    state: str  # created | running | exited | paused
    status: str  # docker's STATUS column: "Up 3 seconds", "Exited (0) 2 minutes ago"
    exit_code: int | None
    ports: tuple[str, ...] = ()
