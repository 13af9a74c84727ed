"""Resource limits of containers, enforced by systemd on the container's unit. Only the vm
tier has cgroup controllers delegated to the user (the nspawn tier accepts but ignores them).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hostkit import Rctl, run

R = "127.0.0.1:5000/test"
pytestmark = pytest.mark.vm


def unit_property(cid: str, name: str) -> str:
    return run(
        "systemctl", "--user", "show", "-p", name, "--value", f"rctl-{cid}.service"
    ).stdout.strip()


def test_memory_limit_oom_kills_the_container(rctl: Rctl) -> None:
    hog = "head -c 300000000 /dev/zero | tail > /dev/null"  # tail holds the whole input in memory
    ok = rctl(
        "run",
        "--rm",
        "-m",
        "512m",
        f"{R}/busybox",
        "sh",
        "-c",
        "head -c 10000000 /dev/zero | tail > /dev/null",
    )
    assert ok.returncode == 0
    killed = rctl(
        "run",
        "--rm",
        "-m",
        "64m",
        "--memory-swap",
        "64m",
        f"{R}/busybox",
        "sh",
        "-c",
        hog,
        check=False,
    )
    assert killed.returncode == 137, killed


def test_pids_limit_refuses_forks(rctl: Rctl) -> None:
    out = rctl("run", "--rm", "--pids-limit", "12", f"{R}/busybox", "sh", "-c",
               "for i in $(seq 30); do sleep 5 & done 2>&1 | grep -c 'fork' ; true")  # fmt: skip
    assert int(out.stdout.strip() or 0) > 0, out


def test_cpus_and_memory_become_the_unit_s_properties(rctl: Rctl) -> None:
    cid = rctl(
        "run",
        "-d",
        "--cpus",
        "0.5",
        "-m",
        "100m",
        "--pids-limit",
        "50",
        f"{R}/busybox",
        "sleep",
        "60",
    ).stdout.strip()
    try:
        assert unit_property(cid, "CPUQuotaPerSecUSec") == "500ms"
        assert unit_property(cid, "MemoryMax") == str(100 * 1024 * 1024)
        assert unit_property(cid, "TasksMax") == "50"
        cgroup = unit_property(cid, "ControlGroup")
        group = Path(f"/sys/fs/cgroup{cgroup}")
        assert (group / "cpu.max").read_text().split() == ["50000", "100000"]
        assert (group / "memory.max").read_text().strip() == str(100 * 1024 * 1024)
    finally:
        rctl("rm", "-f", cid)
    assert json.loads(rctl("ps", "-a", "--format", "json").stdout) == []
