"""A container's reports (:mod:`rootless.reports.containers`) from what rctl keeps of it.

``rctl create`` records the flags it was made with, docker-style, in the record's
``options`` (:mod:`rootless.containers.recorded`); inspect and ps read them back with the
unit's state, the exit record, ``spec.json`` (restart, stop timeout and signal, limits) and the
healthcheck's files. Pure: the caller reads the files and asks systemd.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netns.ports import PublishedPort
from rootless.containers.ports import parse_exposed
from rootless.containers.record import ContainerRecord
from rootless.containers.recorded import ISOLATION_KEYS
from rootless.containers.runtime import DEFAULT_RUNTIME
from rootless.reports.containers import (
    ContainerConfig,
    ContainerInspect,
    ContainerListRow,
    ContainerState,
    Endpoint,
    HealthcheckConfig,
    HostConfig,
    MountReport,
    PortBinding,
    RctlFields,
)
from rootless.timestamps import ZERO_TIME, rfc3339_from_ns, rfc3339_nano
from rootless.volumes.model import MountPoint

if TYPE_CHECKING:
    from rootless.containers.health import HealthConfig
    from units.state import UnitState

NS_PER_SECOND = 1_000_000_000


@dataclass(frozen=True, slots=True)
class UnitInputs:
    """``spec.json``: restart policy as given, stop timeout and signal, limits."""

    restart: str = "no"
    stop_timeout: int | None = None
    stop_signal: int | None = None
    memory: int | None = None
    memory_swap: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    pids_limit: int | None = None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> UnitInputs:
        limits = raw.get("limits") or {}
        return cls(
            restart=str(raw.get("restart") or "no"),
            stop_timeout=raw.get("stop_timeout"),
            stop_signal=raw.get("stop_signal"),
            **{k: limits.get(k) for k in ("memory", "memory_swap", "cpus", "cpu_shares")},
            # -1 is "unlimited", which docker reports as no limit set (null).
            pids_limit=None if limits.get("pids_limit") == -1 else limits.get("pids_limit"),
        )


@dataclass(frozen=True, slots=True)
class LiveState:
    """What systemd and the stop hook say of the container now (the service asks)."""

    status: str  # created | running | paused | exited
    pid: int = 0
    exit_code: int | None = None
    started: int = 0  # nanoseconds since the epoch, 0 when never started
    finished: float = 0.0  # Unix time, 0 when it never ended
    restarts: int = 0
    oom_killed: bool = False
    health: Mapping[str, Any] | None = None


def live_state(
    state: UnitState | None, ended: tuple[int, float] | None, health: Mapping[str, Any] | None
) -> LiveState:
    """The container's state from its unit (None once systemd forgot it) and its exit
    record (code, time), as docker's ``State`` words it."""
    active = state is not None and state.active_state in ("active", "reloading", "deactivating")
    paused = active and state is not None and state.freezer_state in ("frozen", "freezing")
    restarting = state is not None and state.sub_state == "auto-restart"
    if paused:
        status = "paused"
    elif active:
        status = "running"
    elif restarting:
        status = "restarting"
    elif ended is not None:
        status = "exited"
    else:
        status = "created"
    started = state.exec_main_start_usec or state.active_enter_usec if state else 0
    return LiveState(
        status=status,
        pid=state.main_pid if state is not None and active else 0,
        exit_code=None if ended is None else ended[0],
        started=started * 1000,
        finished=0.0 if ended is None else ended[1],
        restarts=state.n_restarts if state is not None else 0,
        oom_killed=state is not None and state.result == "oom-kill",
        health=health,
    )


def ports_of(record_ports: tuple[PublishedPort, ...]) -> tuple[PortBinding, ...]:
    """The record's published ports as bindings."""
    return tuple(
        PortBinding(f"{p.container_port}/{p.protocol}", p.host_ip, p.host_port)
        for p in record_ports
    )


def mounts_of(points: tuple[MountPoint, ...]) -> tuple[MountReport, ...]:
    return tuple(
        MountReport(
            type=m.type,
            source=m.source,
            destination=m.destination,
            name=m.name,
            driver="local" if m.name else "",
            mode=m.mode,
            rw=not m.read_only,
            propagation=next(
                (o for o in m.options if o.endswith(("private", "shared", "slave"))), "rprivate"
            ),
        )
        for m in points
    )


def _signal_name(number: int | None) -> str:
    if number is None:
        return ""
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _restart(policy: str) -> tuple[str, int]:
    name, _, count = policy.partition(":")
    return (name or "no"), (int(count) if count.isdigit() else 0)


def _tmpfs(entries: list[str]) -> dict[str, str]:
    return {path: opts for path, _, opts in (e.partition(":") for e in entries)}


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, (list, tuple)) else ()


