"""``rctl stats``: the cgroup and /proc parsers, a reading of a fake cgroup with and
without delegated controllers (``rootless.containers.stats``), docker's figures and its
table, templates and JSON lines (``rootless.cli.monitor``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rctlbase.errors import UsageError
from rootless.cli.gotemplate.values import Struct
from rootless.cli.monitor import binary_size, render_stats, stats_row
from rootless.containers.stats import (
    ContainerStats,
    CpuSample,
    NetCounters,
    parse_flat_keyed,
    parse_io_stat,
    parse_limit,
    parse_net_dev,
    parse_proc_io,
    parse_proc_stat,
    parse_rss,
    sample,
)

NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  tap0:    1500      10    1    2    0     0          0         0      700       5    3    4    0     0       0          0
"""
ID = "0123456789ab" + "c" * 52


def test_parsers_read_the_kernel_formats() -> None:
    assert parse_flat_keyed("usage_usec 250\nuser_usec 200\nbad line x\n") == {
        "usage_usec": 250,
        "user_usec": 200,
    }
    assert parse_limit("max\n") == 0 and parse_limit("104857600\n") == 104857600
    assert parse_io_stat("8:0 rbytes=4096 wbytes=512 rios=1 wios=1\n259:0 rbytes=1 wbytes=2\n") == (
        4097,
        514,
    )
    assert parse_proc_io("rchar: 9\nread_bytes: 4096\nwrite_bytes: 8192\n") == (4096, 8192)
    assert parse_rss("Name:\tsh\nVmRSS:\t  1234 kB\n") == 1234 * 1024
    assert parse_net_dev(NET_DEV) == (NetCounters("tap0", 1500, 10, 1, 2, 700, 5, 3, 4),)
    assert parse_proc_stat("cpu  100 0 50 850 0 0 0 0 0 0\ncpu0 1\n", 100) == 10 * 10**9


def fake_host(tmp_path: Path, *, controllers: bool) -> tuple[Path, Path]:
    cgroup = tmp_path / "cgroup" / "rctl-x.service"
    cgroup.mkdir(parents=True)
    (cgroup / "cpu.stat").write_text("usage_usec 2000\nuser_usec 1500\nsystem_usec 500\n")
    (cgroup / "cgroup.procs").write_text("101\n102\n")
    (cgroup / "cgroup.threads").write_text("101\n102\n103\n")
    if controllers:
        (cgroup / "memory.current").write_text("10485760\n")
        (cgroup / "memory.max").write_text("67108864\n")
        (cgroup / "memory.stat").write_text("anon 4096\ninactive_file 1048576\n")
        (cgroup / "io.stat").write_text("8:0 rbytes=300 wbytes=200\n")
        (cgroup / "pids.current").write_text("2\n")
        (cgroup / "pids.max").write_text("max\n")
    proc = tmp_path / "proc"
    for pid, rss in ((101, 1000), (102, 24)):
        (proc / str(pid) / "net").mkdir(parents=True)
        (proc / str(pid) / "status").write_text(f"VmRSS:\t{rss} kB\n")
        (proc / str(pid) / "io").write_text("read_bytes: 10\nwrite_bytes: 20\n")
    (proc / "101" / "net" / "dev").write_text(NET_DEV)
    (proc / "stat").write_text("cpu  100 0 50 850 0 0 0 0 0 0\n")
    return cgroup, proc


def test_a_reading_with_the_controllers_delegated(tmp_path: Path) -> None:
    cgroup, proc = fake_host(tmp_path, controllers=True)
    reading = sample(ID, "web", cgroup, 101, host_memory=8 << 30, proc=proc)
    assert reading.running
    assert reading.cpu.total_ns == 2_000_000 and reading.cpu.kernel_ns == 500_000
    assert reading.memory_usage == 10485760 and reading.memory_limit == 64 << 20
    assert reading.memory_used() == 9 << 20  # without the inactive page cache
    assert (reading.block_read, reading.block_write) == (300, 200)
    assert reading.pids == 2
    assert reading.net_io() == (1500, 700)


