"""Options and reports: the typed values the CLI and the API exchange with the engine."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PullOptions:
    """``rctl pull``."""

    name: str
    platform: str | None = None
    tls_verify: bool | None = None
    quiet: bool = False
    auth: RegistryAuth | None = None  # this pull's credentials, else the stored ones


@dataclass(frozen=True, slots=True)
class ContainerUpdate:
    """``update``: the limits and restart policy to change; None leaves one as it is."""

    memory: int | None = None  # bytes
    memory_swap: int | None = None  # bytes of memory plus swap, -1 unlimited
    cpus: float | None = None
    cpu_shares: int | None = None
    pids_limit: int | None = None  # -1 unlimited
    restart: str | None = None  # no | always | unless-stopped | on-failure[:N]


@dataclass(frozen=True, slots=True)
class RegistryAuth:
    """Credentials a client sent for one request (the API's ``X-Registry-Auth``)."""

    username: str
    password: str = field(repr=False)


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
class RemovedImage:
    """What ``rctl rmi`` did to one name or ID."""

    untagged: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()


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
    pod: str | None = None  # --pod: join a pod (its network, published ports, IPC, UTS)
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
    ulimit: tuple[str, ...] = ()  # --ulimit NAME=SOFT[:HARD]
    device: tuple[str, ...] = ()  # --device HOST[:CONTAINER][:PERMISSIONS]
    shm_size: str | None = None  # --shm-size 64m
    sysctl: tuple[str, ...] = ()  # --sysctl KEY=VALUE (namespaced ones)
    privileged: bool = False
    platform: str | None = None  # --platform os/arch[/variant]: the image's
    cidfile: str | None = None  # --cidfile PATH: the ID is written there
    log_driver: str | None = None  # journald (default) | none
    cgroupns: str | None = None  # private | host
    ipc: str | None = None  # private | shareable | none | host
    pid: str | None = None  # host
    uts: str | None = None  # host
    group_add: tuple[str, ...] = ()  # --group-add GID|NAME|keep-groups
    mac_address: str | None = None  # refused: the network helpers choose it
    memory_reservation: str | None = None
    cpuset_cpus: str | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    blkio_weight: int | None = None
    oom_score_adj: int | None = None
    secrets: tuple[str, ...] = ()  # --secret NAME[,target=,type=mount|env,uid=,gid=,mode=]


@dataclass(frozen=True, slots=True)
class KubePlayResult:
    """``rctl kube play``: the containers it ran (or removed), and what it left out."""

    containers: tuple[str, ...]
    warnings: tuple[str, ...] = ()


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
    platform: str | None = None  # --platform: only the host's is built (others are refused)


@dataclass(frozen=True, slots=True)
class SystemPruneReport:
    """What ``rctl system prune`` removed, in docker's order."""

    containers: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    images: tuple[str, ...] = ()

    def to_docker(self) -> dict[str, object]:
        """The prune reports docker's endpoints give (``ContainersDeleted``...), together."""
        return {
            "ContainersDeleted": list(self.containers),
            "NetworksDeleted": list(self.networks),
            "VolumesDeleted": list(self.volumes),
            "ImagesDeleted": [{"Deleted": image} for image in self.images],
            "SpaceReclaimed": 0,
        }


class NameKind(enum.StrEnum):
    """What an argument names in the store, for shell completion."""

    CONTAINER = "container"
    IMAGE = "image"
    VOLUME = "volume"
    NETWORK = "network"


@dataclass(frozen=True, slots=True)
class AutoUpdateReport:
    """One labelled container's outcome in ``rctl auto-update``: ``updated`` is ``true``,
    ``false``, ``pending`` (dry run), ``rolled back``, ``failed: ...`` or ``skipped: ...``."""

    unit: str
    container: str
    image: str
    policy: str
    updated: str


@dataclass(frozen=True, slots=True)
class PodCreateOptions:
    """``rctl pod create``: podman's flags as given; the pod service validates them."""

    name: str | None = None
    publish: tuple[str, ...] = ()
    network: str | None = None  # slirp4netns | pasta | none (default: rctl.toml's)
    labels: Mapping[str, str] = field(default_factory=dict)
    share: str = "net,ipc,uts"
    infra: bool = True
    hostname: str | None = None
