"""From ``rctl run``'s options to the container's spec and its systemd unit (pure).

:func:`plan_spec` validates docker-style options into a :class:`ContainerSpec` (every error
names its flag); :func:`plan_unit_settings` is the part of them the unit needs on every
(re)start (restart policy, stop timeout and signal, limits). :func:`container_service` is
the one translation of those into systemd settings, for the transient unit
(:func:`service_spec`: the launcher as ``Type=notify`` main process that hands over to the
container's first process, the stop hooks) and for a definition's generated unit file
(``rootless.definitions.translate.render_unit``, through ``units.unitrender``).
:func:`find_init` locates the host's static init for ``--init``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rctlbase.errors import (
    UsageError,
)
from rootless.containers.isolation import (
    Isolation,
    cpuset_mask,
    ignored_security_opt,
    parse_blkio_weight,
    parse_cpu_period,
    parse_cpu_quota,
    parse_cpuset,
    parse_device,
    parse_group_add,
    parse_log_driver,
    parse_mac_address,
    parse_namespace_mode,
    parse_oom_score_adj,
    parse_sysctl,
    parse_ulimit,
)
from rootless.containers.record import (
    ContainerRecord,
)
from rootless.containers.seccomp import SeccompPolicy
from rootless.containers.spec import (
    BindMount,
    ContainerSpec,
    Limits,
    RestartPolicyName,
    TmpfsMount,
    parse_capability,
    parse_cpus,
    parse_entrypoint,
    parse_env,
    parse_env_file,
    parse_label,
    parse_memory,
    parse_memory_swap,
    parse_pids_limit,
    parse_restart,
    parse_signal,
    parse_tmpfs,
    parse_user,
    parse_userns,
)
from rootless.containers.spec import RestartPolicy as DockerRestart
from rootless.models import RunOptions
from units.properties import (
    INFINITY,
    CollectMode,
    ExecCommand,
    KillMode,
    RestartPolicy,
    ServiceSpec,
    ServiceType,
    StartLimit,
)

USEC = 1_000_000
CPU_PERIOD = 100_000  # µs, the kernel's default period for --cpu-quota
DEFAULT_STOP_TIMEOUT = 10  # seconds, docker's default for --stop-timeout
RESTART_DELAY_USEC = 100_000
# docker's restart policies as systemd's: unless-stopped is always, since a stopped unit
# stays stopped until started (the difference is docker's daemon restart).
_RESTART = {
    RestartPolicyName.NO: RestartPolicy.NO,
    RestartPolicyName.ON_FAILURE: RestartPolicy.ON_FAILURE,
    RestartPolicyName.ALWAYS: RestartPolicy.ALWAYS,
    RestartPolicyName.UNLESS_STOPPED: RestartPolicy.ALWAYS,
}


@dataclass(frozen=True, slots=True)
class UnitSettings:
    """What a container's unit needs on every (re)start, independent of the image.

    ``stop_signal`` None leaves ``KillSignal=`` to systemd (SIGTERM).
    """

    restart: DockerRestart = field(default_factory=DockerRestart)
    stop_timeout: int = DEFAULT_STOP_TIMEOUT
    stop_signal: int | None = None
    limits: Limits = field(default_factory=Limits)


def plan_limits(options: RunOptions) -> Limits:
    """The resource limit flags of ``options``, parsed (each error names its flag)."""
    return Limits(
        memory=parse_memory(options.memory) if options.memory else None,
        memory_swap=parse_memory_swap(options.memory_swap) if options.memory_swap else None,
        cpus=parse_cpus(options.cpus) if options.cpus else None,
        cpu_shares=options.cpu_shares,
        pids_limit=parse_pids_limit(options.pids_limit) if options.pids_limit else None,
        memory_reservation=parse_memory(options.memory_reservation, flag="--memory-reservation")
        if options.memory_reservation
        else None,
        cpuset_cpus=parse_cpuset(options.cpuset_cpus) if options.cpuset_cpus else None,
        cpu_quota=parse_cpu_quota(options.cpu_quota) or None if options.cpu_quota else None,
        cpu_period=parse_cpu_period(options.cpu_period) or None if options.cpu_period else None,
        blkio_weight=parse_blkio_weight(options.blkio_weight) or None
        if options.blkio_weight
        else None,
    )


def _quota_per_sec(limits: Limits) -> int | None:
    """``CPUQuotaPerSecUSec=``: ``--cpus N`` is N seconds per second, ``--cpu-quota`` that
    many µs per ``--cpu-period`` (default 100 ms)."""
    if limits.cpus:
        return int(limits.cpus * USEC)
    if limits.cpu_quota:
        return limits.cpu_quota * USEC // (limits.cpu_period or CPU_PERIOD)
    return None


def plan_unit_settings(options: RunOptions) -> UnitSettings:
    """The unit's part of ``options``: restart policy, stop timeout and signal, limits."""
    return UnitSettings(
        restart=parse_restart(options.restart),
        stop_timeout=(
            options.stop_timeout if options.stop_timeout is not None else DEFAULT_STOP_TIMEOUT
        ),
        stop_signal=parse_signal(options.stop_signal) if options.stop_signal else None,
        limits=plan_limits(options),
    )


