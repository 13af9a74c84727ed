"""What every scenario shares: the two tools with stores of their own, interleaved rounds,
and the result rows.

A :class:`Tool` is rctl or podman pointed at a private store under the bench's work
directory, with a storage driver chosen per scenario (rctl through its ``rctl.toml``, podman
through ``--storage-driver``), and crun as the OCI runtime for both. :func:`measure` runs
each tool's step in turn, round after round (A B A B ...), after an untimed warm-up round;
a tool that fails is dropped from the rest of the rounds and the reason kept, so one broken
tool never hides the other's numbers (a scenario that can't run says why).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

REG = "127.0.0.1:5000"
TOOLS = ("rctl", "podman")
STORAGE_DRIVERS = ("overlay", "fuse-overlayfs", "vfs")
FUSE_OVERLAYFS = "/usr/bin/fuse-overlayfs"

Better = Literal["lower", "higher"]
Sample = dict[str, float]  # one round's numbers for one tool, by metric name


def say(message: str) -> None:
    """Progress goes to stderr: stdout carries only the final JSON document."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


class StepFailed(Exception):
    """A command of a scenario failed; the message is the command and its last stderr line."""


def run_cmd(
    argv: list[str],
    env: dict[str, str] | None = None,
    *,
    stdin: bytes | None = None,
    timeout: float = 600,
) -> str:
    """Run a program, return its stdout; a failure raises StepFailed saying what and why."""
    try:
        proc = subprocess.run(
            argv,
            env=env,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise StepFailed(f"{shlex.join(argv[:6])}: timed out after {timeout:.0f}s") from exc
    except FileNotFoundError as exc:
        raise StepFailed(f"{argv[0]} is not installed") from exc
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        reason = lines[-1] if lines else f"exit status {proc.returncode}"
        raise StepFailed(f"`{shlex.join(short_argv(argv))}` failed: {reason}")
    return proc.stdout.decode(errors="replace")


def short_argv(argv: list[str]) -> list[str]:
    """A command line without podman's store flags, for notes people read."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--root", "--runroot", "--storage-driver", "--storage-opt", "--runtime"):
            skip = True
            continue
        out.append(arg)
    return out


class Tool:
    """rctl or podman with a store of its own under ``root`` and a chosen storage driver."""

    def __init__(self, name: str, root: Path, driver: str = "overlay") -> None:
        self.name, self.root, self.driver = name, root, driver
        self.env = {
            **os.environ,
            "XDG_DATA_HOME": str(root / "data"),
            "XDG_CONFIG_HOME": str(root / "config"),
        }
        # podman's run root is on tmpfs by default ($XDG_RUNTIME_DIR/containers): keep it there.
        runtime = os.environ.get("XDG_RUNTIME_DIR", "/tmp")
        # (podman refuses a run root longer than 50 characters: a short name from the path)
        self.runroot = Path(runtime) / f"rb-{zlib.crc32(str(root).encode()):08x}"

    def argv(self, *args: str) -> list[str]:
        """The command line for ``args`` (podman gets its store, driver and runtime flags)."""
        if self.name == "rctl":
            return ["rctl", *args]
        driver = ["--storage-driver", "vfs" if self.driver == "vfs" else "overlay"]
        if self.driver == "fuse-overlayfs":
            # podman has no driver of that name: it is overlay with a mount program.
            driver += ["--storage-opt", f"overlay.mount_program={FUSE_OVERLAYFS}"]
        store = ["--root", str(self.root / "storage"), "--runroot", str(self.runroot)]
        return ["podman", *store, *driver, "--runtime", "crun", *args]

    def run(self, *args: str, stdin: bytes | None = None, timeout: float = 600) -> str:
        """Run a subcommand; returns its stdout."""
        return run_cmd(self.argv(*args), self.env, stdin=stdin, timeout=timeout)

    def configure(self) -> None:
        """rctl's settings file: the driver and crun (podman gets flags instead)."""
        if self.name != "rctl":
            return
        config = self.root / "config" / "rctl"
        config.mkdir(parents=True, exist_ok=True)
        (config / "rctl.toml").write_text(
            f'[storage]\ndriver = "{self.driver}"\n\n[engine]\nruntime = "crun"\n'
        )

    def container_ids(self) -> list[str]:
        """Every container of this store, running or not."""
        return self.run("ps", "-aq").split()

    def remove_containers(self) -> None:
        """``rm -f`` every container, in batches of 10 and two batches at a time (untimed
        clean-up, made shorter so that the rounds fit the time budget)."""
        ids = self.container_ids()
        batches = [ids[start : start + 10] for start in range(0, len(ids), 10)]
        with ThreadPoolExecutor(max_workers=2) as pool:
            # podman's rm -f first waits 10 s for a SIGTERM the idle sleeps ignore (rctl
            # kills at once): -t 0 makes both SIGKILL.
            rm = ("rm", "-f", "-t", "0") if self.name == "podman" else ("rm", "-f")
            for future in [pool.submit(self.run, *rm, *batch) for batch in batches]:
                with contextlib.suppress(StepFailed):
                    future.result()
        left = self.container_ids()
        if left:
            raise StepFailed(f"{len(left)} containers left after rm -f")

    def reset(self) -> None:
        """An empty store: containers removed, images and layers deleted, settings written."""
        if self.root.exists():
            with contextlib.suppress(StepFailed):
                self.remove_containers()
            if self.name == "podman":
                # podman keeps its storage mounted; let it unmount and delete what it made.
                with contextlib.suppress(StepFailed):
                    self.run("system", "reset", "-f")
            # Files owned by subordinate IDs need the user namespace to be deleted.
            unshare = ["podman", "unshare"] if self.name == "podman" else ["rctl", "unshare"]
            subprocess.run([*unshare, "rm", "-rf", str(self.root)], env=self.env, check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        shutil.rmtree(self.runroot, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self.configure()
        # Deleting a store leaves its writeback to the disk: let it land before the next
        # timed step, whichever tool that is, rather than slow that one down.
        os.sync()

    def pull(self, image: str) -> None:
        """Pull an image of the local registry (untimed preparation)."""
        self.run("pull", "-q", f"{REG}/{image}")


def make_tools(work: Path, scenario: str, driver: str = "overlay") -> dict[str, Tool]:
    """Both tools with fresh, empty stores for one scenario."""
    tools = {name: Tool(name, work / scenario / name, driver) for name in TOOLS}
    for tool in tools.values():
        tool.reset()
    return tools


@contextlib.contextmanager
def scenario_tools(work: Path, scenario: str, driver: str = "overlay") -> Iterator[dict[str, Tool]]:
    """Fresh stores for a scenario, emptied again (containers too) whatever happens."""
    tools = make_tools(work, scenario, driver)
    try:
        yield tools
    finally:
        for tool in tools.values():
            tool.reset()
            shutil.rmtree(tool.root, ignore_errors=True)


def timed(action: Callable[[], object]) -> Callable[[], Sample]:
    """A step whose number is its wall time in seconds."""

    def step() -> Sample:
        start = time.perf_counter()
        action()
        return {"time": time.perf_counter() - start}

    return step


@dataclass
class Step:
    """One tool's part of a round: untimed setup, the measured action, untimed teardown."""

    action: Callable[[], Sample]
    setup: Callable[[], None] = lambda: None
    teardown: Callable[[], None] = lambda: None


@dataclass
class Samples:
    """Each tool's numbers over the rounds, by metric, and why a tool stopped if it did."""

    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def of(self, tool: str, metric: str) -> list[float]:
        return self.values.get(tool, {}).get(metric, [])


def measure(rounds: int, steps: dict[str, Step], *, warmup: bool = True) -> Samples:
    """Interleave the tools: for each round, each tool's setup, action and teardown in turn.

    Round 0 is the warm-up (not kept) when ``warmup``. A tool whose step raises StepFailed
    is skipped for the remaining rounds and the failure kept as its reason.
    """
    samples = Samples({name: {} for name in steps})
    first = 0 if warmup else 1
    for index in range(first, rounds + 1):
        for name, step in steps.items():
            if name in samples.failed:
                continue
            try:
                step.setup()
                sample = step.action()
                begun = time.monotonic()
                step.teardown()
                if time.monotonic() - begun > 5:
                    say(f"  {name}: teardown took {time.monotonic() - begun:.0f} s")
            except StepFailed as exc:
                samples.failed[name] = str(exc)
                say(f"  {name}: {exc}")
                with contextlib.suppress(StepFailed):
                    step.teardown()
                continue
            if index:
                for metric, value in sample.items():
                    samples.values[name].setdefault(metric, []).append(value)
        shown = ", ".join(
            f"{name} {', '.join(f'{m}={v[-1]:.3g}' for m, v in metrics.items() if v)}"
            for name, metrics in samples.values.items()
        )
        say(f"  round {index}{' (warm-up)' if not index else ''}: {shown}")
    return samples


@dataclass
class Result:
    """One row of results.json and of the table in RESULTS.md."""

    name: str
    group: str
    unit: str
    rctl: float | None
    podman: float | None
    ratio: float | None
    rounds: int
    tier: str
    date: str
    better: Better = "lower"
    rctl_spread: float | None = None  # max - min over the rounds
    podman_spread: float | None = None
    target: str = ""  # e.g. "ratio <= 0.5", "ratio >= 0.95", "rctl <= 0.3"
    met: bool | None = None
    baseline: float | None = None  # storage rows: the same work in a plain host directory
    baseline_spread: float | None = None
    note: str = ""


def tier() -> str:
    return os.environ.get("RCTL_TESTHOST", "unknown")


def today() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def target_met(target: str, rctl: float | None, ratio: float | None) -> bool | None:
    """Whether a target such as ``ratio <= 0.5`` or ``rctl <= 0.3`` holds (None: unknown)."""
    if not target:
        return None
    subject, op, bound = target.split()
    value = ratio if subject == "ratio" else rctl
    if value is None:
        return None
    return value <= float(bound) if op == "<=" else value >= float(bound)


def summarize(
    name: str,
    group: str,
    unit: str,
    samples: Samples,
    metric: str = "time",
    *,
    target: str = "",
    better: Better = "lower",
    scale: float = 1.0,
    note: str = "",
) -> Result:
    """Medians, spreads and the ratio of one metric; failures become the note."""
    med: dict[str, float | None] = {}
    spread: dict[str, float | None] = {}
    rounds = 0
    for tool in TOOLS:
        values = [v * scale for v in samples.of(tool, metric)]
        med[tool] = statistics.median(values) if values else None
        spread[tool] = (max(values) - min(values)) if values else None
        rounds = max(rounds, len(values))
    notes = [note] if note else []
    notes += [f"{tool} could not run: {why}" for tool, why in samples.failed.items()]
    rctl, podman = med["rctl"], med["podman"]
    ratio = rctl / podman if rctl is not None and podman else None
    return Result(
        name=name, group=group, unit=unit, rctl=rctl, podman=podman, ratio=ratio,
        rounds=rounds, tier=tier(), date=today(), better=better,
        rctl_spread=spread["rctl"], podman_spread=spread["podman"], target=target,
        met=target_met(target, rctl, ratio), note="; ".join(notes),
    )  # fmt: skip


def phases_note(samples: Samples, phases: tuple[str, ...]) -> str:
    """Each tool's median per phase, e.g. ``rctl run -d 0.41 s, stop 1.2 s``."""
    parts = []
    for tool in TOOLS:
        times = [
            f"{phase} {statistics.median(samples.of(tool, phase)):.2f} s"
            for phase in phases
            if samples.of(tool, phase)
        ]
        if times:
            parts.append(f"{tool} {', '.join(times)}")
    return "; ".join(parts)


def not_run(name: str, group: str, unit: str, why: str, target: str = "") -> Result:
    """A row for a scenario that could not run at all, saying why."""
    return Result(name, group, unit, None, None, None, 0, tier(), today(), target=target,
                  note=f"not run: {why}")  # fmt: skip
