"""``rctl stats`` with the cgroup controllers delegated (the vm tier): the memory limit of
``--memory`` and the cgroup's own memory and pids figures."""

from __future__ import annotations

import json

import pytest
from hostkit import Rctl
from test_docker_habits import parse_size

R = "127.0.0.1:5000/test"
pytestmark = pytest.mark.vm


def test_stats_shows_the_memory_limit(rctl: Rctl) -> None:
    rctl("run", "-d", "--name", "capped", "-m", "64m", f"{R}/busybox", "sleep", "300")
    [row] = rctl("stats", "--no-stream", "--format", "json", "capped").stdout.splitlines()
    stats = json.loads(row)
    used, limit = stats["MemUsage"].split(" / ")
    assert limit == "64MiB"
    assert 0 < parse_size(used) < 64 << 20
    assert stats["MemPerc"].endswith("%") and float(stats["MemPerc"][:-1]) > 0
    assert int(stats["PIDs"]) >= 1
    rctl("rm", "-f", "capped")
