"""The first process of a container's systemd unit (``Type=forking``).

``python -m rootless.containers.launch LAUNCH_JSON`` forks a child into the container's new
user, mount and network namespaces (mapped from the subordinate IDs), attaches the network
helper to them, and lets the child mount the root filesystem and exec the OCI runtime
(:mod:`rootless.containers.inner`). It writes the runtime's PID to the unit's ``PIDFile=``
and exits: from then on systemd supervises the runtime directly, and no process of rctl's
own stays per container. One Python process and no helper programs between systemd and
crun (beyond newuidmap/newgidmap and the network helper): start-up time is the product.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rctlbase.errors import RctlError
from rootless.containers.inner import enter_container
from rootless.containers.netattach import attach_network, userns_to_join
from rootless.containers.plan import LaunchPlan
from uidmap.unshare import fork_in_userns


def launch(plan_path: Path) -> int:
    """Start the container described by ``plan_path``; returns once its runtime runs."""
    plan = LaunchPlan.from_json(plan_path.read_text())
    pid = fork_in_userns(
        plan.userns,
        lambda: enter_container(plan),
        net=plan.network != "host",
        join=userns_to_join(plan),
        before_release=lambda pid: attach_network(plan, pid),
    )
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
