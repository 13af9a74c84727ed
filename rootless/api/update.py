"""``POST /containers/{id}/update`` (``docker update``): memory, memory+swap, CPUs, CPU
shares, the PID limit and the restart policy; a zero or absent field leaves its value.
Other resources (block I/O, cpusets, devices, kernel memory) answer 501."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rootless.api.http import NotServed, Request, Response, json_reply
from rootless.api.routes import Route
from rootless.api.translate import Body
from rootless.models import ContainerUpdate

if TYPE_CHECKING:
    from rootless.api.app import Api

NS = 1_000_000_000
NOT_CHANGED_LIVE = (
    "BlkioWeight", "CpuPeriod", "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetCpus",
    "CpusetMems", "KernelMemory", "KernelMemoryTCP", "MemoryReservation", "CpuCount",
    "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth",
)  # fmt: skip


def change_of(body: Body) -> ContainerUpdate:
    """The body's fields as an update; a field rctl cannot change is a 501 naming it."""
    for key in NOT_CHANGED_LIVE:
        if body.integer(key) if key not in ("CpusetCpus", "CpusetMems") else body.string(key):
            raise NotServed(f"updating {key}")
    nano, quota = body.integer("NanoCpus"), body.integer("CpuQuota")
    cpus = nano / NS if nano else (quota / 100_000 if quota and quota > 0 else None)
    swap = body.integer("MemorySwap")
    pids = body.integer("PidsLimit")
    policy = body.sub("RestartPolicy")
    name = policy.string("Name")
    retries = policy.integer("MaximumRetryCount")
    restart = None
    if name:
        restart = f"{name}:{retries}" if name == "on-failure" and retries else name
    return ContainerUpdate(
        memory=body.integer("Memory") or None,
        memory_swap=(-1 if swap < 0 else swap) if swap else None,
        cpus=cpus,
        cpu_shares=body.integer("CpuShares") or None,
        pids_limit=(-1 if pids < 0 else pids) if pids else None,
        restart=restart,
    )


def update(api: Api, request: Request) -> Response:
    """Apply the body to the container: ``{"Warnings": []}``."""
    change = change_of(Body(request.json(), ""))
    api.engine().containers.update(request.params["id"], change)
    return json_reply({"Warnings": []})


ROUTES = [Route("POST", "/containers/(?P<id>[^/]+)/update", update)]
