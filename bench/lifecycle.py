"""Container life-cycle scenarios: ``run --rm``, ``run -d``/``stop``/``rm``, 50 concurrent
``run -d``, and ``ps -a`` over 200 containers.

Both tools run with their default network (slirp4netns for both: rctl's default, and
podman 4.3's), the image already pulled.

``run --rm`` is also broken down into its steps with rctl's timeline (``RCTL_TIMELINE``,
:mod:`rctlbase.timeline`), next to the floors measured in the same rounds: one empty Python
start, and one transient unit that runs ``true`` (``systemd-run --user --wait``).
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
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
    phases_note,
    run_cmd,
    scenario_tools,
    summarize,
    timed,
)

GROUP = "lifecycle"
BUSYBOX = f"{REG}/test/busybox"
HTTPD = f"{REG}/test/httpd"


# rctl's timeline marks (rctlbase.timeline) → the steps of `run --rm` they bound, in order.
RUN_RM_STEPS = (
    ("CLI start and imports", "cli started", "cli: run imported"),
    ("CLI: record, bundle, unit request", "cli: run imported", "cli: unit requested"),
    ("systemd starts the launcher", "cli: unit requested", "launcher started"),
    ("launcher start and imports", "launcher started", "launcher: imported"),
    ("namespaces, ID maps, network helper started", "launcher: imported", "launcher: namespaces made, network starting"),
    ("root mount", "launcher: namespaces made, network starting", "launcher: root mounted"),
    ("crun create", "launcher: root mounted", "launcher: container created"),
    ("network helper ready (after crun create)", "launcher: container created", "launcher: network ready"),
    ("crun start", "launcher: network ready", "launcher: container started"),
    ("the container runs and ends, systemd starts the stop hook", "launcher: container started", "stop hook started"),
    ("stop hook", "stop hook started", "stop hook: done"),
    ("CLI sees the end and exits", "stop hook: done", "cli: done"),
)  # fmt: skip
FLOORS = {
    "python3 -I -c pass": ["python3", "-I", "-c", "pass"],
    "systemd-run --user --wait true": ["systemd-run", "--user", "--wait", "--quiet", "true"],
}


def user_cpu_seconds() -> float:
    """CPU time used so far by every process of this user (``user-UID.slice``: the bench's
    commands, the user's systemd, its units, their helpers), other tiers' load excluded."""
    stat = Path(f"/sys/fs/cgroup/user.slice/user-{os.getuid()}.slice/cpu.stat")
    for line in stat.read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            return int(value) / 1e6
    raise StepFailed(f"no usage_usec in {stat}")


def with_cpu(step: Callable[[], Sample]) -> Callable[[], Sample]:
    """``step``, with the CPU time the user's processes used meanwhile (``cpu``)."""

    def measured() -> Sample:
        cpu = user_cpu_seconds()
        sample = step()
        return {**sample, "cpu": user_cpu_seconds() - cpu}

    return measured


def read_timeline(path: Path) -> dict[str, float]:
    """The marks of one run by name, in seconds. A process's estimated start is named
    after its first mark's process (``cli started``, ``launcher started``...)."""
    rows = sorted(
        (float(t), int(pid), step)
        for t, pid, step in (line.split(" ", 2) for line in path.read_text().splitlines())
    )
    first: dict[int, str] = {}
    for _, pid, step in rows:
        if step != "started":
            first.setdefault(pid, step.split(":")[0])
    return {(f"{first.get(pid, '?')} started" if step == "started" else step): t
            for t, pid, step in rows}  # fmt: skip


def rctl_run_rm_steps(tool: Tool, timeline: Path) -> Sample:
    """One ``rctl run --rm``, timed, with its steps from the timeline; then the floors."""
    timeline.unlink(missing_ok=True)
    env = {**tool.env, "RCTL_TIMELINE": str(timeline)}
    cpu = user_cpu_seconds()
    start = time.perf_counter()
    run_cmd(tool.argv("run", "--rm", BUSYBOX, "true"), env)
    sample: Sample = {"time": time.perf_counter() - start, "cpu": user_cpu_seconds() - cpu}
    marks = read_timeline(timeline)
    for step, begin, end in RUN_RM_STEPS:
        if begin in marks and end in marks:
            sample[step] = marks[end] - marks[begin]
    for floor, argv in FLOORS.items():
        begun = time.perf_counter()
        run_cmd(argv, tool.env)
        sample[floor] = time.perf_counter() - begun
    return sample


def run_rm(rounds: int, work: Path) -> list[Result]:
    """``run --rm test/busybox true`` wall time, and where rctl's goes."""
    with scenario_tools(work, "run-rm") as tools:
        for tool in tools.values():
            tool.pull("test/busybox")
        steps = {
            name: Step(
                partial(rctl_run_rm_steps, tool, work / "timeline")
                if name == "rctl"
                else with_cpu(timed(partial(tool.run, "run", "--rm", BUSYBOX, "true")))
            )
            for name, tool in tools.items()
        }
        samples = measure(rounds, steps)
    return [
        summarize(
            "run --rm test/busybox true", GROUP, "s", samples, target="ratio <= 0.6",
            note=steps_note(samples),
        ),
        summarize(
            "CPU per run --rm test/busybox true", GROUP, "s", samples, "cpu",
            note="CPU time of all the user's processes during the run (its cgroup's "
            "usage_usec): unlike wall time, other tiers' load on the machine doesn't count",
        ),
    ]  # fmt: skip


def steps_note(samples: Samples) -> str:
    """rctl's median per step and the floors, in milliseconds."""

    def ms(name: str) -> str:
        values = samples.of("rctl", name)
        return f"{statistics.median(values) * 1000:.0f} ms" if values else "n/a"

    steps = ", ".join(f"{step} {ms(step)}" for step, _, _ in RUN_RM_STEPS)
    floors = ", ".join(f"`{floor}` {ms(floor)}" for floor in FLOORS)
    return (
        f"rctl's steps (medians, from its RCTL_TIMELINE): {steps}; "
        f"floors measured in the same rounds: {floors}"
    )


def httpd_cycle(tool: Tool) -> Sample:
    """The three commands, each timed; ``time`` is their sum."""
    sample: Sample = {}
    start = time.perf_counter()
    cid = tool.run("run", "-d", HTTPD).split()[-1]
    sample["run -d"] = time.perf_counter() - start
    for phase, args in (("stop", ("stop", "-t", "1", cid)), ("rm", ("rm", cid))):
        begin = time.perf_counter()
        tool.run(*args)
        sample[phase] = time.perf_counter() - begin
    sample["time"] = time.perf_counter() - start
    return sample


def run_stop_rm(rounds: int, work: Path) -> list[Result]:
    """``run -d test/httpd``, ``stop -t 1``, ``rm``: the three commands' wall time."""
    with scenario_tools(work, "httpd") as tools:
        for tool in tools.values():
            tool.pull("test/httpd")
        steps = {name: Step(partial(httpd_cycle, tool)) for name, tool in tools.items()}
        samples = measure(rounds, steps)
    note = (
        "stop -t 1: busybox httpd as PID 1 has no SIGTERM handler, so both tools wait out "
        "the stop timeout and then SIGKILL it; 1 s instead of the default 10 s keeps that "
        "fixed wait from hiding the tools' own time; medians by command: "
        + phases_note(samples, ("run -d", "stop", "rm"))
    )
    return [summarize("run -d + stop + rm test/httpd", GROUP, "s", samples, note=note)]


# Containers are named by the bench (the same way for both tools): rctl's generated names
# come from 80 adjective_noun pairs checked outside its store lock, and collide when many
# containers are made at once ("the container name ... is already in use").
SERIAL = itertools.count()


def unique_name() -> str:
    return f"bench-{os.getpid()}-{next(SERIAL)}"


NAMED = "both tools' containers get a --name from the bench, so both do the same work"


def start_many(tool: Tool, count: int) -> Sample:
    """Start ``count`` ``run -d`` at once; wall time until every one has returned, and the
    CPU time each container's start cost the user's processes meanwhile."""
    names = [unique_name() for _ in range(count)]
    cpu = user_cpu_seconds()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [
            pool.submit(tool.run, "run", "-d", "--name", name, BUSYBOX, "sleep", "3600")
            for name in names
        ]
        errors = [str(f.exception()) for f in futures if f.exception() is not None]
    elapsed = time.perf_counter() - start
    cpu_each = (user_cpu_seconds() - cpu) / count
    if errors:
        raise StepFailed(f"{len(errors)} of {count} run -d failed, e.g. {errors[0]}")
    running = len(tool.run("ps", "-q").split())
    if running != count:
        raise StepFailed(f"{running} of {count} containers running after run -d returned")
    return {"time": elapsed, "cpu": cpu_each}


def concurrent_run(rounds: int, work: Path, count: int = 50) -> list[Result]:
    """``count`` ``run -d`` started concurrently; wall time until all are running."""
    with scenario_tools(work, "concurrent") as tools:
        for tool in tools.values():
            tool.pull("test/busybox")
        steps = {
            name: Step(partial(start_many, tool, count), teardown=tool.remove_containers)
            for name, tool in tools.items()
        }
        samples = measure(rounds, steps)
    note = (
        f"{count} `run -d test/busybox sleep 3600` at once; timed until every command has "
        "returned (each returns once its container runs), then `ps -q` must count them all; "
        + NAMED
    )
    cpu_note = (
        "CPU time of all the user's processes (its cgroup's usage_usec: the commands, the "
        f"user's systemd, units, helpers) while the {count} started, divided by {count}"
    )
    return [
        summarize(
            f"{count} concurrent run -d", GROUP, "s", samples, target="ratio <= 0.8", note=note
        ),
        summarize(
            f"CPU per container, {count} concurrent run -d", GROUP, "s", samples, "cpu",
            note=cpu_note,
        ),
    ]  # fmt: skip


def create_many(tool: Tool, count: int, workers: int = 4) -> None:
    """``create`` ``count`` containers, a few at a time (untimed set-up)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(tool.run, "create", "--name", unique_name(), BUSYBOX, "true")
            for _ in range(count)
        ]
        for future in futures:
            future.result()


def ps_many(rounds: int, work: Path, count: int = 200) -> list[Result]:
    """``ps -a`` with ``count`` (created, not running) containers in the store."""
    setup_time: dict[str, float] = {}
    with scenario_tools(work, "ps") as tools:
        steps: dict[str, Step] = {}
        failed: dict[str, str] = {}
        for name, tool in tools.items():
            try:
                tool.pull("test/busybox")
                start = time.perf_counter()
                create_many(tool, count)
                setup_time[name] = time.perf_counter() - start
            except StepFailed as exc:
                failed[name] = f"creating {count} containers: {exc}"
                continue
            steps[name] = Step(timed(partial(tool.run, "ps", "-a")))
        samples = measure(rounds, steps)
        samples.failed.update(failed)
    made = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in setup_time.items())
    note = (
        f"{count} containers made with `create` (4 at a time) before the rounds ({made}); {NAMED}"
    )
    return [
        summarize(
            f"ps -a with {count} containers", GROUP, "s", samples, target="ratio <= 0.5", note=note
        )
    ]
