"""rctl against podman, side by side, in the test host (run as rctltest inside it).

Each scenario runs rctl and podman interleaved (A B A B ...) after a warm-up round and
reports the median and spread of each and the ratio rctl/podman. Machines here are noisy,
so only ratios measured in one run, in one tier, are comparable. ``make bench`` runs this in
the nspawn tier and writes ``bench/results.json`` and ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

REG = "127.0.0.1:5000"


@dataclass
class Result:
    name: str
    unit: str
    rctl: float | None
    podman: float | None
    ratio: float | None
    rounds: int
    tier: str
    date: str
    rctl_spread: float | None = None
    podman_spread: float | None = None
    target: str = ""
    note: str = ""


def sh(*argv: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Tool:
    """A store of its own for one tool, emptied between rounds."""

    def __init__(self, name: str, root: Path) -> None:
        self.name, self.root = name, root
        self.env = {
            **os.environ,
            "XDG_DATA_HOME": str(root / "data"),
            "XDG_CONFIG_HOME": str(root / "config"),
        }

    def argv(self, *args: str) -> list[str]:
        if self.name == "podman":
            return [
                "podman",
                "--root",
                str(self.root / "storage"),
                "--runroot",
                str(self.root / "run"),
                *args,
            ]
        return ["rctl", *args]

    def run(self, *args: str) -> None:
        sh(*self.argv(*args), env=self.env)

    def reset(self) -> None:
        if self.name == "podman" and self.root.exists():
            # podman keeps its storage mounted; let it unmount and delete what it made.
            subprocess.run([*self.argv("system", "reset", "-f")], check=False, env=self.env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        if self.root.exists():
            unshare = ["podman", "unshare"] if self.name == "podman" else ["rctl", "unshare"]
            subprocess.run([*unshare, "rm", "-rf", str(self.root)], check=False, env=self.env)
        self.root.mkdir(parents=True, exist_ok=True)
        # Deleting a store leaves its writeback to the disk: let it land before the next
        # timed run, whichever tool that is, rather than slow it down.
        os.sync()


def measure(
    rounds: int, steps: dict[str, tuple[Callable[[], None], Callable[[], None]]]
) -> dict[str, list[float]]:
    """Interleave the tools: for each round, each tool's (setup, timed action)."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for index in range(rounds + 1):  # round 0 is the warm-up
        for name, (setup, action) in steps.items():
            setup()
            start = time.perf_counter()
            action()
            if index:
                times[name].append(time.perf_counter() - start)
    return times


def summarize(
    name: str, unit: str, times: dict[str, list[float]], tier: str, target: str
) -> Result:
    med = {k: statistics.median(v) for k, v in times.items()}
    spread = {k: (max(v) - min(v)) for k, v in times.items()}
    return Result(
        name=name, unit=unit, rctl=med["rctl"], podman=med["podman"], ratio=med["rctl"] / med["podman"],
        rounds=len(times["rctl"]), tier=tier, date=datetime.date.today().isoformat(),
        rctl_spread=spread["rctl"], podman_spread=spread["podman"], target=target,
    )  # fmt: skip


def pull_cold(image: str, rounds: int, tier: str, work: Path) -> Result:
    tools = {name: Tool(name, work / name) for name in ("rctl", "podman")}
    steps = {
        name: (tool.reset, lambda tool=tool: tool.run("pull", "-q", f"{REG}/{image}"))  # type: ignore[misc]
        for name, tool in tools.items()
    }
    times = measure(rounds, steps)
    for tool in tools.values():
        tool.reset()
    return summarize(f"cold pull {image}", "s", times, tier, "<= 0.8")


def pull_warm(image: str, rounds: int, tier: str, work: Path) -> Result:
    tools = {name: Tool(name, work / name) for name in ("rctl", "podman")}
    for tool in tools.values():
        tool.reset()
        tool.run("pull", "-q", f"{REG}/{image}")
    steps = {
        name: (lambda: None, lambda tool=tool: tool.run("pull", "-q", f"{REG}/{image}"))  # type: ignore[misc]
        for name, tool in tools.items()
    }
    times = measure(rounds, steps)
    for tool in tools.values():
        tool.reset()
    return summarize(f"warm pull {image}", "s", times, tier, "")


