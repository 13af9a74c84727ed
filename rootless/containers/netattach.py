"""Connecting a new container's network namespace to its network, before the container runs.

Called by the launcher (:mod:`rootless.containers.launch`) once the namespaces exist and are
mapped, with the pid of a process inside them. Whatever starts here (pasta, slirp4netns)
runs in the container's unit, so it ends with it: pasta daemonizes, slirp4netns is started
in a session of its own (see :mod:`netns.slirp4netns`); both stay in the unit's cgroup,
which systemd kills whole when the unit stops (also after ``kill -9`` of the container).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from rctlbase import syscalls
from rctlbase.errors import HostError
from rootless.containers.plan import LaunchPlan

# The network modules are imported where they are used: this module is imported by every
# container's launcher, whose start-up time is the container's, and most containers need
# one driver and no published port.
if TYPE_CHECKING:
    from netns.ports import PublishedPort
    from netns.slirp4netns import SlirpOptions
    from rootless.networks.attach import NetworkPaths


def attach_network(plan: LaunchPlan, pid: int, ready_fd: int = -1) -> None:
    """Give ``pid``'s network namespace the network ``plan`` names (none/host: nothing).

    slirp4netns is only started here: it says it is ready on ``ready_fd``, the write end of
    a pipe whose read end the launcher gives :func:`finish_network` once ``crun create``
    is done (about 10 ms of slirp4netns's start overlap crun's)."""
    if plan.network == "pasta":
        attach_pasta(plan, pid)
    elif plan.network == "slirp4netns":
        attach_slirp4netns(plan, pid, ready_fd)
    elif plan.network == "bridge":
        from rootless.networks.attach import attach  # noqa: PLC0415 - bridged containers only

        ports = driver_ports(plan)
        attach(bridge_paths(plan), Path(plan.bundle).parent, plan.container_id, pid, ports)


def relayed(plan: LaunchPlan) -> list[PublishedPort]:
    """The published ports rctl's relay serves instead of the driver (:mod:`netns.relay`
    says why): with slirp4netns every UDP port, and the TCP ports unless
    ``port_handler=slirp4netns``; with bridge networks every UDP port; with pasta the UDP
    ports whose host port is above the container port."""
    if not plan.ports or plan.network not in ("pasta", "slirp4netns", "bridge"):
        return []
    udp = [p for p in plan.ports if p.protocol == "udp"]
    if plan.network == "pasta":
        return [p for p in udp if p.host_port > p.container_port]
    if plan.slirp is not None and plan.slirp.port_handler == "rctl":
        return list(plan.ports)
    return udp


def driver_ports(plan: LaunchPlan) -> list[PublishedPort]:
    """The plan's published ports the network driver forwards (not rctl's relay)."""
    served = set(relayed(plan))
    return [p for p in plan.ports if p not in served]


def attach_pasta(plan: LaunchPlan, pid: int) -> None:
    """pasta with the published ports; DNS sent to 169.254.1.1 goes to the host's resolver."""
    from netns.pasta import start_pasta  # noqa: PLC0415
    from rootless.containers.netmode import PASTA_DNS_FORWARD  # noqa: PLC0415

    extra = ("--dns-forward", PASTA_DNS_FORWARD, *plan.network_options)
    start_pasta(pid, driver_ports(plan), extra=extra, map_host_loopback=plan.host_loopback)


def slirp_options(plan: LaunchPlan) -> SlirpOptions:
    """The slirp4netns options of a slirp4netns container's plan."""
    if plan.slirp is None:
        raise HostError(
            "the container's launch plan has no slirp4netns options",
            hint="remove the container and create it again",
        )
    return plan.slirp


def slirp4netns_socket(plan: LaunchPlan) -> Path:
    """The API socket's path: in the runtime directory, short enough for sun_path."""
    return Path(plan.runtime_root).parent / f"slirp4netns-{plan.container_id[:16]}.sock"


def attach_slirp4netns(plan: LaunchPlan, pid: int, ready_fd: int) -> None:
    """Start slirp4netns (from outside the namespaces, in the unit), not waiting for it;
    sandboxed when it can be (:func:`netns.slirp4netns.sandbox_flags`)."""
    from netns.slirp4netns import sandbox_flags, spawn_slirp4netns  # noqa: PLC0415

    spawn_slirp4netns(
        pid,
        slirp_options(plan),
        api_socket=str(slirp4netns_socket(plan)),
        log_file=slirp4netns_log(plan),
        ready_fd=ready_fd,
        sandbox=sandbox_flags(Path(plan.runtime_root).parent),
    )


