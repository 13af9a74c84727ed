"""``rctl export``: the container's filesystem as one tar stream, as docker's.

The archive is made inside the container's user namespace, so every entry carries its
owner as the container sees it (root is 0, not the user), and through the storage
driver, so it holds the merged root (image layers and r/w layer), without volumes, and
without the ``/proc``, ``/sys``, ``/dev`` and ``/etc/hosts`` mounts of a running container.

A stopped container's root is mounted in a user namespace of its own (as ``rctl cp``
does). A running container's namespaces are joined and its root mount is bound alone
(non-recursively: none of the mounts on top) in a private mount namespace, so the
container's own mounts are never touched and an overlay's upper directory is never
mounted twice.

The child never asks the name service (tar's user and group names stay empty): glibc
would load the container's NSS libraries into it (docker's CVE-2019-14271). The output
descriptor is opened by the caller before the fork; the child writes the archive to it.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable
from typing import TYPE_CHECKING

from rctlbase import syscalls
from rctlbase.errors import ExternalError
from rootless.containers.plan import LaunchPlan

if TYPE_CHECKING:
    from rootless.containers.service import ContainerService

MS_BIND = 0x1000  # mount(2)
# Where the running container's root is bound in the child's private mount namespace: a
# directory every running container has (crun mounts proc there), hidden only there.
BIND_TARGET = "/proc"


def write_archive(output: int, report: Callable[[str], None], root: str = "/") -> int:
    """Archive the contents of ``root`` (the container's, once the child is in its view)
    to ``output``; 0 when done."""
    tarfile.pwd = None  # type: ignore[attr-defined]
    tarfile.grp = None  # type: ignore[attr-defined]
    try:
        with (
            os.fdopen(output, "wb", closefd=False) as out,
            tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            os.chdir(root)
            for name in sorted(os.listdir(".")):
                tar.add(name, recursive=True)
    except BrokenPipeError:
        return 0  # the reader has what it wanted (``rctl export c | tar t | head``)
    except OSError as exc:
        report(f"{exc.filename or 'the archive'}: {exc.strerror or exc}")
        return 1
    return 0


def export(containers: ContainerService, ref: str, output: int) -> None:
    """Write container ``ref``'s filesystem as a tar stream to descriptor ``output``."""
    record = containers.store.get(ref)
    plan = containers.store.load_launch(record.id)
    err_r, err_w = os.pipe()

    def report(message: str) -> None:
        os.write(err_w, message.encode(errors="replace")[:4000])

    try:
        pid = _fork_archiver(containers, record.unit, plan, output, report)
    finally:
        os.close(err_w)
    with os.fdopen(err_r, "rb") as said:
        message = said.read().decode(errors="replace").strip()
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise ExternalError(
            f"export of {record.name} failed: {message or f'the archive ended with status {code}'}",
            hint="check the free space and the permissions of the output",
        )


def _fork_archiver(
    containers: ContainerService,
    unit: str,
    plan: LaunchPlan,
    output: int,
    report: Callable[[str], None],
) -> int:
    """Fork the child that writes the archive, in the container's view of its root."""
    from rootless.containers.execs import container_init_pid  # noqa: PLC0415
    from rootless.containers.inner import mount_rootfs, rootfs_plan  # noqa: PLC0415
    from uidmap.unshare import fork_in_userns, fork_joined  # noqa: PLC0415

    state = containers.manager.unit_state(unit)
    if state is not None and state.active_state == "active" and state.main_pid:
        init = container_init_pid(state.main_pid)

        def joined() -> int:
            syscalls.unshare(syscalls.CLONE_NEWNS)
            syscalls.make_mounts_private()
            syscalls.mount("/", BIND_TARGET, "", MS_BIND)
            os.chroot(BIND_TARGET)
            return write_archive(output, report)

        return fork_joined(init, joined)
    rootfs = rootfs_plan(plan.rootfs)

    def stopped() -> int:
        mount_rootfs(rootfs)
        os.chroot(rootfs.rootfs)
        return write_archive(output, report)

    return fork_in_userns(plan.userns, stopped)
