"""``update``: a container's limits and restart policy changed after its creation.

The new values are checked as ``run`` checks them and saved with the unit's other inputs,
so every later start uses them; a running container's unit gets the limits at once through
systemd's ``SetUnitProperties`` (its cgroup changes live, as docker's ``update`` does). The
restart policy is a setting of the unit systemd does not change at runtime: it takes
effect at the container's next start.
"""

from __future__ import annotations

import dataclasses

from rootless.containers.context import ContainerContext
from rootless.containers.record import ContainerRecord
from rootless.containers.spec import Limits, parse_restart
from rootless.containers.unitspec import UnitSettings, container_service
from rootless.models import ContainerUpdate
from units.properties import KillMode, plan_properties

# The unit's properties that follow the limits and that systemd changes at runtime.
LIVE = ("MemoryMax", "MemorySwapMax", "CPUQuotaPerSecUSec", "CPUWeight", "TasksMax")


def update_container(ctx: ContainerContext, ref: str, change: ContainerUpdate) -> ContainerRecord:
    """Apply ``change`` to the container ``ref``: saved, and live when it runs."""
    record = ctx.store.get(ref)
    raw = ctx.store.load_unit_inputs(record.id)
    given = {
        "memory": change.memory,
        "memory_swap": change.memory_swap,
        "cpus": change.cpus,
        "cpu_shares": change.cpu_shares,
        "pids_limit": change.pids_limit,
    }
    merged = {**raw["limits"], **{k: v for k, v in given.items() if v is not None}}
    if change.cpus is not None:  # --cpus replaces a --cpu-quota given before
        merged.update(cpu_quota=None, cpu_period=None)
    limits = Limits(**merged)  # checked as run checks them
    restart = change.restart if change.restart is not None else raw["restart"]
    policy = parse_restart(restart)
    raw = {**raw, "restart": restart, "limits": dataclasses.asdict(limits)}
    state = ctx.manager.unit_state(record.unit)
    if state is not None and state.active_state in ("active", "activating", "reloading"):
        settings = UnitSettings(policy, raw["stop_timeout"], raw["stop_signal"], limits)
        spec = container_service(
            settings, name=record.unit, description="", exec_start=("true",),
            exec_stop_post=(), kill_mode=KillMode.MIXED, syslog_identifier=record.name,
        )  # fmt: skip
        live = [prop for prop in plan_properties(spec) if prop[0] in LIVE]
        if live:
            ctx.manager.set_properties(record.unit, live)
    ctx.store.save_unit_inputs(record.id, raw)
    ctx.event(record, "update")
    return record