def finish_network(plan: LaunchPlan, ready_fd: int) -> None:
    """In the launcher, before the container runs: wait for slirp4netns to be ready, then
    publish the ports it forwards (``port_handler=slirp4netns``) through its API socket,
    which is removed once they are (nothing else talks to it). A failure ends the
    launcher, and the unit with it: systemd then stops slirp4netns and the created
    container, which both live in the unit's cgroup."""
    if plan.network != "slirp4netns":
        return
    from netns.slirp4netns import finish_slirp4netns  # noqa: PLC0415

    socket_path = slirp4netns_socket(plan)
    finish_slirp4netns(
        ready_fd,
        slirp_options(plan),
        driver_ports(plan),
        api_socket=str(socket_path),
        log_file=slirp4netns_log(plan),
    )
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)


def slirp4netns_log(plan: LaunchPlan) -> str:
    """slirp4netns's output, in the bundle."""
    return str(Path(plan.bundle) / "slirp4netns.log")


def load_driver(plan: LaunchPlan) -> None:
    """Import what the network driver's start needs, in the launcher, before it forks the
    helper that starts the driver: the helper then finds it imported, and the launcher,
    which waits for the driver later (:func:`finish_network`), imports it once, not the
    helper and then the launcher each (some 5 ms on every container start)."""
    if plan.network == "slirp4netns":
        import netns.slirp4netns  # noqa: F401, PLC0415
        import rootless.containers.netmode  # noqa: F401, PLC0415


def prepare_network(plan: LaunchPlan) -> None:
    """In the container's new network namespace, before the helper attaches: slirp4netns
    gets a persistent tap device, so that its exit does not wait for the device's
    unregistration (:mod:`netns.tap` says why and what it saves). Without it (no
    /dev/net/tun here), slirp4netns makes its own device or reports why it can't."""
    if plan.network != "slirp4netns":
        return
    from netns.slirp4netns import TAP  # noqa: PLC0415
    from netns.tap import make_persistent_tap  # noqa: PLC0415

    with contextlib.suppress(OSError):
        make_persistent_tap(TAP)


def userns_to_join(plan: LaunchPlan) -> str | None:
    """The user namespace the container must join instead of making its own, or None.

    Bridge networks: every container on them shares the user namespace of the per-user
    network namespace (``/proc/PID/ns/user`` of its holder), so that veth pairs can be
    moved between the two network namespaces. Called by the launcher before the
    container's namespaces are made.
    """
    if plan.network != "bridge":
        return None
    from rootless.networks.attach import reserve  # noqa: PLC0415 - bridged containers only

    return reserve(bridge_paths(plan), Path(plan.bundle).parent, plan.container_id)


def pod_namespaces(plan: LaunchPlan) -> tuple[str | None, tuple[tuple[str, int], ...]]:
    """A pod member's namespaces: the pod holder's user namespace to join and its network
    (and shared IPC, UTS) namespaces, read from the holder's state; (None, ()) otherwise.
    The member's unit is bound to and ordered after the pod's, so the holder runs."""
    if plan.network != "pod":
        return None, ()
    from rootless.pods.holder import holder_pid  # noqa: PLC0415 - pod members only

    pid = holder_pid(Path(plan.pod_state))
    kinds = {"net": syscalls.CLONE_NEWNET, "ipc": syscalls.CLONE_NEWIPC}
    kinds["uts"] = syscalls.CLONE_NEWUTS
    more = tuple((f"/proc/{pid}/ns/{k}", kinds[k]) for k in plan.pod_share if k in kinds)
    return f"/proc/{pid}/ns/user", more


def hand_over_network(plan: LaunchPlan, pid: int) -> None:
    """The container's first process ``pid`` (created, not started yet) replaces the
    launcher as the holder of the network namespace: bridge leases are keyed on it."""
    if plan.network != "bridge":
        return
    from rootless.networks.attach import hand_over  # noqa: PLC0415 - bridged containers only

    hand_over(bridge_paths(plan), plan.container_id, pid)


def detach_network(plan: LaunchPlan) -> None:
    """After the container stopped (its unit's ``ExecStopPost=``): leave its bridge
    networks, stopping the rootless network namespace when it was the last one there."""
    if plan.network != "bridge":
        return
    from rootless.networks.attach import detach  # noqa: PLC0415 - bridged containers only

    detach(bridge_paths(plan), plan.container_id)


def bridge_paths(plan: LaunchPlan) -> NetworkPaths:
    """Where the plan's store keeps its bridge networks' state."""
    from rootless.networks.attach import NetworkPaths  # noqa: PLC0415

    return NetworkPaths(Path(plan.network_store), Path(plan.network_state), plan.network_unit)
