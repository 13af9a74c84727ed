"""The Docker-compatible API: the same docker CLI against ``rctl system service`` and
against ``podman system service``, each on a unix socket of its own with the tool's private
store.

Rows: ``docker run --rm busybox true``, ``docker ps -a`` with 100 created containers, 20
``docker run -d`` at once, and the service's memory: its RSS idle (started, one ``ping``)
and its peak RSS (VmHWM) once 20 concurrent ``run -d`` are done; with those, the CPU time
the service process itself used per round (where the time goes). The service is started
untimed before the rounds and kept (``--time 0``) for all of them, as a socket-activated
service stays up while clients keep coming.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from kit import (
    REG,
    Result,
    Sample,
    Step,
    StepFailed,
    Tool,
    measure,
    run_cmd,
    scenario_tools,
    summarize,
    timed,
)

GROUP = "api"
BUSYBOX = f"{REG}/test/busybox"
CLI = "the same docker CLI (Debian's 20.10) against each tool's service, on a unix socket"


class Service:
    """One tool's API service and a docker CLI environment pointed at it."""

    def __init__(self, tool: Tool, work: Path) -> None:
        self.tool = tool
        home = work / f"{tool.name}-api"  # rctl places its socket only in an owner-only dir
        home.mkdir(mode=0o700, exist_ok=True)
        self.socket = home / "api.sock"
        self.socket.unlink(missing_ok=True)
        uri = f"unix://{self.socket}"
        self.env = {**tool.env, "DOCKER_HOST": uri, "DOCKER_CONFIG": str(work / "docker")}
        log = open(work / f"{tool.name}-api.log", "wb")  # noqa: SIM115 - kept for the process
        self.proc = subprocess.Popen(
            tool.argv("system", "service", "--time", "0", uri),
            env=tool.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 30
        while True:
            try:
                self.docker("version", "--format", "{{.Server.Version}}", timeout=10)
                return
            except StepFailed:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise StepFailed(f"{tool.name} system service did not answer") from None
                time.sleep(0.2)

    def docker(self, *args: str, timeout: float = 600) -> str:
        return run_cmd(["docker", *args], self.env, timeout=timeout)

    def status_kib(self, field: str) -> float:
        """``VmRSS``/``VmHWM`` of the service's process, in KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return float(line.split()[1])
        raise StepFailed(f"no {field} for the {self.tool.name} service")

    def cpu_seconds(self) -> float:
        """User and system CPU time of the service's process so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def remove_containers(self) -> None:
        ids = self.docker("ps", "-aq").split()
        for start in range(0, len(ids), 20):
            with contextlib.suppress(StepFailed):
                self.docker("rm", "-f", *ids[start : start + 20])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def services(work: Path, scenario: str) -> Iterator[dict[str, Service]]:
    """Both tools with fresh stores, busybox pulled, their services up; all stopped after."""
    with scenario_tools(work, scenario) as tools:
        started: dict[str, Service] = {}
        try:
            for name, tool in tools.items():
                tool.pull("test/busybox")
                started[name] = Service(tool, work / scenario)
            yield started
        finally:
            for service in started.values():
                with contextlib.suppress(StepFailed):
                    service.remove_containers()
                service.stop()


def run_rm(rounds: int, work: Path) -> list[Result]:
    """``docker run --rm busybox true``."""
    with services(work, "api-run-rm") as running:
        steps = {
            name: Step(timed(partial(s.docker, "run", "--rm", BUSYBOX, "true")))
            for name, s in running.items()
        }
        samples = measure(rounds, steps)
    row = summarize(
        "docker run --rm busybox true", GROUP, "s", samples, target="ratio <= 0.8", note=CLI
    )
    return [row]


def create_many(service: Service, count: int, workers: int = 4) -> None:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(service.docker, "create", BUSYBOX, "true") for _ in range(count)]
        for future in futures:
            future.result()


def ps_many(rounds: int, work: Path, count: int = 100) -> list[Result]:
    """``docker ps -a`` with ``count`` created containers."""
    with services(work, "api-ps") as running:
        for service in running.values():
            create_many(service, count)
        steps = {name: Step(timed(partial(s.docker, "ps", "-a"))) for name, s in running.items()}
        samples = measure(rounds, steps)
    return [
        summarize(f"docker ps -a with {count} containers", GROUP, "s", samples,
                  target="ratio <= 0.8", note=f"{CLI}; created with docker create, 4 at a time")
    ]  # fmt: skip


def start_many(service: Service, count: int) -> Sample:
    cpu = service.cpu_seconds()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [
            pool.submit(service.docker, "run", "-d", BUSYBOX, "sleep", "3600") for _ in range(count)
        ]
        errors = [str(f.exception()) for f in futures if f.exception() is not None]
    elapsed = time.perf_counter() - start
    cpu = service.cpu_seconds() - cpu
    if errors:
        raise StepFailed(f"{len(errors)} of {count} docker run -d failed, e.g. {errors[0]}")
    running = len(service.docker("ps", "-q").split())
    if running != count:
        raise StepFailed(f"{running} of {count} containers running after docker run -d")
    return {"time": elapsed, "busy": service.status_kib("VmHWM"), "cpu": cpu}


def concurrent_run(rounds: int, work: Path, count: int = 20) -> list[Result]:
    """``count`` ``docker run -d`` at once, and the services' memory idle and busy."""
    idle: dict[str, float] = {}
    with services(work, "api-concurrent") as running:
        for name, service in running.items():
            idle[name] = service.status_kib("VmRSS")
        steps = {
            name: Step(partial(start_many, s, count), teardown=s.remove_containers)
            for name, s in running.items()
        }
        samples = measure(rounds, steps)
    for name, kib in idle.items():
        samples.values.setdefault(name, {})["idle"] = [kib]
    return [
        summarize(f"{count} concurrent docker run -d", GROUP, "s", samples,
                  target="ratio <= 0.8", note=f"{CLI}; timed until every command returned"),
        summarize(f"service CPU time, {count} concurrent run -d", GROUP, "s", samples, "cpu",
                  note="user + system time of the service process alone, per round"),
        summarize("service RSS, idle", GROUP, "KiB", samples, "idle",
                  note="VmRSS of the service process after it answered docker version"),
        summarize(f"service peak RSS, {count} concurrent run -d", GROUP, "KiB", samples, "busy",
                  note="VmHWM of the service process after the rounds of concurrent run -d"),
    ]  # fmt: skip


__all__ = ["concurrent_run", "ps_many", "run_rm"]
