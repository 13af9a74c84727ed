"""``rctl stats``: a container's resource use, read from its unit's cgroup and its network
namespace, as docker's stats document (``GET /containers/{id}/stats``).

The container runs in the cgroup of its unit ``rctl-ID.service`` (cgroup v2, under the
user manager's delegated subtree; crun makes no cgroup of its own there), so the unit's
files are the container's: ``cpu.stat`` (always there), ``memory.current``/``memory.max``/
``memory.stat``, ``io.stat`` and ``pids.current``/``pids.max`` (there when the user's
manager was delegated those controllers: see ``rctl info``'s Cgroup Controllers). Without
the memory controller the usage is the sum of the processes' resident sets; without the
pids controller the count of the cgroup's threads; without io, the processes' own
``/proc/PID/io`` counters. Network counters come from ``/proc/PID/net/dev`` of the
container's first process: its namespace's interfaces, loopback left out, as docker's.

CPU % is docker's: the container's CPU time over the host's (``/proc/stat``) between two
samples, times the CPUs online.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rctlbase.errors import ConflictError, NotFoundError
from rootless.timestamps import rfc3339_from_ns

if TYPE_CHECKING:
    from rootless.containers.record import ContainerRecord
    from rootless.containers.service import ContainerService
    from units.state import UnitState

CGROUP_ROOT = Path("/sys/fs/cgroup")
NANO = 1_000_000_000
# A cgroup's subtree is walked for processes; a container with more is still counted, but
# its resident set and I/O only over the first ones (each costs a few file reads).
PROCESS_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class CpuSample:
    """CPU time of the container and of the host, in nanoseconds."""

    total_ns: int = 0
    user_ns: int = 0
    kernel_ns: int = 0
    system_ns: int = 0  # the host's, all CPUs (docker's system_cpu_usage)
    online_cpus: int = 0

    def to_docker(self) -> dict[str, Any]:
        return {
            "cpu_usage": {
                "total_usage": self.total_ns,
                "usage_in_kernelmode": self.kernel_ns,
                "usage_in_usermode": self.user_ns,
            },
            "system_cpu_usage": self.system_ns,
            "online_cpus": self.online_cpus,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        }


@dataclass(frozen=True, slots=True)
class NetCounters:
    """One interface's counters (``/proc/net/dev``)."""

    name: str
    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0

    def to_docker(self) -> dict[str, int]:
        return {
            "rx_bytes": self.rx_bytes, "rx_packets": self.rx_packets,
            "rx_errors": self.rx_errors, "rx_dropped": self.rx_dropped,
            "tx_bytes": self.tx_bytes, "tx_packets": self.tx_packets,
            "tx_errors": self.tx_errors, "tx_dropped": self.tx_dropped,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class ContainerStats:
    """One reading of a container's use; ``precpu`` is the reading before (docker's
    ``precpu_stats``), for the CPU %."""

    id: str
    name: str
    read_ns: int = 0  # wall clock
    running: bool = False
    cpu: CpuSample = field(default_factory=CpuSample)
    precpu: CpuSample = field(default_factory=CpuSample)
    preread_ns: int = 0
    memory_usage: int = 0
    memory_limit: int = 0
    memory_stats: tuple[tuple[str, int], ...] = ()
    pids: int = 0
    pids_limit: int = 0
    block_read: int = 0
    block_write: int = 0
    networks: tuple[NetCounters, ...] = ()

    def cpu_percent(self) -> float:
        """docker's CPU %: the container's share of the host's CPU time since the reading
        before, times the CPUs online (100% is one CPU busy)."""
        cpu_delta = self.cpu.total_ns - self.precpu.total_ns
        system_delta = self.cpu.system_ns - self.precpu.system_ns
        if cpu_delta <= 0 or system_delta <= 0 or not self.precpu.system_ns:
            return 0.0
        return cpu_delta / system_delta * max(self.cpu.online_cpus, 1) * 100.0

    def memory_used(self) -> int:
        """docker's MEM USAGE on cgroup v2: the usage without the inactive page cache."""
        inactive = dict(self.memory_stats).get("inactive_file", 0)
        return self.memory_usage - inactive if inactive < self.memory_usage else self.memory_usage

    def memory_percent(self) -> float:
        return self.memory_used() / self.memory_limit * 100.0 if self.memory_limit else 0.0

    def net_io(self) -> tuple[int, int]:
        """Bytes received and sent, over every interface."""
        return (sum(n.rx_bytes for n in self.networks), sum(n.tx_bytes for n in self.networks))

    def to_docker(self) -> dict[str, Any]:
        """docker's stats document (``types.StatsJSON``)."""
        blkio = [
            {"major": 0, "minor": 0, "op": op, "value": value}
            for op, value in (("read", self.block_read), ("write", self.block_write))
        ]
        return {
            "read": rfc3339_from_ns(self.read_ns),
            "preread": rfc3339_from_ns(self.preread_ns),
            "pids_stats": {"current": self.pids, **({"limit": self.pids_limit}
                                                     if self.pids_limit else {})},
            "blkio_stats": {"io_service_bytes_recursive": blkio if self.running else None},
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": self.cpu.to_docker(),
            "precpu_stats": self.precpu.to_docker(),
            "memory_stats": {"usage": self.memory_usage, "limit": self.memory_limit,
                             "stats": dict(self.memory_stats)} if self.running else {},
            "name": "/" + self.name,
            "id": self.id,
            "networks": {n.name: n.to_docker() for n in self.networks},
        }  # fmt: skip


# -- parsers (pure) ----------------------------------------------------------------------


def parse_flat_keyed(text: str) -> dict[str, int]:
    """A cgroup flat-keyed file (``cpu.stat``, ``memory.stat``): ``key value`` lines."""
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            found[key] = int(value)
    return found


def parse_limit(text: str) -> int:
    """``memory.max``/``pids.max``: a number, or 0 for ``max`` (no limit)."""
    value = text.strip()
    return int(value) if value.isdigit() else 0


def parse_io_stat(text: str) -> tuple[int, int]:
    """``io.stat``: bytes read and written, over every device."""
    read = written = 0
    for line in text.splitlines():
        for item in line.split()[1:]:
            key, _, value = item.partition("=")
            if value.isdigit():
                if key == "rbytes":
                    read += int(value)
                elif key == "wbytes":
                    written += int(value)
    return read, written


def parse_proc_io(text: str) -> tuple[int, int]:
    """``/proc/PID/io``: bytes the process made the storage read and write."""
    values = parse_flat_keyed(text.replace(":", ""))
    return values.get("read_bytes", 0), values.get("write_bytes", 0)


def parse_rss(status: str) -> int:
    """``VmRSS`` of ``/proc/PID/status``, in bytes."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            parts = line.split()
            return int(parts[1]) * 1024 if len(parts) > 1 and parts[1].isdigit() else 0
    return 0


def parse_net_dev(text: str) -> tuple[NetCounters, ...]:
    """``/proc/PID/net/dev``: every interface but loopback."""
    found = []
    for line in text.splitlines()[2:]:
        name, colon, rest = line.partition(":")
        fields = rest.split()
        name = name.strip()
        if not colon or name == "lo" or len(fields) < 12 or not all(f.isdigit() for f in fields):
            continue
        n = [int(f) for f in fields]
        found.append(NetCounters(name, n[0], n[1], n[2], n[3], n[8], n[9], n[10], n[11]))
    return tuple(found)


def parse_proc_stat(text: str, ticks: int) -> int:
    """The host's CPU time in nanoseconds (``/proc/stat``'s ``cpu`` line, idle and
    iowait included), as docker's system_cpu_usage."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            total = sum(int(f) for f in line.split()[1:8] if f.isdigit())
            return total * NANO // max(ticks, 1)
    return 0