def cpu_weight(shares: int) -> int:
    """``CPUWeight=`` of docker's ``--cpu-shares``: 1024 shares are the default weight 100."""
    return max(1, min(10000, shares * 100 // 1024))


def container_service(
    inputs: UnitSettings,
    *,
    name: str,
    description: str,
    exec_start: tuple[str, ...],
    exec_stop_post: tuple[ExecCommand, ...],
    kill_mode: KillMode,
    syslog_identifier: str,
    stop_grace_usec: int = 0,
) -> ServiceSpec:
    """A container's unit: its commands and the systemd settings of ``inputs``.

    This is the only place where docker's restart policy, stop timeout and resource limits
    become systemd settings, for transient units and generated unit files alike. The unit
    is ``Type=notify``: its main process says ``MAINPID=`` (the container's first process)
    and ``READY=1``. ``stop_grace_usec`` is added to the stop timeout.
    """
    restart = _RESTART[inputs.restart.name]
    start_limit = None
    if restart is not RestartPolicy.NO:
        retries = inputs.restart.max_retries
        start_limit = StartLimit.max_restarts(retries) if retries else StartLimit.unlimited()
    limits = inputs.limits
    swap_max = None
    if limits.memory_swap == -1:
        swap_max = INFINITY
    elif limits.memory_swap is not None and limits.memory is not None:
        swap_max = limits.memory_swap - limits.memory  # docker's is memory plus swap
    pids = limits.pids_limit
    return ServiceSpec(
        name=name,
        description=description,
        exec_start=exec_start,
        service_type=ServiceType.NOTIFY,
        notify_access="main",
        exec_stop_post=exec_stop_post,
        restart=restart,
        restart_usec=RESTART_DELAY_USEC if restart is not RestartPolicy.NO else None,
        start_limit=start_limit,
        timeout_stop_usec=inputs.stop_timeout * USEC + stop_grace_usec,
        kill_mode=kill_mode,
        kill_signal=inputs.stop_signal,
        delegate=True,
        memory_max=limits.memory,
        memory_swap_max=swap_max,
        cpu_quota_per_sec_usec=_quota_per_sec(limits),
        cpu_weight=cpu_weight(limits.cpu_shares) if limits.cpu_shares else None,
        # docker's -1 (or 0) is "unlimited": systemd's default (DefaultTasksMax=) is not.
        tasks_max=INFINITY if pids == -1 else pids,
        syslog_identifier=syslog_identifier,
        memory_low=limits.memory_reservation,
        io_weight=limits.blkio_weight,
        allowed_cpus=cpuset_mask(limits.cpuset_cpus) if limits.cpuset_cpus else None,
        cpu_quota_period_usec=limits.cpu_period,
    )


def plan_spec(
    options: RunOptions,
    name: str,
    image_ref: str,
    image_id: str,
    image: Any,
    environ: dict[str, str],
    *,
    mounts: tuple[BindMount, ...] = (),
    extra_tmpfs: tuple[TmpfsMount, ...] = (),
) -> ContainerSpec:
    """Validate docker-style options into a spec (every error names its flag).

    ``mounts`` are the container's binds and volumes, resolved by the volume service;
    ``extra_tmpfs`` the tmpfs mounts ``--mount type=tmpfs`` asked for.
    """
    env: list[str] = []
    for path in options.env_files:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise UsageError(
                f"--env-file {path}: {exc.strerror}", hint="give a readable file"
            ) from exc
        env += parse_env_file(text, environ, source=f"--env-file {path}")
    env += [e for e in (parse_env(value, environ) for value in options.env) if e is not None]
    if options.tty and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")  # docker sets it for -t
    unit = plan_unit_settings(options)
    no_new_privileges = False
    masked_paths = True
    seccomp = SeccompPolicy()
    for opt in options.security_opt:
        if opt in ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"):
            no_new_privileges = True
        elif opt.startswith("seccomp="):
            seccomp = SeccompPolicy.from_option(opt.removeprefix("seccomp="), read_profile)
        elif opt in ("systempaths=unconfined", "systempaths:unconfined"):
            masked_paths = False
        elif not ignored_security_opt(opt):
            raise UsageError(
                f"--security-opt {opt!r} is not supported",
                hint="use no-new-privileges, seccomp=unconfined|PATH, systempaths=unconfined "
                "(label= and apparmor= are accepted and have no effect)",
            )
    if options.mac_address:
        parse_mac_address(options.mac_address)
    if options.privileged:
        # podman's rootless --privileged: every capability, no seccomp filter.
        seccomp = SeccompPolicy.from_option("unconfined", read_profile)
        masked_paths = False
    isolation = Isolation(
        ulimits=tuple(parse_ulimit(u) for u in options.ulimit),
        sysctls=tuple(
            parse_sysctl(s, host_network=options.network == "host") for s in options.sysctl
        ),
        devices=tuple(parse_device(d) for d in options.device),
        shm_size=_shm_size(options.shm_size),
        privileged=options.privileged,
        ipc=parse_namespace_mode("--ipc", options.ipc or ""),
        pid=parse_namespace_mode("--pid", options.pid or ""),
        uts=parse_namespace_mode("--uts", options.uts or ""),
        cgroupns=parse_namespace_mode("--cgroupns", options.cgroupns or ""),
        group_add=tuple(parse_group_add(g) for g in options.group_add),
        oom_score_adj=parse_oom_score_adj(options.oom_score_adj)
        if options.oom_score_adj is not None
        else None,
        log_driver=parse_log_driver(options.log_driver) if options.log_driver else "journald",
        masked_paths=masked_paths,
    )
    return ContainerSpec(
        name=name,
        image_ref=image_ref,
        image_id=image_id,
        image=image,
        command=options.command,
        entrypoint=parse_entrypoint(options.entrypoint) if options.entrypoint is not None else None,
        env=tuple(env),
        workdir=options.workdir,
        user=parse_user(options.user) if options.user else None,
        hostname=options.hostname,
        labels=dict(parse_label(label) for label in options.labels),
        read_only=options.read_only,
        tmpfs=tuple(parse_tmpfs(t) for t in options.tmpfs) + extra_tmpfs,
        mounts=mounts,
        cap_add=("ALL",) * options.privileged + tuple(parse_capability(c) for c in options.cap_add),
        cap_drop=tuple(parse_capability(c, flag="--cap-drop") for c in options.cap_drop),
        no_new_privileges=no_new_privileges,
        seccomp=seccomp,
        init=options.init,
        userns=parse_userns(options.userns) if options.userns else parse_userns(""),
        tty=options.tty,
        stdin_open=options.interactive,
        limits=unit.limits,
        restart=unit.restart,
        stop_signal=unit.stop_signal,
        stop_timeout=unit.stop_timeout,
        network=options.network or "",
        isolation=isolation,
    )


def _shm_size(value: str | None) -> int | None:
    if not value:
        return None
    size = parse_memory(value, flag="--shm-size")
    if size <= 0:
        raise UsageError(f"invalid --shm-size {value!r}: must be above 0", hint="e.g. 256m")
    return size


def read_profile(path: str) -> str:
    """The text of ``--security-opt seccomp=PATH``'s file (checked by SeccompPolicy)."""
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not text"
        raise UsageError(
            f"--security-opt seccomp={path}: {why}",
            hint="give a readable JSON seccomp profile, or seccomp=unconfined",
        ) from exc


def service_spec(
    record: ContainerRecord,
    spec: ContainerSpec,
    launch_json: Path,
    *,
    stdio: tuple[int, int, int] | None,
) -> ServiceSpec:
    """The container's transient unit: the launcher as main process, becoming crun."""
    py = [sys.executable, "-I", "-m"]
    inputs = UnitSettings(
        restart=spec.restart,
        stop_timeout=spec.stop_timeout,
        stop_signal=spec.kill_signal,
        limits=spec.limits,
    )
    unit = container_service(
        inputs,
        name=record.unit,
        description=f"rctl container {record.name} ({record.image_name})",
        exec_start=(*py, "rootless.containers.launch", str(launch_json)),
        # The launcher says MAINPID=<the container's first process> and READY=1 between
        # `crun create` and `crun start`, behind a barrier: no PID file, and no race with
        # a container that ends at once (it can't run before systemd watches it).
        exec_stop_post=(
            # --rm: the anonymous volumes go with the container (docker), before exited
            # removes the record that lists them.
            *(
                (
                    ExecCommand(
                        (*py, "rootless.volumes.cleanup", str(launch_json.parent.parent)),
                        ignore_failure=True,
                    ),
                )
                if record.auto_remove and any(m.anonymous for m in record.mounts)
                else ()
            ),
            ExecCommand(
                (*py, "rootless.containers.exited", str(launch_json.parent)), ignore_failure=True
            ),
        ),
        # As `docker stop`: the stop signal goes to the container's first process only, so
        # that the network helper and the port relay still serve it while it shuts down;
        # SIGKILL goes to every process left once it ended or TimeoutStopUSec= passed. An
        # attached run's output copier, and a -dt container's terminal holder, must drain
        # what the container wrote last after it ended, and mixed would SIGKILL them then:
        # they ignore the stop signals and the unit waits for them instead.
        kill_mode=KillMode.CONTROL_GROUP
        if (stdio is not None and not spec.tty) or (spec.tty and record.detach)
        else KillMode.MIXED,
        syslog_identifier=record.log_tag or record.name,
    )
    return replace(
        unit,
        log_extra_fields={
            "CONTAINER_ID": record.id,
            "CONTAINER_NAME": record.name,
            "IMAGE_NAME": record.image_name,
        },
        stdin_fd=stdio[0] if stdio else None,
        stdout_fd=stdio[1] if stdio else None,
        stderr_fd=stdio[2] if stdio else None,
        collect_mode=CollectMode.INACTIVE_OR_FAILED,
        # --log-driver none: nothing in the journal (an attached run still shows output:
        # the launcher then copies it to the CLI alone).
        standard_output="null" if spec.isolation.log_driver == "none" and stdio is None else None,
    )


# Static inits for --init, where distributions put them (podman's catatonit first).
INIT_CANDIDATES = (
    "/usr/libexec/podman/catatonit",
    "/usr/libexec/catatonit/catatonit",
    "/usr/bin/catatonit",
    "/usr/bin/tini-static",
    "/usr/bin/docker-init",
)


def find_init() -> str | None:
    """The host's static init for ``--init`` (bind-mounted into the container), or None."""
    for candidate in INIT_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return None
