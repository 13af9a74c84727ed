"""From ``rctl run``'s options to the container's spec and its systemd unit (pure).

:func:`plan_spec` validates docker-style options into a :class:`ContainerSpec` (every error
names its flag); :func:`service_spec` turns a container into its transient unit: the
launcher as ``Type=notify`` main process that hands over to the container's first process,
the stop hooks, the limits and
the restart policy. :func:`find_init` locates the host's static init for ``--init``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rctlbase.errors import (
    UsageError,
)
from rootless.containers.record import (
    ContainerRecord,
)
from rootless.containers.seccomp import SeccompPolicy
from rootless.containers.spec import (
    BindMount,
    ContainerSpec,
    Limits,
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
from rootless.models import RunOptions
from units.properties import (
    CollectMode,
    ExecCommand,
    KillMode,
    RestartPolicy,
    ServiceSpec,
    ServiceType,
    StartLimit,
)

if TYPE_CHECKING:
    pass

USEC = 1_000_000


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
    limits = Limits(
        memory=parse_memory(options.memory) if options.memory else None,
        memory_swap=parse_memory_swap(options.memory_swap) if options.memory_swap else None,
        cpus=parse_cpus(options.cpus) if options.cpus else None,
        cpu_shares=options.cpu_shares,
        pids_limit=parse_pids_limit(options.pids_limit) if options.pids_limit else None,
    )
    no_new_privileges = False
    seccomp = SeccompPolicy()
    for opt in options.security_opt:
        if opt in ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"):
            no_new_privileges = True
        elif opt.startswith("seccomp="):
            seccomp = SeccompPolicy.from_option(opt.removeprefix("seccomp="), read_profile)
        else:
            raise UsageError(
                f"--security-opt {opt!r} is not supported",
                hint="use no-new-privileges or seccomp=unconfined|PATH",
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
        cap_add=tuple(parse_capability(c) for c in options.cap_add),
        cap_drop=tuple(parse_capability(c, flag="--cap-drop") for c in options.cap_drop),
        no_new_privileges=no_new_privileges,
        seccomp=seccomp,
        init=options.init,
        userns=parse_userns(options.userns) if options.userns else parse_userns(""),
        tty=options.tty,
        stdin_open=options.interactive,
        limits=limits,
        restart=parse_restart(options.restart),
        stop_signal=parse_signal(options.stop_signal) if options.stop_signal else None,
        stop_timeout=options.stop_timeout if options.stop_timeout is not None else 10,
        network=options.network or "",
    )


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
    """The container's unit: the launcher as ``Type=notify`` main process, becoming crun."""
    py = [sys.executable, "-I", "-m"]
    policy = spec.restart
    restart = {
        "no": RestartPolicy.NO,
        "on-failure": RestartPolicy.ON_FAILURE,
        "always": RestartPolicy.ALWAYS,
        "unless-stopped": RestartPolicy.ALWAYS,
    }[str(policy.name)]
    start_limit = None
    if restart is not RestartPolicy.NO:
        start_limit = (
            StartLimit.max_restarts(policy.max_retries)
            if policy.max_retries
            else StartLimit.unlimited()
        )
    limits = spec.limits
    return ServiceSpec(
        name=record.unit,
        description=f"rctl container {record.name} ({record.image_name})",
        exec_start=(*py, "rootless.containers.launch", str(launch_json)),
        # The launcher says MAINPID=<the container's first process> and READY=1 between
        # `crun create` and `crun start`, behind a barrier: no PID file, and no race with
        # a container that ends at once (it can't run before systemd watches it).
        service_type=ServiceType.NOTIFY,
        notify_access="main",
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
        restart=restart,
        restart_usec=100_000 if restart is not RestartPolicy.NO else None,
        start_limit=start_limit,
        timeout_stop_usec=spec.stop_timeout * USEC,
        # As `docker stop`: the stop signal goes to the container's first process only, so
        # that the network helper and the port relay still serve it while it shuts down;
        # SIGKILL goes to every process left once it ended or TimeoutStopUSec= passed. An
        # attached run's output copier must drain the pipes after the container ends, and
        # mixed would SIGKILL it then: it ignores SIGTERM and its unit waits for it instead.
        kill_mode=KillMode.CONTROL_GROUP if stdio is not None and not spec.tty else KillMode.MIXED,
        kill_signal=spec.kill_signal,
        delegate=True,
        memory_max=limits.memory,
        memory_swap_max=(limits.memory_swap - limits.memory)
        if limits.memory_swap and limits.memory and limits.memory_swap > 0
        else None,
        cpu_quota_per_sec_usec=int(limits.cpus * USEC) if limits.cpus else None,
        cpu_weight=max(1, min(10000, limits.cpu_shares * 100 // 1024))
        if limits.cpu_shares
        else None,
        tasks_max=limits.pids_limit,
        syslog_identifier=record.log_tag or record.name,
        log_extra_fields={
            "CONTAINER_ID": record.id,
            "CONTAINER_NAME": record.name,
            "IMAGE_NAME": record.image_name,
        },
        stdin_fd=stdio[0] if stdio else None,
        stdout_fd=stdio[1] if stdio else None,
        stderr_fd=stdio[2] if stdio else None,
        collect_mode=CollectMode.INACTIVE_OR_FAILED,
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
