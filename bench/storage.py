"""Storage drivers: sequential write and small-file creation inside a container's root
filesystem, per driver (overlay, fuse-overlayfs, vfs), against a plain host directory.

Each tool runs one idle ``test/debian`` container per driver (rctl: ``[storage] driver`` in
its rctl.toml; podman: ``--storage-driver``, fuse-overlayfs being podman's overlay with
``mount_program``), and each round ``exec``s the same Python script in it, which times
itself: writing 256 MiB in 1 MiB blocks then fsync, and creating 5000 files of 4 KiB, in
``/var/tmp`` of the container (the writable layer, on the same disk as the host directory).
The host runs the same script in a directory of the test user's home in the same rounds:
that is the baseline column. Container start-up is not in the numbers.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
from pathlib import Path

from kit import (
    REG,
    Result,
    Sample,
    Samples,
    Step,
    StepFailed,
    Tool,
    measure,
    not_run,
    run_cmd,
    scenario_tools,
    summarize,
)

GROUP = "storage"
SEQ_MIB = 256
SMALL_FILES = 5000
SCRIPT = f"""
import json, os, sys, time
top = sys.argv[1]
os.makedirs(top + "/small")
block = os.urandom(1 << 20)
start = time.perf_counter()
fd = os.open(top + "/seq", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
for _ in range({SEQ_MIB}):
    os.write(fd, block)
os.fsync(fd)
os.close(fd)
seq = time.perf_counter() - start
small = block[:4096]
start = time.perf_counter()
for i in range({SMALL_FILES}):
    fd = os.open(f"{{top}}/small/{{i}}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, small)
    os.close(fd)
files = time.perf_counter() - start
print(json.dumps({{"seq": {SEQ_MIB} / seq, "files": {SMALL_FILES} / files}}))
"""
METRICS = {
    "seq": (f"sequential write {SEQ_MIB} MiB + fsync", "MiB/s"),
    "files": (f"create {SMALL_FILES} files of 4 KiB", "files/s"),
}


class InContainer:
    """The script run in one idle container of a tool, a fresh directory each round."""

    def __init__(self, tool: Tool) -> None:
        self.tool = tool
        self.round = 0
        self.cid = tool.run("run", "-d", f"{REG}/test/debian", "sleep", "3600").split()[-1]

    def action(self) -> Sample:
        self.round += 1
        out = self.tool.run(
            "exec", self.cid, "python3", "-c", SCRIPT, f"/var/tmp/bench-{self.round}"
        )
        return parse(out)

    def teardown(self) -> None:
        self.tool.run("exec", self.cid, "rm", "-rf", f"/var/tmp/bench-{self.round}")
        os.sync()  # the next step, whoever's it is, should not pay for this one's writeback


class OnHost:
    """The script in a plain directory of the host (the test user's home)."""

    def __init__(self, top: Path) -> None:
        self.top = top

    def action(self) -> Sample:
        return parse(run_cmd(["python3", "-c", SCRIPT, str(self.top)]))

    def teardown(self) -> None:
        shutil.rmtree(self.top, ignore_errors=True)
        os.sync()


def parse(out: str) -> Sample:
    try:
        values = json.loads(out.strip().splitlines()[-1])
        return {metric: float(values[metric]) for metric in METRICS}
    except (ValueError, KeyError, IndexError) as exc:
        raise StepFailed(f"the write script printed {out[-200:]!r}") from exc


def host_step(work: Path, name: str) -> Step:
    host = OnHost(work / name / "hostdir")
    return Step(host.action, teardown=host.teardown)


def driver_io(driver: str, rounds: int, work: Path) -> list[Result]:
    """Both tools' write rates in a container on ``driver``, and the host's."""
    with scenario_tools(work, f"fs-{driver}", driver) as tools:
        steps: dict[str, Step] = {}
        failed: dict[str, str] = {}
        for name, tool in tools.items():
            try:
                tool.pull("test/debian")
                runner = InContainer(tool)
            except StepFailed as exc:
                failed[name] = str(exc)
                continue
            steps[name] = Step(runner.action, teardown=runner.teardown)
        steps["host"] = host_step(work, f"fs-{driver}")
        samples: Samples = measure(rounds, steps)
        samples.failed.update(failed)
    results = []
    for metric, (what, unit) in METRICS.items():
        result = summarize(f"{what}, {driver}", GROUP, unit, samples, metric, better="higher")
        host = samples.of("host", metric)
        result.baseline = statistics.median(host) if host else None
        result.baseline_spread = (max(host) - min(host)) if host else None
        results.append(result)
    return results


def host_io(rounds: int, work: Path) -> list[Result]:
    """The baseline rows: the script in a plain host directory, no container."""
    step = host_step(work, "fs-host")
    samples = measure(rounds, {"host": step})
    results = []
    for metric, (what, unit) in METRICS.items():
        values = samples.of("host", metric)
        if not values:
            results.append(not_run(f"{what}, host directory", GROUP, unit, str(samples.failed)))
            continue
        result = summarize(f"{what}, host directory", GROUP, unit, samples, metric,
                           better="higher", note="baseline: a plain directory of the host, no container")  # fmt: skip
        result.baseline = statistics.median(values)
        result.rounds = len(values)
        result.baseline_spread = max(values) - min(values)
        results.append(result)
    return results
