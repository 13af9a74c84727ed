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
    networks: tuple[str, ...] = ()  # several --network NAME (bridge networks); one is `network`
    network_aliases: tuple[str, ...] = ()  # --network-alias, on every bridge network
    links: tuple[str, ...] = ()  # --link NAME[:ALIAS]
    publish_all: bool = False  # -P: every port the image exposes, on random host ports
    add_host: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_option: tuple[str, ...] = ()
    storage_driver: str | None = None
    runtime: str | None = None  # --runtime crun|runc (default: rctl.toml's [engine] runtime)
    console_socket: str | None = None  # -t: where crun sends the terminal's master side
    volumes: tuple[str, ...] = ()  # -v [SOURCE:]DEST[:OPTIONS]
    mounts: tuple[str, ...] = ()  # --mount type=...,src=...,dst=...
    volumes_from: tuple[str, ...] = ()  # --volumes-from CONTAINER[:ro|rw]
    health_cmd: str | None = None  # --health-cmd: a shell command, or a JSON array (CMD form)
    health_interval: str | None = None  # --health-interval 30s
    health_timeout: str | None = None
    health_retries: int | None = None
    health_start_period: str | None = None
    health_on_failure: str | None = None  # none | restart (podman's kill/stop not offered)
    no_healthcheck: bool = False  # --no-healthcheck: not even the image's HEALTHCHECK


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


@dataclass(frozen=True, slots=True)
class DefinitionAction:
    """One step of ``rctl apply`` / ``rctl down``: ``verb`` create | recreate | start | keep |
    remove, ``kind`` container | volume | network, ``keys`` what changed (recreate)."""

    verb: str
    kind: str
    name: str
    keys: tuple[str, ...] = ()
    container_id: str = ""

    def describe(self) -> str:
        """``recreate container web (image, ports)``."""
        text = f"{self.verb} {self.kind} {self.name}"
        if self.keys:
            text += f" ({', '.join(self.keys)})"
        return text


@dataclass(frozen=True, slots=True)
class NetworkCreateOptions:
    """``rctl network create``."""

    name: str
    subnet: str | None = None
    gateway: str | None = None
    internal: bool = False
    labels: tuple[str, ...] = ()
    driver: str = "bridge"


@dataclass(frozen=True, slots=True)
class NetworkSummary:
    """One row of ``rctl network ls``."""

    id: str
    name: str
    driver: str
    subnet: str
    gateway: str
    internal: bool
    labels: dict[str, str]
    created: float
    bridge: str


@dataclass(frozen=True, slots=True)
class CommitOptions:
    """``rctl commit``: ``changes`` are Dockerfile instructions (CMD, ENV...) applied to the
    new image's config; ``pause`` freezes a running container while its layer is read."""

    container: str
    name: str | None = None
    changes: tuple[str, ...] = ()
    message: str = ""
    author: str = ""
    pause: bool = True


@dataclass(frozen=True, slots=True)
class ContainerChange:
    """One line of ``rctl diff``: ``kind`` A (added), C (changed) or D (deleted)."""

    kind: str
    path: str


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """``rctl build``: docker's flags as given; ``context`` is a directory."""

    context: str
    dockerfile: str | None = None  # -f: else the context's Containerfile or Dockerfile
    tags: tuple[str, ...] = ()
    build_args: tuple[str, ...] = ()  # NAME=VALUE
    target: str | None = None
    no_cache: bool = False
    pull: str = "missing"  # missing | always | never, for FROM images
    labels: tuple[str, ...] = ()  # KEY=VALUE on the final image
    network: str | None = None  # RUN steps' network mode (default: rctl run's)
    secrets: tuple[str, ...] = ()  # --secret id=ID,src=FILE for RUN --mount=type=secret