def test_a_reading_without_controllers_falls_back_on_the_processes(tmp_path: Path) -> None:
    """The nspawn test host delegates no memory, io or pids controller to the user."""
    cgroup, proc = fake_host(tmp_path, controllers=False)
    reading = sample(ID, "web", cgroup, 101, host_memory=8 << 30, proc=proc)
    assert reading.memory_usage == 1024 * 1024  # the resident sets, summed
    assert reading.memory_limit == 8 << 30  # no limit: the host's memory, as docker
    assert (reading.block_read, reading.block_write) == (20, 40)
    assert reading.pids == 3  # threads, as pids.current counts


def test_cpu_percent_is_docker_formula() -> None:
    reading = ContainerStats(
        ID,
        "web",
        running=True,
        cpu=CpuSample(total_ns=3_000_000_000, system_ns=20_000_000_000, online_cpus=4),
        precpu=CpuSample(total_ns=1_000_000_000, system_ns=10_000_000_000, online_cpus=4),
    )
    # 2 s of the container's over 10 s of the host's (all 4 CPUs), times 4 CPUs
    assert reading.cpu_percent() == pytest.approx(80.0)
    assert ContainerStats(ID, "web", running=True, cpu=CpuSample(5, 5, 0, 10)).cpu_percent() == 0


def test_the_stats_document_is_docker_one(tmp_path: Path) -> None:
    cgroup, proc = fake_host(tmp_path, controllers=True)
    document = sample(ID, "web", cgroup, 101, host_memory=1, proc=proc).to_docker()
    assert set(document) >= {"read", "preread", "pids_stats", "blkio_stats", "cpu_stats",
                             "precpu_stats", "memory_stats", "name", "id", "networks"}  # fmt: skip
    assert document["name"] == "/web" and document["id"] == ID
    assert document["memory_stats"]["usage"] == 10485760
    assert document["memory_stats"]["stats"]["inactive_file"] == 1048576
    assert document["cpu_stats"]["cpu_usage"]["total_usage"] == 2_000_000
    assert document["networks"]["tap0"]["tx_bytes"] == 700
    assert document["pids_stats"] == {"current": 2}
    json.dumps(document)


def test_binary_size_is_docker_units_bytes_size() -> None:
    assert binary_size(0) == "0B"
    assert binary_size(1536) == "1.5KiB"
    assert binary_size(9 << 20) == "9MiB"
    assert binary_size(7.75 * 2**30) == "7.75GiB"


def rows(tmp_path: Path, *, no_trunc: bool = False) -> list[Struct]:
    cgroup, proc = fake_host(tmp_path, controllers=True)
    running = sample(ID, "web", cgroup, 101, host_memory=1, proc=proc)
    stopped = ContainerStats("f" * 64, "old")
    return [stats_row(r, "", no_trunc=no_trunc) for r in (running, stopped)]


def test_the_default_table_has_docker_columns(tmp_path: Path) -> None:
    lines = render_stats(None, rows(tmp_path)).splitlines()
    assert lines[0].split("   ")[0] == "CONTAINER ID"
    for header in ("NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"):
        assert header in lines[0]
    assert lines[1].startswith("0123456789ab   web")
    assert "9MiB / 64MiB" in lines[1] and "14.06%" in lines[1] and "1.5kB / 700B" in lines[1]
    assert lines[2].split()[:2] == ["ffffffffffff", "old"]
    assert "0B / 0B" in lines[2]


def test_templates_and_json_see_docker_fields(tmp_path: Path) -> None:
    made = rows(tmp_path, no_trunc=True)
    text = render_stats("{{.Name}}|{{.ID}}|{{.MemUsage}}|{{.PIDs}}|{{.BlockIO}}", made)
    assert text.splitlines()[0] == f"web|{ID}|9MiB / 64MiB|2|300B / 200B"
    table = render_stats("table {{.Container}}\\t{{.CPUPerc}}", made)
    assert table.splitlines()[0].split() == ["CONTAINER", "CPU", "%"]
    first = json.loads(render_stats("json", made).splitlines()[0])
    assert first["Name"] == "web" and first["MemPerc"] == "14.06%"
    with pytest.raises(UsageError):
        render_stats("{{.Nope}}", made)
