"""Container life-cycle scenarios: ``run --rm``, ``run -d``/``stop``/``rm``, 50 concurrent
``run -d``, and ``ps -a`` over 200 containers.

Both tools run with their default network (rctl: pasta; podman 4.3: slirp4netns), the
image already pulled.
"""

from __future__ import annotations

import itertools
import os
import time
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
    phases_note,
    scenario_tools,
    summarize,
    timed,
)

GROUP = "lifecycle"
BUSYBOX = f"{REG}/test/busybox"
HTTPD = f"{REG}/test/httpd"


def run_rm(rounds: int, work: Path) -> list[Result]:
    """``run --rm test/busybox true`` wall time."""
    with scenario_tools(work, "run-rm") as tools:
        for tool in tools.values():
            tool.pull("test/busybox")
        steps = {
            name: Step(timed(partial(tool.run, "run", "--rm", BUSYBOX, "true")))
            for name, tool in tools.items()
        }
        samples = measure(rounds, steps)
    return [summarize("run --rm test/busybox true", GROUP, "s", samples, target="ratio <= 0.5")]


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
    """Start ``count`` ``run -d`` at once; wall time until every one has returned."""
    names = [unique_name() for _ in range(count)]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [
            pool.submit(tool.run, "run", "-d", "--name", name, BUSYBOX, "sleep", "3600")
            for name in names
        ]
        errors = [str(f.exception()) for f in futures if f.exception() is not None]
    elapsed = time.perf_counter() - start
    if errors:
        raise StepFailed(f"{len(errors)} of {count} run -d failed, e.g. {errors[0]}")
    running = len(tool.run("ps", "-q").split())
    if running != count:
        raise StepFailed(f"{running} of {count} containers running after run -d returned")
    return {"time": elapsed}


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
    return [
        summarize(
            f"{count} concurrent run -d", GROUP, "s", samples, target="ratio <= 0.7", note=note
        )
    ]


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
            f"ps -a with {count} containers", GROUP, "s", samples, target="rctl <= 0.3", note=note
        )
    ]
