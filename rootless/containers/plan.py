"""The launch plan: what a container's unit needs on every start, written at create time.

``bundle/launch.json`` holds it; the launcher (:mod:`rootless.containers.launch`), the
network attachment (:mod:`rootless.containers.netattach`) and the stop hook
(:mod:`rootless.containers.exited`) read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from uidmap.mapping import IDMap, UsernsPlan


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """Everything the unit needs to start the container, written by the engine at create."""

    container_id: str
    uid_maps: tuple[tuple[int, int, int], ...]
    gid_maps: tuple[tuple[int, int, int], ...]
    network: str  # pasta | slirp4netns | none | host (a bridge network: see netattach)
    ports: tuple[tuple[str, str, int, int], ...]  # (protocol, host ip, host port, ctr port)
    pidfile: str
    bundle: str
    runtime: str
    runtime_root: str
    rootfs: dict[str, Any]
    console_socket: str | None = None  # run -t: crun sends the terminal's master here
    hold_console: bool = False  # run -dt: the launcher leaves a holder of the terminal
    tee_output: bool = False  # attached runs (not -t): output to the CLI and the journal
    log_fields: tuple[tuple[str, str], ...] = ()  # journal fields of the container's lines
    network_options: tuple[str, ...] = ()  # pasta's argv / slirp4netns's KEY=VALUE
    host_loopback: bool = False  # pasta: map the gateway address to the host's loopback
    # Bridge networks (network == "bridge"): the store's network state and the rootless
    # namespace's unit (rootless.networks.attach.NetworkPaths).
    network_store: str = ""
    network_state: str = ""
    network_unit: str = ""
    # net.* sysctls the launcher sets in the container's network namespace itself (runc
    # refuses them in the namespace it runs in: rootless.containers.runtime).
    net_sysctls: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> str:
        return json.dumps({k: getattr(self, k) for k in self.__slots__}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> LaunchPlan:
        raw = json.loads(text)
        for key in ("uid_maps", "gid_maps", "ports"):
            raw[key] = tuple(tuple(item) for item in raw[key])
        raw["network_options"] = tuple(raw.get("network_options", ()))
        raw["net_sysctls"] = tuple(tuple(item) for item in raw.get("net_sysctls", ()))
        raw["log_fields"] = tuple(tuple(item) for item in raw.get("log_fields", ()))
        return cls(**raw)

    @property
    def userns(self) -> UsernsPlan:
        return UsernsPlan(
            tuple(IDMap(*m) for m in self.uid_maps), tuple(IDMap(*m) for m in self.gid_maps)
        )