# -- reading a container -----------------------------------------------------------------


def _read(path: Path | str) -> str | None:
    try:
        with open(path) as file:
            return file.read()
    except (OSError, UnicodeDecodeError):
        return None


def cgroup_processes(cgroup: Path, limit: int = PROCESS_LIMIT) -> list[int]:
    """PIDs in the cgroup and below it (at most ``limit``)."""
    pids: list[int] = []
    for directory, _, _ in os.walk(cgroup):
        text = _read(os.path.join(directory, "cgroup.procs")) or ""
        pids += [int(p) for p in text.split() if p.isdigit()]
        if len(pids) >= limit:
            return pids[:limit]
    return pids


def count_threads(cgroup: Path) -> int:
    return sum(
        len((_read(os.path.join(d, "cgroup.threads")) or "").split()) for d, _, _ in os.walk(cgroup)
    )


def host_cpu(proc: Path = Path("/proc")) -> tuple[int, int]:
    """The host's CPU time (ns) and the CPUs online."""
    ticks = os.sysconf("SC_CLK_TCK")
    return parse_proc_stat(_read(proc / "stat") or "", ticks), os.cpu_count() or 1


def sample(
    record_id: str,
    name: str,
    cgroup: Path,
    init_pid: int | None,
    host_memory: int,
    proc: Path = Path("/proc"),
) -> ContainerStats:
    """A reading of the running container whose unit's cgroup is ``cgroup``."""
    cpu = parse_flat_keyed(_read(cgroup / "cpu.stat") or "")
    system_ns, cpus = host_cpu(proc)
    pids = cgroup_processes(cgroup)
    memory = _read(cgroup / "memory.current")
    memory_stats: Mapping[str, int] = {}
    if memory is not None and memory.strip().isdigit():
        usage = int(memory)
        memory_stats = parse_flat_keyed(_read(cgroup / "memory.stat") or "")
        limit = parse_limit(_read(cgroup / "memory.max") or "")
    else:
        usage = sum(parse_rss(_read(proc / str(pid) / "status") or "") for pid in pids)
        limit = 0
    io = _read(cgroup / "io.stat")
    if io is not None:
        block = parse_io_stat(io)
    else:
        each = [parse_proc_io(_read(proc / str(pid) / "io") or "") for pid in pids]
        block = (sum(r for r, _ in each), sum(w for _, w in each))
    pids_current = _read(cgroup / "pids.current")
    tasks = int(pids_current) if pids_current and pids_current.strip().isdigit() else None
    networks = parse_net_dev(_read(proc / str(init_pid) / "net" / "dev") or "") if init_pid else ()
    return ContainerStats(
        id=record_id,
        name=name,
        read_ns=time.time_ns(),
        running=True,
        cpu=CpuSample(
            cpu.get("usage_usec", 0) * 1000,
            cpu.get("user_usec", 0) * 1000,
            cpu.get("system_usec", 0) * 1000,
            system_ns,
            cpus,
        ),
        memory_usage=usage,
        memory_limit=limit or host_memory,
        memory_stats=tuple(sorted(memory_stats.items())),
        pids=tasks if tasks is not None else count_threads(cgroup),
        pids_limit=parse_limit(_read(cgroup / "pids.max") or ""),
        block_read=block[0],
        block_write=block[1],
        networks=networks,
    )


