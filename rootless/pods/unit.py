"""A pod's unit: ``rctl-pod-ID.service``, ``Type=forking`` around the holder
(:mod:`rootless.pods.holder`), started before any member's unit, which is bound to it."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from rctlbase.errors import NotFoundError
from rootless.pods.holder import PID_FILE
from rootless.pods.record import PodRecord, PodStore
from units.manager import UserManager
from units.properties import CollectMode, ServiceSpec, ServiceType

ACTIVE = ("active", "activating", "reloading")


def pod_store(data: Path, runtime: Path) -> PodStore:
    """The pods of the store at ``data`` (``$XDG_DATA_HOME/rctl``)."""
    return PodStore(data / "pods", runtime / "pods")


def pod_service(store: PodStore, record: PodRecord) -> ServiceSpec:
    """The pod's transient unit."""
    state = store.state(record.id)
    return ServiceSpec(
        name=record.unit,
        description=f"rctl pod {record.name}",
        exec_start=(
            sys.executable,
            "-I",
            "-m",
            "rootless.pods.holder",
            str(store.dir(record.id)),
            str(state),
        ),
        service_type=ServiceType.FORKING,
        pid_file=str(state / PID_FILE),
        collect_mode=CollectMode.INACTIVE_OR_FAILED,
        timeout_stop_usec=10_000_000,
    )


def start_pod_unit(manager: UserManager, store: PodStore, record: PodRecord) -> None:
    """Start the pod's unit unless it runs; returns once the holder is set up."""
    state = manager.unit_state(record.unit)
    if state is not None and state.active_state in ACTIVE:
        return
    if record.unit_name:  # a definition's generated unit
        manager.start(record.unit)
        return
    if state is not None:
        with contextlib.suppress(NotFoundError):
            manager.reset_failed(record.unit)
    manager.start_transient(pod_service(store, record), wait=True)


def start_pod(manager: UserManager, data: Path, runtime: Path, pod_id: str) -> str:
    """A member's start: its pod's unit running; that unit's name."""
    store = pod_store(data, runtime)
    record = store.get(pod_id)
    start_pod_unit(manager, store, record)
    return record.unit
