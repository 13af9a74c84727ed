"""Connecting a new container's network namespace to its network, before the container runs.

Called by the launcher (:mod:`rootless.containers.launch`) once the namespaces exist and are
mapped, with the pid of a process inside them. Whatever starts here (pasta, slirp4netns)
runs in the container's unit, so it ends with it.
"""

from __future__ import annotations

from netns.pasta import PortMapping, Protocol, start_pasta
from rootless.containers.plan import LaunchPlan


def attach_network(plan: LaunchPlan, pid: int) -> None:
    """Give ``pid``'s network namespace the network ``plan`` names (none/host: nothing)."""
    if plan.network == "pasta":
        ports = [PortMapping(h, c, Protocol(p), ip) for p, ip, h, c in plan.ports]
        start_pasta(pid, ports)


def userns_to_join(plan: LaunchPlan) -> str | None:
    """The user namespace the container must join instead of making its own, or None.

    Bridge networks: every container on them shares the user namespace of the per-user
    network namespace (``/proc/PID/ns/user`` of its holder), so that veth pairs can be
    moved between the two network namespaces. Called by the launcher before the
    container's namespaces are made.
    """
    del plan
    return None
