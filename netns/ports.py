"""A published port: the one value that goes from ``-p`` to pasta, slirp4netns and the relay.

``rootless.containers.ports`` makes it (host port chosen), the container's record and
launch plan store it (as ``[protocol, host ip, host port, container port]`` in JSON), and
the network helpers (:mod:`netns.pasta`, :mod:`netns.slirp4netns`, :mod:`netns.relay`)
take it as it is.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class Protocol(enum.StrEnum):
    TCP = "tcp"
    UDP = "udp"


@dataclass(frozen=True, slots=True)
class PublishedPort:
    """``host_ip:host_port`` (``host_ip`` "" for every address) to the container's port.

    Ports are checked to be TCP/UDP port numbers; a host port of 0 lets bind(2) choose.
    """

    protocol: Protocol
    host_ip: str
    host_port: int
    container_port: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "protocol", Protocol(self.protocol))
        for port in (self.host_port, self.container_port):
            if not isinstance(port, int) or not 0 <= port <= 65535:
                raise ValueError(f"port {port!r} is not within 0-65535")

    def to_json(self) -> list[str | int]:
        return [str(self.protocol), self.host_ip, self.host_port, self.container_port]

    @classmethod
    def from_json(cls, raw: Sequence[str | int]) -> PublishedPort:
        """The value :meth:`to_json` wrote (ValueError when it is not one)."""
        protocol, host_ip, host_port, container_port = raw
        if not isinstance(host_ip, str) or not isinstance(protocol, str):
            raise ValueError(f"not a published port: {raw!r}")
        return cls(Protocol(protocol), host_ip, int(host_port), int(container_port))