def run_rm(rounds: int, tier: str, work: Path) -> Result:
    """``run --rm test/busybox true`` wall time, the image already present."""
    tools = {name: Tool(name, work / name) for name in ("rctl", "podman")}
    for tool in tools.values():
        tool.reset()
        tool.run("pull", "-q", f"{REG}/test/busybox")
    steps = {
        name: (
            lambda: None,
            lambda tool=tool: tool.run("run", "--rm", f"{REG}/test/busybox", "true"),
        )  # type: ignore[misc]
        for name, tool in tools.items()
    }
    times = measure(rounds, steps)
    for tool in tools.values():
        tool.reset()
    return summarize("run --rm test/busybox true", "s", times, tier, "<= 0.5")


def pids_of_user() -> set[int]:
    return {
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and p.stat().st_uid == os.getuid()
    }


def rss_kib(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def container_pids(tool: Tool) -> set[int]:
    """Processes inside containers (their own): those in a child PID namespace of ours."""
    own = os.readlink("/proc/self/ns/pid")
    found = set()
    for pid in pids_of_user():
        try:
            if os.readlink(f"/proc/{pid}/ns/pid") != own:
                found.add(pid)
        except OSError:
            continue
    return found


def idle_rss(rounds: int, tier: str, work: Path, count: int = 20) -> Result:
    """Extra RSS per idle ``run -d`` container: every process of the user that is not a
    container's own and did not exist before, summed, divided by the number of containers."""
    results: dict[str, list[float]] = {"rctl": [], "podman": []}
    for name in ("rctl", "podman"):
        tool = Tool(name, work / name)
        tool.reset()
        tool.run("pull", "-q", f"{REG}/test/busybox")
        before = pids_of_user()
        for _ in range(count):
            tool.run("run", "-d", f"{REG}/test/busybox", "sleep", "600")
        time.sleep(2)
        extra = pids_of_user() - before - container_pids(tool)
        results[name].append(rss_kib(extra) / count)
        subprocess.run(
            [*tool.argv("rm", "-f", "-a" if name == "podman" else "--all")],
            env=tool.env,
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if name == "rctl":
            ids = subprocess.run(
                tool.argv("ps", "-aq"), env=tool.env, capture_output=True, text=True, check=False
            ).stdout.split()
            if ids:
                subprocess.run(
                    tool.argv("rm", "-f", *ids),
                    env=tool.env,
                    check=False,
                    stdout=subprocess.DEVNULL,
                )
        tool.reset()
    return summarize(
        f"extra RSS per idle container ({count} running)", "KiB", results, tier, "<= 0.3"
    )


SCENARIOS: dict[str, Callable[[int, str, Path], Result]] = {
    "run-rm": run_rm,
    "idle-rss": idle_rss,
    "pull-debian": lambda r, t, w: pull_cold("test/debian", r, t, w),
    "pull-big": lambda r, t, w: pull_cold("test/big", r, t, w),
    "pull-warm": lambda r, t, w: pull_warm("test/debian", r, t, w),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("bench/out/results.json"))
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    args = parser.parse_args()
    tier = os.environ.get("RCTL_TESTHOST", "unknown")
    results = []
    work = Path(tempfile.mkdtemp(prefix="rctl-bench-", dir=Path.home()))
    try:
        for name in args.scenarios:
            print(f"bench: {name} ({args.rounds} rounds)", flush=True)
            try:
                result = SCENARIOS[name](args.rounds, tier, work)
            except subprocess.CalledProcessError as exc:
                reason = (
                    exc.stderr.decode(errors="replace").strip().splitlines()[-1:]
                    if exc.stderr
                    else []
                )
                result = Result(name, "s", None, None, None, 0, tier, datetime.date.today().isoformat(),
                                note=f"could not run: {' '.join(exc.cmd[:3])}...: {' '.join(reason)}")  # fmt: skip
            print(json.dumps(asdict(result)), flush=True)
            results.append(asdict(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
