"""Inside the container's namespaces, as uid 0 there: mount the root filesystem, then have
the OCI runtime create and start the container (:func:`create_and_start`), or become the
runtime (:func:`exec_runtime`, for containers that notify systemd themselves).

The launcher (:mod:`rootless.containers.launch`) calls these once the namespaces are
mapped. The mounts belong to this mount namespace: they vanish with the container,
whatever kills it. No program is run that a system call can replace: loopback up is an
ioctl, the kernel overlay a mount(2); only fuse-overlayfs and crun are programs.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

from netns.loopback import loopback_up
from rctlbase import syscalls
from rctlbase.errors import HostError
from rctlbase.run import exec_program, run_program, spawn_program
from rootless.containers.plan import LaunchPlan
from rootless.containers.runtime import runtime_options
from rootless.containers.startguard import StartGuard
from rootless.storage.drivers import Driver, RootfsPlan, mount_command, mount_options


def rootfs_plan(raw: dict[str, object]) -> RootfsPlan:
    return RootfsPlan(
        driver=Driver(str(raw["driver"])),
        layers_root=Path(str(raw["layers_root"])),
        lowers=tuple(str(x) for x in raw["lowers"]),  # type: ignore[attr-defined]
        upper=Path(str(raw["upper"])),
        work=Path(str(raw["work"])),
        merged=Path(str(raw["merged"])),
        # --userns keep-id: fuse-overlayfs shifts the IDs (rootless.containers.keepid).
        uid_mapping=_triples(raw.get("uid_mapping", ())),
        gid_mapping=_triples(raw.get("gid_mapping", ())),
    )


def _triples(raw: object) -> tuple[tuple[int, int, int], ...]:
    return tuple((int(a), int(b), int(c)) for a, b, c in raw)  # type: ignore[attr-defined]


def mount_rootfs(rootfs: RootfsPlan) -> None:
    """Mount the container's root (nothing for vfs, whose root is a plain directory)."""
    if rootfs.driver is Driver.OVERLAY:
        os.chdir(rootfs.layers_root)  # the lower directories are relative to it
        try:
            syscalls.mount("overlay", str(rootfs.merged), "overlay", 0, mount_options(rootfs))
        except OSError as exc:
            raise HostError(
                f"cannot mount the container's overlay: {exc.strerror}",
                hint='set [storage] driver = "fuse-overlayfs" in ~/.config/rctl/rctl.toml',
            ) from exc
        finally:
            os.chdir("/")
        return
    command = mount_command(rootfs)
    if command is not None:
        run_program(command, cwd=rootfs.layers_root)


def prepare_container(plan: LaunchPlan) -> None:
    """Inside the namespaces: loopback up, the root filesystem mounted."""
    if plan.network != "host":
        loopback_up()
        if plan.rootfs.get("uid_mapping"):
            open_low_ports()
        for name, value in plan.net_sysctls:
            set_net_sysctl(name, value)
    if plan.runtime == "runc":
        own_cgroup_namespace()
    mount_rootfs(rootfs_plan(plan.rootfs))


def own_cgroup_namespace() -> None:
    """runc, given no ``cgroupsPath``, makes a cgroup named after the container beside the
    one it runs in (runc libcontainer/cgroups/fs2 defaultDirPath): beside the unit's, in
    app.slice, which the user owns, so it would move the container out of the unit. In a
    cgroup namespace of its own, "beside" is /sys/fs/cgroup's root, which it may not
    write: rootless runc then leaves the container where it is, in the unit."""
    try:
        syscalls.unshare(syscalls.CLONE_NEWCGROUP)
    except OSError as exc:
        raise HostError(
            f"cannot make a cgroup namespace for runc: {exc.strerror}",
            hint="run the container with --runtime crun",
        ) from exc


def set_net_sysctl(name: str, value: str) -> None:
    """A ``net.*`` sysctl of the container's network namespace, which this process's user
    namespace owns (for runtimes that won't set it: rootless.containers.runtime)."""
    try:
        with open("/proc/sys/" + name.replace(".", "/"), "w") as file:
            file.write(value)
    except OSError as exc:
        raise HostError(
            f"cannot set {name} in the container's network: {exc.strerror}",
            hint="run the container with --runtime crun",
        ) from exc


def open_low_ports() -> None:
    """``--userns keep-id``: the container's user namespace is nested in ours, which owns the
    network namespace, so nobody in the container (``-u 0`` neither) has the capability to
    bind ports below 1024 or to set these sysctls. We do it here, as podman's rootless
    containers have it: low ports and ICMP echo sockets for everyone in this namespace."""
    for name, value in (("ip_unprivileged_port_start", "0"), ("ping_group_range", "0 65536")):
        try:
            with open(f"/proc/sys/net/ipv4/{name}", "w") as file:
                file.write(value)
        except OSError as exc:
            raise HostError(
                f"cannot set net.ipv4.{name} in the container's network: {exc.strerror}",
                hint="run the container without --userns keep-id",
            ) from exc


def _runtime(plan: LaunchPlan) -> list[str]:
    """The runtime's command and global options; a stopped container's state is deleted
    first (``create`` leaves it behind, and so does a runtime killed by SIGKILL)."""
    state = [plan.runtime, "--root", plan.runtime_root]
    if os.path.exists(os.path.join(plan.runtime_root, plan.container_id)):
        run_program([*state, "delete", "--force", plan.container_id], check=False)
    os.environ.pop("RCTL_USERNS", None)
    return [*state, *runtime_options(plan.runtime)]


def exec_runtime(plan: LaunchPlan) -> None:
    """Become the OCI runtime running the container (returns only on failure). For
    containers that send ``READY=1`` themselves: crun relays it, with ``MAINPID=``."""
    console = ["--console-socket", plan.console_socket] if plan.console_socket else []
    exec_program([*_runtime(plan), "run", *console, "--bundle", plan.bundle, plan.container_id])


def create_and_start(plan: LaunchPlan, tell_manager: Callable[[int], None]) -> int:
    """``crun create`` (the container's first process waits, our streams are its own),
    ``tell_manager(pid)`` (the unit's main process becomes that process), ``crun start``.
    No runtime process stays: systemd, a subreaper, adopts the container's first process
    when ``create`` exits, and supervises it as the unit's main process, exit status
    included. The start is run by a guard started meanwhile, which kills the created
    container instead if this process dies before the start
    (:mod:`rootless.containers.startguard`). Returns the runtime's exit status when
    ``create`` or ``start`` fails."""
    runtime = _runtime(plan)
    pid_file = os.path.join(plan.bundle, "init.pid")
    console = ["--console-socket", plan.console_socket] if plan.console_socket else []
    creating = spawn_program(
        [*runtime, "create", *console, "--pid-file", pid_file, "--bundle", plan.bundle,
         plan.container_id]
    )  # fmt: skip
    guard = StartGuard.spawn([*runtime, "start", plan.container_id])  # while crun creates
    created = creating.wait()
    if created != 0:
        guard.cancel()
        return created
    with open(pid_file) as file:
        pid = int(file.read().strip())
    guard.arm(pid)
    tell_manager(pid)
    started = guard.start()
    if started != 0:
        # systemd watches the created process now: end it, or the unit would stay active
        # around a container that never runs.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return started
