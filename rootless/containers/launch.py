"""The first process of a container's systemd unit (``Type=forking``).

``python -m rootless.containers.launch LAUNCH_JSON`` makes the container's user, mount and
network namespaces (mapped from the subordinate IDs), attaches the network helper to them,
lets :mod:`rootless.containers.inner` mount the root filesystem and exec the OCI runtime,
writes that process's PID to the unit's ``PIDFile=`` and exits. From then on systemd
supervises the runtime directly: no process of rctl's own stays per container.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rctlbase.errors import RctlError
from rootless.containers.netattach import attach_network
from rootless.containers.plan import LaunchPlan
from uidmap.unshare import start_in_userns


def launch(plan_path: Path) -> int:
    """Start the container described by ``plan_path``; returns once its runtime runs."""
    plan = LaunchPlan.from_json(plan_path.read_text())

    def attach(pid: int) -> None:
        attach_network(plan, pid)

    argv = [sys.executable, "-I", "-m", "rootless.containers.inner", str(plan_path)]
    pid = start_in_userns(argv, plan.userns, net=plan.network != "host", before_release=attach)
    tmp = f"{plan.pidfile}.tmp"
    Path(tmp).write_text(f"{pid}\n")
    os.replace(tmp, plan.pidfile)
    return 0


def main() -> int:
    try:
        return launch(Path(sys.argv[1]))
    except RctlError as exc:
        # The unit's journal is where this line goes (systemctl --user status shows it).
        print(f"rctl: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""), file=sys.stderr)
        return 125


if __name__ == "__main__":
    sys.exit(main())
