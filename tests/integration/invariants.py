"""One check of everything rctl must leave consistent, whatever was interrupted.

:func:`violations` looks at a store (``Rctl.data``: images.json, blobs, layers, container
records), the user's ``rctl-*`` units, every process of the user (and of its subordinate
IDs) with its cgroup and mount table, and returns what is wrong, one line each:

- the store: images.json and each container.json readable; each image's manifest and
  config blobs and unpacked layers present; each container's image known; no container
  directory without a record (``ps -a`` can't show it, ``rm`` can't remove it);
- ``rctl ps -a`` exits 0 with JSON;
- units: every ``rctl-ID.service`` unit belongs to a container of the store;
- processes: every helper rctl starts (slirp4netns, pasta, fuse-overlayfs, crun, the relay,
  python -m rootless.*) lives in the cgroup of an active unit of a known container (or of
  the rootless network namespace's unit); nothing runs in a unit whose container is gone;
- mounts: no mount below the store in the host's mount namespace; none in any process
  outside a live container's unit.

Things that were there before (:func:`baseline`) are not counted: the test host runs
other tests' stores too. :func:`litter` lists what an interrupted command may leave and the
next one clears (partial downloads, unfinished unpacks, temporary record files).
Tests call :func:`assert_consistent` after anything; the chaos campaign after each kill.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from hostkit import Rctl

FULL_ID = re.compile(r"[0-9a-f]{64}")
UNIT_OF_CGROUP = re.compile(r"/(rctl-[^/]+\.service)(?:/|$)")
HELPERS = ("slirp4netns", "pasta", "passt", "fuse-overlayfs", "crun", "catatonit")
HELPER_ARGS = ("rootless.", "netns.", "uidmap.")


@dataclass(frozen=True, slots=True)
class Baseline:
    """What existed before the test: pids and units not to blame on it."""

    pids: frozenset[int] = frozenset()
    units: frozenset[str] = frozenset()


@dataclass(slots=True)
class Process:
    pid: int
    comm: str
    cmdline: str
    unit: str | None  # the rctl-*.service its cgroup is in
    pgid: int


@dataclass(slots=True)
class Snapshot:
    """The user's rctl units and processes at one moment."""

    units: dict[str, str] = field(default_factory=dict)  # name → active state
    processes: list[Process] = field(default_factory=list)


def list_units() -> dict[str, str]:
    out = subprocess.run(
        ["systemctl", "--user", "list-units", "rctl-*", "--all", "--no-legend", "--plain"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    units = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            units[fields[0]] = fields[2]
    return units


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode(errors="replace")
    except OSError:  # gone, or not ours to read
        return None


def user_processes() -> list[Process]:
    """Processes of this user or of its subordinate IDs (inside its user namespaces)."""
    me, found = os.getuid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        status = _read(f"/proc/{entry}/status")
        cgroup = _read(f"/proc/{entry}/cgroup")
        stat = _read(f"/proc/{entry}/stat")
        if status is None or cgroup is None or stat is None:
            continue
        uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M)[1])  # type: ignore[index]
        if uid != me and uid < 100000:
            continue
        if f"/user-{me}.slice/" not in cgroup:
            continue
        match = UNIT_OF_CGROUP.search(cgroup)
        cmdline = (_read(f"/proc/{entry}/cmdline") or "").replace("\0", " ").strip()
        fields = stat.rsplit(")", 1)[1].split()
        found.append(Process(int(entry), stat.split("(", 1)[1].rsplit(")", 1)[0], cmdline,
                             match[1] if match else None, int(fields[2])))  # fmt: skip
    return found


def snapshot() -> Snapshot:
    return Snapshot(list_units(), user_processes())


def baseline() -> Baseline:
    now = snapshot()
    return Baseline(frozenset(p.pid for p in now.processes), frozenset(now.units))


def _is_helper(proc: Process) -> bool:
    return proc.comm in HELPERS or any(
        f"-m {mod}" in proc.cmdline or f"python3 -I -m {mod}" in proc.cmdline for mod in HELPER_ARGS
    )


