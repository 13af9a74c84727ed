"""Pod reports, in podman's shape: ``pod inspect``'s document and ``pod ps``'s rows
(podman has pods, docker has none); rctl's own facts go under ``Rctl``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rootless.timestamps import rfc3339_nano


@dataclass(frozen=True, slots=True)
class PodMember:
    """One container of a pod, as a pod's reports show it."""

    id: str
    name: str
    state: str  # created | running | paused | exited


@dataclass(frozen=True, slots=True)
class PodPort:
    """One published port of the pod."""

    protocol: str
    host_ip: str
    host_port: int
    container_port: int


@dataclass(frozen=True, slots=True)
class PodInspect:
    """``rctl pod inspect``: podman's ``pod inspect`` document."""

    id: str
    name: str
    created: float
    state: str  # Created | Running | Degraded | Exited | Paused
    hostname: str
    labels: Mapping[str, str] = field(default_factory=dict)
    infra: bool = True
    shared: tuple[str, ...] = ()
    network: str = ""
    ports: tuple[PodPort, ...] = ()
    members: tuple[PodMember, ...] = ()
    unit: str = ""

    def to_docker(self) -> dict[str, Any]:
        bindings: dict[str, list[dict[str, str]]] = {}
        for port in self.ports:
            bindings.setdefault(f"{port.container_port}/{port.protocol}", []).append(
                {"HostIp": port.host_ip, "HostPort": str(port.host_port)}
            )
        return {
            "Id": self.id,
            "Name": self.name,
            "Created": rfc3339_nano(self.created),
            "State": self.state,
            "Hostname": self.hostname,
            "Labels": dict(self.labels),
            "CreateInfra": self.infra,
            "InfraConfig": {
                "PortBindings": bindings,
                "HostNetwork": False,
                "Networks": [self.network] if self.network else [],
            },
            "SharedNamespaces": list(self.shared),
            "NumContainers": len(self.members),
            "Containers": [{"Id": m.id, "Name": m.name, "State": m.state} for m in self.members],
            "Rctl": {"Unit": self.unit},
        }


@dataclass(frozen=True, slots=True)
class PodListRow:
    """One pod of ``rctl pod ps``: podman's ``pod ps --format json`` entry."""

    id: str
    name: str
    created: float
    status: str
    labels: Mapping[str, str] = field(default_factory=dict)
    network: str = ""
    members: tuple[PodMember, ...] = ()

    def to_docker(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Name": self.name,
            "Created": rfc3339_nano(self.created),
            "Status": self.status,
            "Labels": dict(self.labels),
            "Networks": [self.network] if self.network else [],
            "NumberOfContainers": len(self.members),
            "Containers": [{"Id": m.id, "Names": m.name, "Status": m.state} for m in self.members],
        }
