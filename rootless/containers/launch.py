"""The first process of a container's systemd unit (``Type=forking``).

``python -m rootless.containers.launch LAUNCH_JSON`` makes the container's user, mount and
network namespaces (mapped from the subordinate IDs), attaches the network helper to them,
lets :mod:`rootless.containers.inner` mount the root filesystem and exec the OCI runtime,
writes that process's PID to the unit's ``PIDFile=`` and exits. From then on systemd
supervises the runtime directly: no process of rctl's own stays per container.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netns.pasta import PortMapping, Protocol, start_pasta
from rctlbase.errors import RctlError
from uidmap.mapping import IDMap, UsernsPlan
from uidmap.unshare import start_in_userns


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """Everything the unit needs to start the container, written by the engine at create."""

    container_id: str
    uid_maps: tuple[tuple[int, int, int], ...]
    gid_maps: tuple[tuple[int, int, int], ...]
    network: str  # pasta | none | host
    ports: tuple[tuple[str, str, int, int], ...]  # (protocol, host ip, host port, ctr port)
    pidfile: str
    bundle: str
    runtime: str
    runtime_root: str
    rootfs: dict[str, Any]
    console_socket: str | None = None  # run -t: crun sends the terminal's master here

    def to_json(self) -> str:
        return json.dumps({k: getattr(self, k) for k in self.__slots__}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> LaunchPlan:
        raw = json.loads(text)
        for key in ("uid_maps", "gid_maps", "ports"):
            raw[key] = tuple(tuple(item) for item in raw[key])
        return cls(**raw)

    @property
    def userns(self) -> UsernsPlan:
        return UsernsPlan(
            tuple(IDMap(*m) for m in self.uid_maps), tuple(IDMap(*m) for m in self.gid_maps)
        )


def launch(plan_path: Path) -> int:
    """Start the container described by ``plan_path``; returns once its runtime runs."""
    plan = LaunchPlan.from_json(plan_path.read_text())
    ports = [PortMapping(h, c, Protocol(p), ip) for p, ip, h, c in plan.ports]

    def attach_network(pid: int) -> None:
        if plan.network == "pasta":
            start_pasta(pid, ports)

    argv = [sys.executable, "-I", "-m", "rootless.containers.inner", str(plan_path)]
    pid = start_in_userns(
        argv, plan.userns, net=plan.network != "host", before_release=attach_network
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
