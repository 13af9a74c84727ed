"""docker run's cgroup flags beyond --memory/--cpus, seen from inside the container (its
cgroup namespace's root is its unit's cgroup), and crun's IPC sysctls. The vm tier has the
cpu, cpuset, io, memory and pids controllers delegated and a writable /proc/sys.
"""

from __future__ import annotations

import pytest
from hostkit import Rctl

R = "127.0.0.1:5000/test"
pytestmark = pytest.mark.vm


def test_cgroup_limits_are_the_units(rctl: Rctl) -> None:
    # One CPU's worth: the quota covers the unit's launcher too, which a slow (emulated)
    # vm needs to start the container within the start timeout.
    script = (
        "cat /sys/fs/cgroup/cpuset.cpus /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.low; "
        "grep default /sys/fs/cgroup/io.weight"
    )
    out = rctl("run", "--rm", "-m", "256m", "--memory-reservation", "64m", "--cpuset-cpus", "0",
               "--cpu-quota", "200000", "--cpu-period", "200000", "--blkio-weight", "300",
               f"{R}/busybox", "sh", "-c", script).stdout  # fmt: skip
    assert out.split() == ["0", "200000", "200000", str(64 << 20), "default", "300"]


def test_ipc_sysctls_with_crun(rctl: Rctl) -> None:
    out = rctl("run", "--rm", "--sysctl", "kernel.shmmni=1234", "--sysctl", "fs.mqueue.msg_max=20",
               f"{R}/busybox", "cat", "/proc/sys/kernel/shmmni",
               "/proc/sys/fs/mqueue/msg_max").stdout  # fmt: skip
    assert out.split() == ["1234", "20"]
