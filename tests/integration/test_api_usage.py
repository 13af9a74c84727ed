"""``docker stats`` and docker-py's stats against ``rctl system service``."""

from __future__ import annotations

import importlib
from typing import Any

from apikit import BUSYBOX, ApiService, api

__all__ = ["api"]

docker: Any = importlib.import_module("docker")


def test_stats_no_stream_one_shot_and_streamed(api: ApiService) -> None:
    api.docker("run", "-d", "--name", "busy", BUSYBOX, "sh", "-c", "while :; do :; done")
    out = api.docker(
        "stats", "--no-stream", "--format", "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}",
        "busy", timeout=60,
    )  # fmt: skip
    name, cpu, memory, pids = out.stdout.strip().split("|")
    assert name == "busy", out.stdout
    assert float(cpu.rstrip("%")) > 1.0, (out.stdout, api.service_log())
    assert memory.split(" / ")[0] != "0B", out.stdout
    assert int(pids) >= 1

    low = docker.APIClient(base_url=api.host, timeout=60)
    shot = low.stats("busy", stream=False, one_shot=True)
    assert shot["name"] == "/busy"
    assert shot["memory_stats"]["usage"] > 0
    streamed = low.stats("busy", decode=True, stream=True)
    first, second = next(streamed), next(streamed)
    streamed.close()
    assert first["id"] == second["id"] == shot["id"]
    assert (
        second["precpu_stats"]["cpu_usage"]["total_usage"]
        == (first["cpu_stats"]["cpu_usage"]["total_usage"])
    )

    missing = api.docker("stats", "--no-stream", "no-such-container", check=False)
    assert missing.returncode != 0
    assert "no such container" in missing.stderr.lower(), missing.stderr