def _store_problems(data: Path) -> tuple[list[str], set[str]]:
    """Problems of the store's files, and the IDs of its container records."""
    problems: list[str] = []
    images: dict[str, dict[str, object]] = {}
    index = data / "images.json"
    if index.exists():
        try:
            images = {i["id"]: i for i in json.loads(index.read_text())["images"]}
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"images.json unreadable: {exc}")
    blobs = data / "blobs" / "sha256"
    for image_id, image in images.items():
        name = ",".join(image.get("names", ())) or image_id[:19]  # type: ignore[arg-type]
        for what, digest in (("manifest", image["manifest_digest"]), ("config", image_id)):
            if not (blobs / str(digest).removeprefix("sha256:")).is_file():
                problems.append(f"image {name}: {what} blob {str(digest)[:19]} missing")
        for layer in image["layers"]:  # type: ignore[attr-defined]
            chain = layer["chain_id"].removeprefix("sha256:")
            if not any((d / chain / "diff").is_dir() for d in (data / "layers").glob("*")):
                problems.append(f"image {name}: layer {chain[:12]} not unpacked")
    records: set[str] = set()
    containers = data / "containers"
    for path in sorted(containers.iterdir()) if containers.is_dir() else []:
        if not FULL_ID.fullmatch(path.name):
            continue
        try:
            record = json.loads((path / "container.json").read_text())
        except FileNotFoundError:
            problems.append(f"container directory {path.name[:12]} without container.json")
            continue
        except (OSError, ValueError) as exc:
            problems.append(f"container {path.name[:12]}: record unreadable: {exc}")
            continue
        records.add(path.name)
        if record.get("id") != path.name:
            problems.append(f"container {path.name[:12]}: record names {record.get('id')}")
        if images and record.get("image_id") not in images:
            problems.append(f"container {record.get('name')}: image {record.get('image_id')}"
                            " not in the store")  # fmt: skip
    return problems, records


def _mount_problems(data: Path, procs: list[Process], live_units: set[str]) -> list[str]:
    problems = []
    store = str(data.resolve())
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if point.startswith(store):
            problems.append(f"mount {point} in the host's mount namespace")
    for proc in procs:
        if proc.unit in live_units:
            continue
        table = _read(f"/proc/{proc.pid}/mountinfo") or ""
        for line in table.splitlines():
            if store in line.split()[4]:
                problems.append(f"mount {line.split()[4]} held by {proc.comm}[{proc.pid}]"
                                f" outside a live container")  # fmt: skip
                break
    return problems


def violations(rctl: Rctl, before: Baseline = Baseline()) -> list[str]:
    """Everything wrong now with ``rctl``'s store and the user's rctl units and processes."""
    problems, records = _store_problems(rctl.data)
    ps = rctl("ps", "-a", "--format", "json", check=False)
    if ps.returncode != 0:
        problems.append(f"rctl ps -a exited {ps.returncode}: {ps.stderr.strip()[-300:]}")
    else:
        try:
            json.loads(ps.stdout or "[]")
        except ValueError:
            problems.append(f"rctl ps -a printed no JSON: {ps.stdout[:200]!r}")
    now = snapshot()
    container_units = {f"rctl-{i}.service" for i in records}
    for unit, state in now.units.items():
        cid = unit.removeprefix("rctl-").removesuffix(".service")
        if unit in before.units or not FULL_ID.fullmatch(cid):
            continue
        if unit not in container_units:
            problems.append(f"unit {unit[:17]}… ({state}) of no container")
    live = {u for u, s in now.units.items() if s in ("active", "activating", "deactivating")}
    live_ours = {u for u in live if u in container_units or not u.startswith("rctl-") or
                 not FULL_ID.fullmatch(u[5:-8])}  # fmt: skip
    for proc in now.processes:
        if proc.pid in before.pids or proc.unit in before.units:  # another store's
            continue
        if proc.unit is not None and proc.unit not in live_ours:
            problems.append(f"{proc.comm}[{proc.pid}] runs in {proc.unit[:17]}…, not a live "
                            "container's unit")  # fmt: skip
        elif proc.unit is None and _is_helper(proc):
            problems.append(f"{proc.comm}[{proc.pid}] ({proc.cmdline[:80]}) outside any unit")
    fresh = [p for p in now.processes if p.pid not in before.pids and p.unit not in before.units]
    problems += _mount_problems(rctl.data, fresh, live_ours)
    return problems


def litter(rctl: Rctl) -> list[str]:
    """What an interrupted command may leave for the next one to clear (not a violation)."""
    data = rctl.data
    found = [str(p.relative_to(data)) for p in (data / "blobs" / "partial").glob("*")]
    found += [str(p.relative_to(data)) for p in (data / "layers").glob("*/.tmp-*")]
    found += [str(p.relative_to(data)) for p in data.glob(".images-*")]
    found += [str(p.relative_to(data)) for p in data.glob("containers/*/.container-*")]
    return found


def assert_consistent(rctl: Rctl, before: Baseline = Baseline()) -> None:
    problems = violations(rctl, before)
    assert not problems, "inconsistent after the test:\n" + "\n".join(problems)
