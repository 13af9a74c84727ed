"""Extra memory per idle container: what a tool leaves running on the host per container.

With 20 idle ``run -d test/busybox sleep 3600`` containers, every process of the user that
did not exist before they started and is not a container's own is summed (VmRSS, and PSS
for the record) and divided by 20. A process is a container's own when it lives in another
PID namespace *and* under another root directory than the bench (the container's payload,
or an init bind-mounted into it); helpers such as conmon, crun, pasta or slirp4netns run in
the host's PID namespace and root, so they count, whichever tool started them. Processes
that existed before the first container (podman's pause process, the user's systemd) do not.

Measured three times: with each tool's default network (slirp4netns for both, one per
container); on a bridge network each tool creates (one network namespace and one helper
for all of the user's containers on it: the model a shared default network would have);
and with ``--network none``, where what remains per container is the supervision alone:
podman's conmon, and for rctl nothing (systemd supervises the container's own process).
"""

from __future__ import annotations

import os
import time
from collections import Counter
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
    scenario_tools,
    summarize,
)

GROUP = "memory"


def user_pids() -> set[int]:
    """Every process of this user."""
    uid = os.getuid()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                found.add(int(entry.name))
        except OSError:
            continue
    return found


def same_file(a: str, b: str) -> bool:
    first, second = os.stat(a), os.stat(b)
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def is_container_own(pid: int) -> bool:
    """Whether ``pid`` runs inside a container: another PID namespace and another root."""
    try:
        if os.readlink(f"/proc/{pid}/ns/pid") == os.readlink("/proc/self/ns/pid"):
            return False
    except OSError:
        return False
    try:
        return not same_file(f"/proc/{pid}/root", "/proc/self/root")
    except OSError:
        return True  # its root can't be looked at from here: a container's


def status_kib(pid: int, field: str, path: str = "status") -> int:
    """A ``KiB`` field of /proc/PID/status (or smaps_rollup); 0 if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/{path}").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


# Per tool, the helper processes of the last round: how many of each, and their KiB of RSS.
Seen = dict[str, tuple[Counter[str], Counter[str]]]


def idle_containers(tool: Tool, count: int, seen: Seen, options: tuple[str, ...]) -> Sample:
    """Start ``count`` idle containers; the helpers' RSS and PSS per container in KiB."""
    before = user_pids()
    for _ in range(count):
        tool.run("run", "-d", *options, f"{REG}/test/busybox", "sleep", "3600")
    running = len(tool.run("ps", "-q").split())
    if running != count:
        raise StepFailed(f"{running} of {count} containers running")
    time.sleep(2)  # let the commands that started them exit
    extra = {pid for pid in user_pids() - before if not is_container_own(pid)}
    rss = {pid: status_kib(pid, "VmRSS") for pid in extra}
    names = {pid: comm(pid) for pid in extra}
    kib: Counter[str] = Counter()
    for pid, value in rss.items():
        kib[names[pid]] += value
    seen[tool.name] = (Counter(names.values()), kib)
    return {
        "rss": sum(rss.values()) / count,
        "pss": sum(status_kib(pid, "Pss", "smaps_rollup") for pid in extra) / count,
    }


def idle_rss(
    rounds: int, work: Path, count: int = 20, network: str = "", *, bridge: bool = False
) -> list[Result]:
    """Extra RSS (and PSS) per idle container with ``count`` running (on ``network``, or
    each tool's default). ``bridge``: ``network`` is a bridge network each tool creates
    first (one namespace and one helper for all the user's containers on it)."""
    seen: Seen = {}
    options = ("--network", network) if network else ()
    with scenario_tools(work, "idle") as tools:
        for tool in tools.values():
            tool.pull("test/busybox")
            if bridge:
                tool.run("network", "create", network)
        steps = {
            name: Step(
                partial(idle_containers, tool, count, seen, options),
                teardown=tool.remove_containers,
            )
            for name, tool in tools.items()
        }
        samples = measure(rounds, steps, warmup=False)
    counted = "; ".join(
        f"{name} counted "
        + (
            ", ".join(
                f"{n} {proc} ({kib[proc] / n / 1024:.1f} MiB RSS each)"
                for proc, n in sorted(procs.items())
            )
            or "no process besides the containers' own"
        )
        for name, (procs, kib) in seen.items()
    )
    where = f", --network {network}" if network else ""
    rss = summarize(
        f"extra RSS per idle container ({count} running{where})", GROUP, "KiB", samples, "rss",
        target="ratio <= 0.3", note=counted or "no extra process",
    )  # fmt: skip
    pss = summarize(
        f"extra PSS per idle container ({count} running{where})", GROUP, "KiB", samples, "pss",
        note="PSS shares each library page among the processes mapping it",
    )  # fmt: skip
    return [rss, pss]
