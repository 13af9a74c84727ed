"""Run options checked against the host at create time, so that a container that can't
start is refused with the reason instead of failing in its unit: device nodes the user
can open (``--device``, ``--privileged``), limits within the user's (``--ulimit``,
``--oom-score-adj``), the cgroup controllers a limit needs, and ``--cidfile``.
"""

from __future__ import annotations

import os
import resource
import stat
from collections.abc import Iterator
from pathlib import Path

from rctlbase.errors import UsageError
from rootless.containers.isolation import RLIM_INFINITY, Device, Isolation, NamespaceMode
from rootless.containers.spec import ContainerSpec, Limits

# Nodes crun already gives every container (bound from the host in a user namespace), and
# the terminals, which are the container's own (devpts) or the host's session's.
_DEFAULT_NODES = {"null", "zero", "full", "tty", "random", "urandom", "ptmx", "console"}
_SKIPPED_DIRS = {"pts", "shm", "mqueue", "hugepages", "fd", "char", "block", "disk", "bus"}
MAX_PRIVILEGED_DEVICES = 1024  # bounds the bundle of a host with very many nodes


def check_device(device: Device) -> Device:
    """``device`` if its source is a device node the user can open for reading and writing."""
    hint = "rootless containers get the device nodes the user can open (e.g. /dev/fuse)"
    try:
        info = os.stat(device.source)
    except OSError as exc:
        raise UsageError(f"--device {device.source}: {exc.strerror}", hint=hint) from exc
    if not (stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)):
        raise UsageError(f"--device {device.source}: not a device node", hint=hint)
    if not os.access(device.source, os.R_OK | os.W_OK):
        raise UsageError(
            f"--device {device.source}: the user can't open it for reading and writing",
            hint=f"{hint}; a node of a group of yours needs --group-add keep-groups too",
        )
    return device


def _nodes(root: Path, depth: int) -> Iterator[Path]:
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if depth > 0 and entry.name not in _SKIPPED_DIRS:
                yield from _nodes(Path(entry.path), depth - 1)
        elif not entry.is_symlink():
            yield Path(entry.path)


def privileged_devices(root: Path = Path("/dev")) -> tuple[Device, ...]:
    """``--privileged``'s devices (podman's rootless rule): the host's character and block
    nodes the user can open for reading and writing, terminals and crun's defaults left
    out, one level of subdirectories deep (``/dev/net/tun``, ``/dev/dri/...``)."""
    found: list[Device] = []
    for path in _nodes(root, 1):
        name = path.name
        if name in _DEFAULT_NODES or name.startswith(("tty", "vcs", "pty")):
            continue
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        if (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) and os.access(path, os.R_OK | os.W_OK):
            found.append(Device(str(path), str(path)))
        if len(found) >= MAX_PRIVILEGED_DEVICES:
            break
    return tuple(found)


def plan_devices(isolation: Isolation) -> tuple[Device, ...]:
    """The nodes to bind: ``--device``'s, checked, and ``--privileged``'s after them."""
    given = tuple(check_device(d) for d in isolation.devices)
    if not isolation.privileged:
        return given
    taken = {d.destination for d in given}
    return given + tuple(d for d in privileged_devices() if d.destination not in taken)


def check_rlimits(isolation: Isolation) -> None:
    """Refuse a ``--ulimit`` whose hard limit is above this user's: an unprivileged
    process can lower its hard limits, never raise them (setrlimit(2))."""
    for ulimit in isolation.ulimits:
        number = getattr(resource, ulimit.rlimit, None)
        if number is None:
            continue
        _, hard = resource.getrlimit(number)
        mine = RLIM_INFINITY if hard == resource.RLIM_INFINITY else hard
        if ulimit.hard > mine:
            shown = "unlimited" if mine == RLIM_INFINITY else str(mine)
            raise UsageError(
                f"--ulimit {ulimit.name}: the hard limit is above yours ({shown})",
                hint="a rootless container can't raise a hard limit: give at most yours",
            )


