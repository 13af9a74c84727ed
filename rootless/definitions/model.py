"""What a definition file says, once validated: containers, volumes, networks and pods.

These values are the output of :mod:`rootless.definitions.schema` and the input of the pure
translators (:mod:`rootless.definitions.translate`). They hold normalised values (ports and
volumes as the strings ``rctl run -p/-v`` takes, relative paths already resolved), so that
two files saying the same thing in different words give equal values and equal hashes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rootless.containers.health import HealthConfig

DEFAULT_WANTED_BY = ("default.target",)


class DefinitionLocation:
    """Where definitions live, and what each kind of place allows (see docs/definitions.md)."""

    USER = "user"  # ~/.config/rctl/definitions, or any file given to apply -f
    SYSTEM = "system"  # /etc/rctl/definitions/USER: paths must be absolute


# A definition's healthcheck is the engine's own configuration of one.
HealthcheckDef = HealthConfig


@dataclass(frozen=True, slots=True)
class NetworkRef:
    """A network a container joins, with its DNS aliases there."""

    name: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BuildDef:
    """A container's ``build``: what ``rctl build`` is given to make its image."""

    context: str  # absolute directory
    file: str | None = None  # absolute Dockerfile path; None: the context's own
    args: tuple[tuple[str, str], ...] = ()
    target: str | None = None


@dataclass(frozen=True, slots=True)
class ContainerDef:
    """``[container.NAME]``."""

    name: str
    file: str  # absolute path of the definition file
    image: str
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    env_files: tuple[str, ...] = ()  # absolute paths
    ports: tuple[str, ...] = ()  # -p strings
    volumes: tuple[str, ...] = ()  # -v strings (bind sources absolute)
    mounts: tuple[str, ...] = ()  # --mount strings
    tmpfs: tuple[str, ...] = ()
    networks: tuple[NetworkRef, ...] = ()
    restart: str = "no"
    memory: str | None = None
    memory_swap: str | None = None
    cpus: str | None = None
    cpu_shares: int | None = None
    pids_limit: str | None = None
    user: str | None = None
    workdir: str | None = None
    hostname: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    read_only: bool = False
    init: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    stop_timeout: int | None = None
    stop_signal: str | None = None
    pull: str = "missing"
    build: BuildDef | None = None  # the image is built from this (and named ``image``)
    ulimits: tuple[tuple[str, str], ...] = ()  # (name, "SOFT[:HARD]"), as --ulimit
    devices: tuple[str, ...] = ()  # --device strings
    shm_size: str | None = None
    sysctls: tuple[tuple[str, str], ...] = ()  # (key, value), as --sysctl
    privileged: bool = False
    secrets: tuple[str, ...] = ()  # --secret values: names, no values
    healthcheck: HealthcheckDef | None = None
    no_healthcheck: bool = False  # healthcheck.disable: not even the image's
    depends_on: tuple[str, ...] = ()
    pod: str | None = None  # the pod it joins (its network and published ports)
    notify: bool = False  # the container sends READY=1 itself
    wanted_by: tuple[str, ...] = DEFAULT_WANTED_BY
    unit: tuple[tuple[str, str], ...] = ()  # extra [Unit] lines, in file order
    service: tuple[tuple[str, str], ...] = ()  # extra [Service] lines
    lines: dict[str, int] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class VolumeDef:
    """``[volume.NAME]``: what ``rctl volume create`` would be given."""

    name: str
    file: str
    driver: str = "local"
    labels: tuple[tuple[str, str], ...] = ()
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class NetworkDef:
    """``[network.NAME]``: what ``rctl network create`` would be given."""

    name: str
    file: str
    driver: str = "bridge"
    subnet: str | None = None
    gateway: str | None = None
    internal: bool = False
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PodDef:
    """``[pod.NAME]``: what ``rctl pod create`` would be given."""

    name: str
    file: str
    ports: tuple[str, ...] = ()  # -p strings
    network: str | None = None  # slirp4netns | pasta | none (None: rctl.toml's default)
    labels: tuple[tuple[str, str], ...] = ()
    share: tuple[str, ...] = ("net", "ipc", "uts")
    hostname: str | None = None
    infra: bool = True


@dataclass(frozen=True, slots=True)
class DefinitionSet:
    """Everything some files define, validated together; containers in start order."""

    files: tuple[str, ...]
    containers: tuple[ContainerDef, ...] = ()
    volumes: tuple[VolumeDef, ...] = ()
    networks: tuple[NetworkDef, ...] = ()
    pods: tuple[PodDef, ...] = ()

    def container(self, name: str) -> ContainerDef | None:
        """The container called ``name``, or None."""
        return next((c for c in self.containers if c.name == name), None)