def inspect_report(
    record: ContainerRecord,
    directory: str,
    live: LiveState,
    inputs: UnitInputs,
    healthcheck: HealthConfig | None,
    networks: Mapping[str, Endpoint],
) -> ContainerInspect:
    """``docker inspect`` of ``record``; ``healthcheck`` its configuration, if any."""
    opts: Mapping[str, Any] = record.options
    restart, retries = _restart(inputs.restart)
    command = tuple(record.command)
    entrypoint = _strings(opts.get("Entrypoint"))
    cmd = _strings(opts["Cmd"]) if "Cmd" in opts else command
    check = None
    if healthcheck is not None:
        check = HealthcheckConfig(
            test=tuple(healthcheck.test),
            interval_ns=round(healthcheck.interval * NS_PER_SECOND),
            timeout_ns=round(healthcheck.timeout * NS_PER_SECOND),
            start_period_ns=round(healthcheck.start_period * NS_PER_SECOND),
            retries=healthcheck.retries,
        )
    ports = ports_of(record.ports)
    running = live.status in ("running", "paused")
    return ContainerInspect(
        id=record.id,
        name=record.name,
        created=rfc3339_nano(record.created),
        image_id=record.image_id,
        path=command[0] if command else "",
        args=command[1:],
        state=ContainerState(
            status=live.status,
            running=running,
            paused=live.status == "paused",
            oom_killed=live.oom_killed,
            pid=live.pid if running else 0,
            exit_code=live.exit_code or 0,
            started_at=_ns_time(live.started),
            finished_at=rfc3339_nano(live.finished),
            health=live.health,
        ),
        config=ContainerConfig(
            image=record.image_name,
            hostname=str(opts.get("Hostname") or record.id[:12]),
            user=str(opts.get("User", "")),
            env=_strings(opts.get("Env", ())),
            cmd=cmd or None,
            entrypoint=entrypoint or None,
            working_dir=str(opts.get("WorkingDir", "")),
            labels=dict(record.labels),
            exposed_ports=tuple(
                f"{c}/{p}" for p, c in parse_exposed(opts.get("ExposedPorts") or ())
            ),
            volumes=_strings(opts.get("Volumes", ())),
            stop_signal=_signal_name(inputs.stop_signal),
            stop_timeout=inputs.stop_timeout,
            healthcheck=check,
            tty=bool(opts.get("Tty")),
            open_stdin=bool(opts.get("OpenStdin")),
            attached=bool(opts.get("Attached")),
        ),
        host_config=HostConfig(
            network_mode=str(opts.get("NetworkMode", "")),
            runtime=str(opts.get("Runtime", DEFAULT_RUNTIME)),
            binds=tuple(
                f"{m.source}:{m.destination}" + (f":{m.mode}" if m.mode else "")
                for m in record.mounts
                if m.type == "bind"
            ),
            port_bindings=ports,
            restart_policy=restart,
            restart_retries=retries,
            auto_remove=record.auto_remove,
            memory=inputs.memory or 0,
            memory_swap=inputs.memory_swap or 0,
            nano_cpus=round((inputs.cpus or 0) * NS_PER_SECOND),
            cpu_shares=inputs.cpu_shares or 0,
            pids_limit=inputs.pids_limit,
            cap_add=_strings(opts.get("CapAdd", ())),
            cap_drop=_strings(opts.get("CapDrop", ())),
            readonly_rootfs=bool(opts.get("ReadonlyRootfs")),
            init=bool(opts["Init"]) if "Init" in opts else None,
            dns=_strings(opts.get("Dns", ())),
            dns_search=_strings(opts.get("DnsSearch", ())),
            dns_options=_strings(opts.get("DnsOptions", ())),
            extra_hosts=_strings(opts.get("ExtraHosts", ())),
            security_opt=_strings(opts.get("SecurityOpt", ())),
            tmpfs=_tmpfs(list(_strings(opts.get("Tmpfs", ())))),
            userns_mode=str(opts.get("UsernsMode", "")),
            publish_all=bool(opts.get("PublishAllPorts")),
            privileged=bool(opts.get("Privileged")),
            isolation={k: opts[k] for k in ISOLATION_KEYS if k in opts},
        ),
        driver=record.driver,
        rctl=RctlFields(
            unit=record.unit,
            log_tag=record.log_tag or record.name,
            image_name=record.image_name,
            secrets=tuple(str(s) for s in record.options.get("Secrets", ())),
        ),
        ports=ports,
        networks=dict(networks),
        mounts=mounts_of(record.mounts),
        restart_count=live.restarts,
        directory=directory,
    )


def _ns_time(nanoseconds: int) -> str:
    return rfc3339_from_ns(nanoseconds) if nanoseconds > 0 else ZERO_TIME


def list_row(
    record: ContainerRecord,
    *,
    state: str,
    status: str,
    exit_code: int | None,
    networks: Mapping[str, Endpoint],
    pod_name: str = "",
) -> ContainerListRow:
    """``docker ps``'s row of ``record`` (``pod_name``: its pod's, if it is a member)."""
    return ContainerListRow(
        id=record.id,
        name=record.name,
        image=record.image_name,
        image_id=record.image_id,
        command=" ".join(record.command),
        created=record.created,
        state=state,
        status=status,
        exit_code=exit_code,
        ports=ports_of(record.ports),
        labels=dict(record.labels),
        mounts=mounts_of(record.mounts),
        network_mode=str(record.options.get("NetworkMode", "")),
        networks=dict(networks),
        pod=record.pod,
        pod_name=pod_name,
    )
