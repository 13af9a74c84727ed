"""rctl against podman, side by side, in the test host (run as rctltest inside it).

Each scenario runs rctl and podman interleaved (A B A B ...) after a warm-up round and
reports the median and spread of each and the ratio rctl/podman. Machines here are noisy,
so only ratios measured in one run, in one tier, are comparable. ``make bench`` runs this in
the nspawn tier; this program prints one JSON document on stdout (progress goes to stderr),
which ``bench/report.py`` turns into ``bench/results.json``, charts and ``bench/RESULTS.md``.

    python bench/bench.py [--rounds N] [--only SCENARIO ...] [--budget SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import apiserve
import build
import lifecycle
import memory
import network
import portload
import pulls
import storage
from kit import STORAGE_DRIVERS, Result, StepFailed, Tool, not_run, run_cmd, say

Runner = Callable[[int, Path], list[Result]]


@dataclass(frozen=True)
class Scenario:
    """A scenario as ``--only`` names it, its default rounds, and its row if it can't run."""

    name: str
    run: Runner
    rounds: int
    title: str
    group: str
    unit: str
    target: str = ""


# In the order they run, 10 rounds each after the warm-up: about 20 minutes in the nspawn
# tier. --budget stops starting new ones before make bench can pass 30 minutes.
SCENARIOS = [
    Scenario("run-rm", lifecycle.run_rm, 10, "run --rm test/busybox true", "lifecycle", "s",
             "ratio <= 0.6"),
    Scenario("httpd", lifecycle.run_stop_rm, 10, "run -d + stop + rm test/httpd", "lifecycle",
             "s"),
    Scenario("pull-debian", partial(pulls.pull_cold, "test/debian"), 10,
             "cold pull test/debian", "pull", "s", "ratio <= 0.8"),
    Scenario("pull-big", partial(pulls.pull_cold, "test/big"), 10, "cold pull test/big", "pull",
             "s", "ratio <= 0.8"),
    Scenario("pull-warm", partial(pulls.pull_warm, "test/debian"), 10, "warm pull test/debian",
             "pull", "s", "ratio <= 1.0"),
    Scenario("idle-rss", memory.idle_rss, 10, "extra RSS per idle container (20 running)",
             "memory", "KiB", "ratio <= 0.3"),
    Scenario("idle-rss-none", partial(memory.idle_rss, network="none"), 10,
             "extra RSS per idle container (20 running, --network none)", "memory", "KiB",
             "ratio <= 0.3"),
    Scenario("idle-rss-bridge", partial(memory.idle_rss, network="benchnet", bridge=True), 10,
             "extra RSS per idle container (20 running, --network benchnet)", "memory", "KiB",
             "ratio <= 0.3"),
    Scenario("concurrent-50", lifecycle.concurrent_run, 10, "50 concurrent run -d", "lifecycle",
             "s", "ratio <= 0.8"),
    Scenario("ps-200", lifecycle.ps_many, 10, "ps -a with 200 containers", "lifecycle", "s",
             "ratio <= 0.5"),
    Scenario("iperf-slirp4netns", partial(network.port_throughput, "slirp4netns", base_port=15210),
             10, "iperf3 host → container, -p, slirp4netns", "network", "Gbit/s",
             "ratio >= 0.95"),
    Scenario("iperf-pasta", partial(network.port_throughput, "pasta", base_port=15220), 10,
             "iperf3 host → container, -p, pasta", "network", "Gbit/s", "ratio >= 0.95"),
    Scenario("port-load", portload.port_load, 5,
             "1000 TCP connections at once through -p, slirp4netns", "portload", "s"),
    *(
        Scenario(f"fs-{driver}", partial(storage.driver_io, driver), 10,
                 f"write inside the container, {driver}", "storage", "MiB/s")
        for driver in STORAGE_DRIVERS
    ),
    Scenario("fs-host", storage.host_io, 10, "write in a host directory", "storage", "MiB/s"),
    Scenario("build-cold", build.build_cold, 3, "cold build, 10 steps, 5000-file context",
             "build", "s", "ratio <= 0.8"),
    Scenario("build-cached", build.build_cached, 5, "cached rebuild", "build", "s",
             "ratio <= 0.5"),
    Scenario("build-onefile", build.build_one_file, 3, "rebuild after one copied file changed",
             "build", "s", "ratio <= 0.8"),
    Scenario("api-run-rm", apiserve.run_rm, 10, "docker run --rm busybox true", "api", "s",
             "ratio <= 0.8"),
    Scenario("api-ps-100", apiserve.ps_many, 10, "docker ps -a with 100 containers", "api", "s",
             "ratio <= 0.8"),
    Scenario("api-concurrent-20", apiserve.concurrent_run, 5, "20 concurrent docker run -d",
             "api", "s", "ratio <= 0.8"),
]  # fmt: skip
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