def read_stats(
    containers: ContainerService,
    records: Iterable[ContainerRecord],
    host_memory: int,
    cgroup_root: Path = CGROUP_ROOT,
) -> list[ContainerStats]:
    """A reading of each container (a stopped one reads all zeros)."""
    from rootless.containers.execs import container_init_pid  # noqa: PLC0415

    states = {s.name: s for s in containers.manager.list_units("rctl-")}
    found = []
    for record in records:
        state: UnitState | None = states.get(record.unit)
        if state is None or state.active_state != "active" or not state.control_group:
            found.append(ContainerStats(record.id, record.name, read_ns=time.time_ns()))
            continue
        try:
            init: int | None = container_init_pid(state.main_pid) if state.main_pid else None
        except ConflictError:
            init = None
        cgroup = cgroup_root / state.control_group.lstrip("/")
        found.append(sample(record.id, record.name, cgroup, init, host_memory))
    return found


def stream_stats(
    containers: ContainerService,
    refs: Iterable[str],
    *,
    all_containers: bool,
    host_memory: int,
    interval: float = 1.0,
) -> Iterator[list[ContainerStats]]:
    """Readings every ``interval`` seconds, each with the one before as ``precpu`` (the
    first after two readings, so its CPU % means something). Named containers are
    looked up once (an unknown one is an error); without names, the running containers
    (``all_containers``: every one), looked up again at each reading, as docker's."""
    named = [containers.store.get(ref) for ref in refs]
    return _stream(containers, named, all_containers, host_memory, interval)


def _stream(
    containers: ContainerService,
    named: list[ContainerRecord],
    all_containers: bool,
    host_memory: int,
    interval: float,
) -> Iterator[list[ContainerStats]]:
    def chosen() -> list[ContainerRecord]:
        if named:
            return named
        rows = containers.summaries(all_containers=all_containers)
        wanted = {row.id for row in rows}
        return [r for r in containers.store.all() if r.id in wanted]

    previous: dict[str, ContainerStats] = {}
    first = True
    while True:
        readings = read_stats(containers, _present(containers, chosen()), host_memory)
        if not first:
            yield [_with_before(r, previous.get(r.id)) for r in readings]
        previous = {r.id: r for r in readings}
        first = False
        time.sleep(interval)


def _present(containers: ContainerService, records: list[ContainerRecord]) -> list[ContainerRecord]:
    """The records still in the store (a removed container drops out of the stream)."""
    kept = []
    for record in records:
        try:
            kept.append(containers.store.get(record.id))
        except NotFoundError:
            continue
    return kept


def _with_before(reading: ContainerStats, before: ContainerStats | None) -> ContainerStats:
    if before is None:
        return reading
    return replace(reading, precpu=before.cpu, preread_ns=before.read_ns)
