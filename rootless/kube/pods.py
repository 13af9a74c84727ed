"""Pods between Kubernetes and rctl, pure: a Kubernetes Pod of several containers plays as
an rctl pod (one network, the containers' ``hostPort``s published on the pod), and an rctl
pod generates one Pod whose containers carry the pod's published ports.

A Pod of one container stays a plain container (as before pods existed): a pod would add
a holder unit and nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from rootless.kube.generate import KubeContainer, KubePort
from rootless.kube.podspec import POD_LABEL
from rootless.models import PodCreateOptions, RunOptions


def group_in_pod(
    pod: str, members: Sequence[RunOptions]
) -> tuple[PodCreateOptions | None, list[RunOptions]]:
    """A Pod's containers as an rctl pod and its members (the ports moved to the pod); a
    lone container as it is, with no pod."""
    if len(members) < 2:
        return None, list(members)
    publish = tuple(p for m in members for p in m.publish)
    network = next((m.network for m in members if m.network), None)
    options = PodCreateOptions(name=pod, publish=publish, network=network, labels={POD_LABEL: pod})
    return options, [dataclasses.replace(m, publish=(), network=None, pod=pod) for m in members]


def pod_containers(
    pod: str, members: Sequence[KubeContainer], ports: Sequence[KubePort]
) -> list[KubeContainer]:
    """An rctl pod's members for its Pod: names without the ``POD-`` that ``kube play``
    put before them, and each published port of the pod on the member that exposes its
    container port (else on the first member: the namespace is shared, any will do)."""
    named = [dataclasses.replace(m, name=m.name.removeprefix(f"{pod}-") or m.name) for m in members]
    out = [dataclasses.replace(m, ports=tuple(p for p in m.ports if p.host_port == 0))
           for m in named]  # fmt: skip
    for port in ports:
        owner = next(
            (
                i
                for i, m in enumerate(named)
                if any((p.container_port, p.protocol) == (port.container_port, port.protocol)
                       for p in m.ports)
            ),
            0,
        )  # fmt: skip
        kept = [
            p
            for p in out[owner].ports
            if (p.container_port, p.protocol) != (port.container_port, port.protocol)
        ]
        out[owner] = dataclasses.replace(out[owner], ports=(*kept, port))
    return out
