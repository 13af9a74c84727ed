"""Inside the container's namespaces, as uid 0 there: mount the root filesystem, then become
the OCI runtime (``exec``), which runs the container and returns its exit status to systemd.

Runs as ``python -I -m rootless.containers.inner LAUNCH_JSON`` (see
:mod:`rootless.containers.launch`). The mounts belong to this mount namespace: they vanish
with the container, whatever kills it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rctlbase.errors import RctlError
from rctlbase.run import exec_program, run_program
from rootless.containers.plan import LaunchPlan
from rootless.storage.drivers import Driver, RootfsPlan, mount_command


def rootfs_plan(raw: dict[str, object]) -> RootfsPlan:
    return RootfsPlan(
        driver=Driver(str(raw["driver"])),
        layers_root=Path(str(raw["layers_root"])),
        lowers=tuple(str(x) for x in raw["lowers"]),  # type: ignore[attr-defined]
        upper=Path(str(raw["upper"])),
        work=Path(str(raw["work"])),
        merged=Path(str(raw["merged"])),
    )


def main() -> int:
    plan = LaunchPlan.from_json(Path(sys.argv[1]).read_text())
    try:
        if plan.network != "host":
            run_program(["ip", "link", "set", "lo", "up"])
        rootfs = rootfs_plan(plan.rootfs)
        command = mount_command(rootfs)
        if command is not None:
            run_program(command, cwd=rootfs.layers_root)
        # A runtime killed by SIGKILL (stop timeout) leaves its state behind.
        state = [plan.runtime, "--root", plan.runtime_root]
        run_program([*state, "delete", "--force", plan.container_id], check=False)
        os.environ.pop("RCTL_USERNS", None)
        console = ["--console-socket", plan.console_socket] if plan.console_socket else []
        exec_program(
            [*state, "--cgroup-manager=disabled", "run", *console,
             "--bundle", plan.bundle, plan.container_id]
        )  # fmt: skip
    except RctlError as exc:
        print(f"rctl: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""), file=sys.stderr)
        return 125
    return 125  # not reached: exec_program replaces this process


if __name__ == "__main__":
    sys.exit(main())
