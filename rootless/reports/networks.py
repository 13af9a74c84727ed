"""Network reports: ``docker network inspect``'s document, which is also ``GET
/networks``' entry (Engine API v1.44, ``Network``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rootless.timestamps import rfc3339_nano


@dataclass(frozen=True, slots=True)
class NetworkMember:
    """A container on the network (``Containers[ID]``); ``address`` is CIDR text
    (``10.89.0.2/24``), "" while it is not attached."""

    container_id: str
    name: str
    address: str = ""
    mac_address: str = ""

    def to_docker(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "EndpointID": "",
            "MacAddress": self.mac_address,
            "IPv4Address": self.address,
            "IPv6Address": "",
        }


@dataclass(frozen=True, slots=True)
class NetworkReport:
    """A network: a bridge network rctl made, or one of the built-in ones (bridge, host,
    none and the user-mode modes pasta and slirp4netns). ``created`` is a Unix time, 0 for
    the built-in modes; ``interface`` (rctl's, under ``Rctl``) the bridge's device."""

    name: str
    id: str
    driver: str
    created: float = 0.0
    subnet: str = ""
    gateway: str = ""
    internal: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    containers: tuple[NetworkMember, ...] = ()
    interface: str = ""

    def to_docker(self) -> dict[str, Any]:
        config = [{"Subnet": self.subnet, "Gateway": self.gateway}] if self.subnet else []
        return {
            "Name": self.name,
            "Id": self.id,
            "Created": rfc3339_nano(self.created),
            "Scope": "local",
            "Driver": self.driver,
            "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None, "Config": config},
            "Internal": self.internal,
            "Attachable": False,
            "Ingress": False,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Containers": {m.container_id: m.to_docker() for m in self.containers},
            "Options": {},
            "Labels": dict(self.labels),
            "Rctl": {"Interface": self.interface},
        }
