"""The rootless network namespace's unit start: ``python -m rootless.networks.holder DIR``.

``Type=forking``, like a container's unit: fork a holder into a new user namespace (mapped
like every container's, from the subordinate IDs) and network namespace, attach
slirp4netns to it, bring loopback up and turn IPv4 forwarding on (inside: ``netns.netctl``),
write ``DIR/holder.json`` and the ``PIDFile=``, exit. The holder is ``sleep infinity``: it
only keeps the namespaces alive. systemd supervises it; stopping the unit kills it and
slirp4netns (same cgroup), and the namespaces, bridges and veths go with the last process
in them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from netns.netctl import InitOp, run_ops
from netns.rootlessns import start_slirp4netns
from rctlbase.errors import run_main
from rctlbase.run import exec_program
from rootless.networks.leases import userns_of
from uidmap.unshare import fork_in_userns
from uidmap.userns import current_user, load_plan


def start(state: Path) -> int:
    """Start the holder and its helper; the holder's pid."""
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    api_socket = str(state / "slirp.sock")
    plan = load_plan(current_user(), os.getuid(), os.getgid())

    def set_up(pid: int) -> None:
        start_slirp4netns(pid, api_socket)
        run_ops(pid, [InitOp()])

    pid = fork_in_userns(
        plan, lambda: exec_program(["sleep", "infinity"]), net=True, before_release=set_up
    )
    info = {"pid": pid, "userns": userns_of(pid), "api_socket": api_socket}
    (state / "holder.json.tmp").write_text(json.dumps(info))
    (state / "holder.json.tmp").replace(state / "holder.json")
    (state / "holder.pid.tmp").write_text(f"{pid}\n")
    (state / "holder.pid.tmp").replace(state / "holder.pid")
    return pid


def main() -> int:
    def body() -> int:
        start(Path(sys.argv[1]))
        return 0

    return run_main(body, error_code=125)


if __name__ == "__main__":
    sys.exit(main())