def check_oom_score_adj(
    isolation: Isolation, current: Path = Path("/proc/self/oom_score_adj")
) -> None:
    """Refuse an ``--oom-score-adj`` below this process's: only CAP_SYS_RESOURCE may lower
    it (proc(5))."""
    wanted = isolation.oom_score_adj
    if wanted is None:
        return
    try:
        mine = int(current.read_text())
    except (OSError, ValueError):
        return
    if wanted < mine:
        raise UsageError(
            f"--oom-score-adj {wanted} is below the user's own ({mine})",
            hint=f"a rootless container can only raise it: give {mine} or more",
        )


def check_controllers(limits: Limits, delegated: list[str]) -> None:
    """Refuse a limit whose cgroup controller is not delegated to the user's manager:
    systemd would accept the setting and enforce nothing."""
    wanted = (
        ("--cpuset-cpus", "cpuset", limits.cpuset_cpus is not None),
        ("--blkio-weight", "io", limits.blkio_weight is not None),
        ("--memory-reservation", "memory", limits.memory_reservation is not None),
        ("--cpu-quota/--cpu-period", "cpu", bool(limits.cpu_quota or limits.cpu_period)),
    )
    for flag, controller, asked in wanted:
        if asked and controller not in delegated:
            raise UsageError(
                f"{flag} needs the {controller} cgroup controller, which is not delegated "
                "to your user manager",
                hint=f"add {controller} to Delegate= of user@.service "
                "(systemd.resource-control(5))",
            )


def claim_cidfile(path: str) -> None:
    """Create ``--cidfile`` empty, refusing an existing one (docker: a file left by a
    container that may still run)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        raise UsageError(
            f"--cidfile {path}: the file exists",
            hint="remove it (its container may still run), or give another path",
        ) from None
    except OSError as exc:
        raise UsageError(f"--cidfile {path}: {exc.strerror}", hint="give a writable path") from exc
    os.close(fd)


def check_run(
    spec: ContainerSpec, runtime: str, delegated: list[str], *, cidfile: str | None
) -> None:
    """Every check above that a new container needs, before anything is made."""
    isolation = spec.isolation
    check_cidfile(cidfile)
    plan_devices(isolation)
    check_rlimits(isolation)
    check_oom_score_adj(isolation)
    check_controllers(spec.limits, delegated)
    if isolation.cgroupns is NamespaceMode.HOST and runtime != "crun":
        # The launcher gives runc a cgroup namespace of its own (rootless.containers.inner),
        # so that runc keeps the container in its unit's cgroup.
        raise UsageError(
            f"--cgroupns host needs crun, not {runtime}",
            hint="use --runtime crun, or leave --cgroupns out",
        )
    if isolation.keep_groups and runtime != "crun":
        raise UsageError(
            f"--group-add keep-groups needs crun, not {runtime}",
            hint="use --runtime crun, or give the groups by number",
        )


def check_cidfile(path: str | None) -> None:
    """Refuse an existing ``--cidfile`` early, before an image is pulled."""
    if path and os.path.lexists(path):
        raise UsageError(
            f"--cidfile {path}: the file exists",
            hint="remove it (its container may still run), or give another path",
        )


def write_cidfile(path: str | None, container_id: str) -> None:
    """Write the new container's ID to ``--cidfile``, never over an existing file."""
    if path:
        claim_cidfile(path)
        Path(path).write_text(container_id)


def discard_cidfile(path: str | None, container_id: str) -> None:
    """Remove the ``--cidfile`` this create wrote, when the create fails after it."""
    if not path:
        return
    try:
        if Path(path).read_text() == container_id:
            os.unlink(path)
    except OSError:
        pass


CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_facts(uid: int, root: Path = CGROUP_ROOT) -> tuple[str, list[str]]:
    """The cgroup version (``2``, ``1``) and the controllers delegated to the user's
    manager (what limits can use)."""
    if not (root / "cgroup.controllers").exists():
        return ("1" if root.is_dir() else ""), []
    manager = root / f"user.slice/user-{uid}.slice/user@{uid}.service" / "cgroup.controllers"
    try:
        return "2", sorted(manager.read_text().split())
    except OSError:
        return "2", []