def version(argv: list[str], keyword: str = "") -> str:
    """The first line of a ``--version`` output (the first naming ``keyword`` if given)."""
    try:
        lines = run_cmd(argv).strip().splitlines()
    except StepFailed as exc:
        return f"unknown ({exc})"
    lines = [line for line in lines if keyword in line] or lines
    return lines[0] if lines else "unknown"


def environment() -> dict[str, str]:
    """What the numbers were measured with; podman's store is checked to be overlay + crun."""
    podman = Tool("podman", Path(tempfile.mkdtemp(prefix="rctl-bench-info-", dir=Path.home())))
    fmt = "{{.Store.GraphDriverName}} {{.Host.OCIRuntime.Name}} {{.Host.NetworkBackend}}"
    try:
        driver, runtime, backend = podman.run("info", "--format", fmt).split()
        podman.reset()
    finally:
        shutil.rmtree(podman.root, ignore_errors=True)
    if (driver, runtime) != ("overlay", "crun"):
        raise StepFailed(f"podman uses {driver} and {runtime}, not overlay and crun")
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "tier": os.environ.get("RCTL_TESTHOST", "unknown"),
        "kernel": os.uname().release,
        "cpus": str(os.cpu_count()),
        "memory": f"{mem_kib // 1024} MiB",
        "rctl": version(["rctl", "--version"]),
        "podman": version(["podman", "--version"]),
        "podman store": f"{driver} (native overlay unless a row says fuse-overlayfs), "
        f"runtime {runtime}, network backend {backend}",
        "crun": version(["crun", "--version"]),
        "pasta": version(["dpkg-query", "-W", "-f", "passt ${Version}", "passt"]),
        "slirp4netns": version(["slirp4netns", "--version"]),
        "fuse-overlayfs": version(["fuse-overlayfs", "--version"], "fuse-overlayfs"),
        "iperf3": version(["iperf3", "--version"]),
        "default networks": "rctl: slirp4netns; podman 4.3 rootless: slirp4netns",
    }


def run_scenario(scenario: Scenario, rounds: int, work: Path) -> list[Result]:
    """The scenario's rows; if it fails as a whole, one row saying why."""
    say(f"{scenario.name} ({rounds} rounds)")
    start = time.monotonic()
    try:
        results = scenario.run(rounds, work)
    except StepFailed as exc:
        say(f"{scenario.name} could not run: {exc}")
        results = [not_run(scenario.title, scenario.group, scenario.unit, str(exc),
                           scenario.target)]  # fmt: skip
    except Exception as exc:  # a bug of the bench: keep the other scenarios' numbers
        traceback.print_exc()
        why = f"the bench failed: {type(exc).__name__}: {exc}"
        results = [not_run(scenario.title, scenario.group, scenario.unit, why, scenario.target)]
    say(f"{scenario.name} took {time.monotonic() - start:.0f} s")
    return results


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, help="rounds for every scenario (default: each its own)"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="SCENARIO",
        help=f"run only these (repeat or comma-separate): {', '.join(BY_NAME)}",
    )
    parser.add_argument("--budget", type=float, default=1500,
                        help="seconds; scenarios that would start later are recorded as not run")  # fmt: skip
    args = parser.parse_args(argv)
    args.only = [name for item in args.only for name in item.split(",") if name]
    unknown = [name for name in args.only if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}; known: {', '.join(BY_NAME)}")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    started = time.monotonic()
    env = environment()
    results: list[Result] = []
    work = Path(tempfile.mkdtemp(prefix="rctl-bench-", dir=Path.home()))
    try:
        for scenario in chosen:
            if time.monotonic() - started > args.budget:
                why = f"the time budget ({args.budget:.0f} s) was spent before it started"
                results.append(not_run(scenario.title, scenario.group, scenario.unit, why,
                                       scenario.target))  # fmt: skip
                continue
            results += run_scenario(scenario, args.rounds or scenario.rounds, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    document = {
        "command": shlex.join(["python", "bench/bench.py", *argv]),
        "seconds": round(time.monotonic() - started),
        "environment": env,
        "results": [asdict(result) for result in results],
    }
    print(json.dumps(document, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
