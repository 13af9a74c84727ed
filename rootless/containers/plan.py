"""The launch plan: what a container's unit needs on every start, written at create time.

``bundle/launch.json`` holds it; the launcher (:mod:`rootless.containers.launch`), the
network attachment (:mod:`rootless.containers.netattach`) and the stop hook
(:mod:`rootless.containers.exited`) read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netns.ports import PublishedPort
from uidmap.mapping import IDMap, UsernsPlan

if TYPE_CHECKING:
    from netns.slirp4netns import SlirpOptions


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """Everything the unit needs to start the container, written by the engine at create."""

    container_id: str
    uid_maps: tuple[tuple[int, int, int], ...]
    gid_maps: tuple[tuple[int, int, int], ...]
    network: str  # pasta | slirp4netns | none | host | pod (a bridge network: see netattach)
    ports: tuple[PublishedPort, ...]
    pidfile: str
    bundle: str
    runtime: str
    runtime_root: str
    rootfs: dict[str, Any]
    console_socket: str | None = None  # run -t: crun sends the terminal's master here
    hold_console: bool = False  # run -dt: the launcher leaves a holder of the terminal
    tee_output: bool = False  # attached runs (not -t): output to the CLI and the journal
    log_fields: tuple[tuple[str, str], ...] = ()  # journal fields of the container's lines
    network_options: tuple[str, ...] = ()  # pasta's argv
    slirp: SlirpOptions | None = None  # slirp4netns's options, read when the container was made
    host_loopback: bool = False  # pasta: map the gateway address to the host's loopback
    # Bridge networks (network == "bridge"): the store's network state and the rootless
    # namespace's unit (rootless.networks.attach.NetworkPaths).
    network_store: str = ""
    network_state: str = ""
    network_unit: str = ""
    # net.* sysctls the launcher sets in the container's network namespace itself (runc
    # refuses them in the namespace it runs in: rootless.containers.runtime).
    net_sysctls: tuple[tuple[str, str], ...] = ()
    # A pod's member (network == "pod"): the holder's runtime directory (holder.json) and
    # the namespaces joined there (net, ipc, uts) instead of made.
    pod_state: str = ""
    pod_share: tuple[str, ...] = ()

    def to_json(self) -> str:
        raw = {k: getattr(self, k) for k in self.__slots__}
        raw["ports"] = [p.to_json() for p in self.ports]
        if self.slirp is not None:
            raw["slirp"] = {k: getattr(self.slirp, k) for k in self.slirp.__slots__}
        return json.dumps(raw, indent=1)

    @classmethod
    def from_json(cls, text: str) -> LaunchPlan:
        raw = json.loads(text)
        for key in ("uid_maps", "gid_maps"):
            raw[key] = tuple(tuple(item) for item in raw[key])
        raw["ports"] = tuple(PublishedPort.from_json(p) for p in raw["ports"])
        raw["network_options"] = tuple(raw.get("network_options", ()))
        if raw.get("slirp") is not None:
            # slirp4netns's module only for its containers: the launcher's start-up time.
            from netns.slirp4netns import SlirpOptions  # noqa: PLC0415

            raw["slirp"] = SlirpOptions(**raw["slirp"])
        elif raw.get("network") == "slirp4netns":
            # A plan written before the options were kept read: read them now.
            from rootless.containers.netmode import parse_slirp_options  # noqa: PLC0415

            raw["slirp"] = parse_slirp_options(raw["network_options"])
            raw["network_options"] = ()
        raw["net_sysctls"] = tuple(tuple(item) for item in raw.get("net_sysctls", ()))
        raw["log_fields"] = tuple(tuple(item) for item in raw.get("log_fields", ()))
        raw["pod_share"] = tuple(raw.get("pod_share", ()))
        return cls(**raw)

    @property
    def userns(self) -> UsernsPlan:
        return UsernsPlan(
            tuple(IDMap(*m) for m in self.uid_maps), tuple(IDMap(*m) for m in self.gid_maps)
        )
