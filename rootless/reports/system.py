"""System reports: ``docker version``, ``docker info`` and ``docker system df`` (Engine API
v1.44: ``GET /version``, ``GET /info``, ``GET /system/df``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rootless.reports.containers import ContainerListRow
from rootless.reports.images import ImageListRow
from rootless.reports.volumes import VolumeReport


@dataclass(frozen=True, slots=True)
class Component:
    """One part of the engine ``version`` lists: rctl itself, its runtime, systemd."""

    name: str
    version: str
    details: Mapping[str, str] = field(default_factory=dict)

    def to_docker(self) -> dict[str, Any]:
        return {"Name": self.name, "Version": self.version, "Details": dict(self.details)}


@dataclass(frozen=True, slots=True)
class VersionReport:
    """What rctl is: the client and the engine are the same program."""

    version: str
    api_version: str
    min_api_version: str
    git_commit: str
    python_version: str
    os: str
    arch: str
    kernel_version: str
    components: tuple[Component, ...] = ()

    def _common(self) -> dict[str, Any]:
        return {
            "Version": self.version,
            "ApiVersion": self.api_version,
            "PythonVersion": self.python_version,
            "GitCommit": self.git_commit,
            "Os": self.os,
            "Arch": self.arch,
        }

    def to_docker(self) -> dict[str, Any]:
        """``GET /version``: the engine's side."""
        return {
            "Platform": {"Name": "rctl (rootless, systemd)"},
            "Components": [c.to_docker() for c in self.components],
            **self._common(),
            "MinAPIVersion": self.min_api_version,
            "KernelVersion": self.kernel_version,
        }

    def cli_document(self) -> dict[str, Any]:
        """``docker version --format``'s document: ``.Client`` and ``.Server``."""
        client = {"Platform": {"Name": "rctl"}, **self._common(), "Context": "default"}
        return {"Client": client, "Server": self.to_docker()}


@dataclass(frozen=True, slots=True)
class InfoReport:
    """How rctl is set up on this host. rctl's own facts (the run root, the delegated cgroup
    controllers, the default network mode, the search registries) are under ``Rctl``."""

    containers_running: int
    containers_paused: int
    containers_stopped: int
    images: int
    driver: str
    backing_filesystem: str
    root_dir: str
    run_root: str
    cgroup_version: str
    cgroup_controllers: tuple[str, ...]
    kernel_version: str
    operating_system: str
    os_type: str
    architecture: str
    ncpu: int
    mem_total: int
    name: str
    server_version: str
    runtime: str
    runtime_path: str
    default_network: str
    search_registries: tuple[str, ...] = ()
    insecure_registries: tuple[str, ...] = ()
    volume_drivers: tuple[str, ...] = ("local",)
    network_drivers: tuple[str, ...] = ("bridge", "host", "null", "pasta", "slirp4netns")

    def _indexes(self) -> dict[str, Any]:
        names = dict.fromkeys([*self.search_registries, *self.insecure_registries])
        return {
            name: {
                "Name": name,
                "Mirrors": [],
                "Secure": name not in self.insecure_registries,
                "Official": name == "docker.io",
            }
            for name in names
        }

    def to_docker(self) -> dict[str, Any]:
        return {
            "ID": "",
            "Containers": self.containers_running
            + self.containers_paused
            + self.containers_stopped,
            "ContainersRunning": self.containers_running,
            "ContainersPaused": self.containers_paused,
            "ContainersStopped": self.containers_stopped,
            "Images": self.images,
            "Driver": self.driver,
            "DriverStatus": [["Backing Filesystem", self.backing_filesystem]],
            "Plugins": {
                "Volume": list(self.volume_drivers),
                "Network": list(self.network_drivers),
                "Authorization": None,
                "Log": ["journald"],
            },
            "LoggingDriver": "journald",
            "CgroupDriver": "systemd",
            "CgroupVersion": self.cgroup_version,
            "KernelVersion": self.kernel_version,
            "OperatingSystem": self.operating_system,
            "OSType": self.os_type,
            "Architecture": self.architecture,
            "NCPU": self.ncpu,
            "MemTotal": self.mem_total,
            "DockerRootDir": self.root_dir,
            "Name": self.name,
            "ServerVersion": self.server_version,
            "Runtimes": {self.runtime: {"path": self.runtime_path}},
            "DefaultRuntime": self.runtime,
            "SecurityOptions": ["name=seccomp,profile=builtin", "name=rootless", "name=cgroupns"],
            "RegistryConfig": {"InsecureRegistryCIDRs": [], "IndexConfigs": self._indexes()},
            "Rctl": {
                "Rootless": True,
                "RunRoot": self.run_root,
                "CgroupControllers": list(self.cgroup_controllers),
                "DefaultNetwork": self.default_network,
                "Registries": {
                    "Search": list(self.search_registries),
                    "Insecure": list(self.insecure_registries),
                },
            },
        }


@dataclass(frozen=True, slots=True)
class DiskUsageReport:
    """``system df``: the images, containers and volumes with what they take. rctl shares
    layers between images, so ``layers_size`` (the unpacked layers' blobs) is less than the
    images' sizes added up."""

    layers_size: int
    images: tuple[ImageListRow, ...] = ()
    containers: tuple[ContainerListRow, ...] = ()
    volumes: tuple[VolumeReport, ...] = ()
    layers: int = 0  # how many unpacked layers the store holds

    def to_docker(self) -> dict[str, Any]:
        return {
            "LayersSize": self.layers_size,
            "Images": [image.to_docker() for image in self.images],
            "Containers": [
                {**c.to_docker(), "SizeRw": 0, "SizeRootFs": 0} for c in self.containers
            ],
            "Volumes": [
                {**v.to_docker(), "UsageData": {"Size": -1, "RefCount": -1}} for v in self.volumes
            ],
            "BuildCache": [],
            "Rctl": {"Layers": self.layers},
        }

    def rows(self) -> list[tuple[str, int, int, int, int]]:
        """docker's table: (type, total, active, size, reclaimable) for images,
        containers and local volumes. rctl measures neither the containers' r/w layers nor
        the volumes (their files belong to the user namespace's IDs): those sizes are 0."""
        used = sum(1 for image in self.images if image.containers > 0)
        unused = sum(image.size for image in self.images if image.containers <= 0)
        running = sum(1 for c in self.containers if c.state in ("running", "paused"))
        mounted = {m.name for c in self.containers for m in c.mounts if m.name}
        in_use = sum(1 for v in self.volumes if v.name in mounted)
        return [
            ("Images", len(self.images), used, self.layers_size, min(unused, self.layers_size)),
            ("Containers", len(self.containers), running, 0, 0),
            ("Local Volumes", len(self.volumes), in_use, 0, 0),
        ]
