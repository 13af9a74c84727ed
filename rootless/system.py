"""``rctl version`` and ``rctl info``: what rctl is and what this host gives it, in the
shape of docker's ``version`` and ``info`` documents (same keys where they mean the same,
so that ``{{.Server.Version}}`` and ``{{.Driver}}`` templates keep working).

The other programs' versions are asked of them (``crun --version``, ``systemctl
--version``): a few milliseconds each, paid only by these two commands. A program that is
missing or says nothing usable is left out rather than failing the report.
"""

from __future__ import annotations

import os
import platform
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rctlbase.errors import RctlError
from rctlbase.run import run_program
from rootless import __version__
from rootless.containers.hostcheck import cgroup_facts
from rootless.reports.system import Component, InfoReport, VersionReport

# The Docker Engine API version rctl's REST API is to serve (docker 25's); no API is served
# yet, so this says which docker clients it is written against.
API_VERSION = "1.44"
MIN_API_VERSION = "1.24"
# docker's GOARCH names for uname's machines.
GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le":
          "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ContainerCounts:
    """``info``'s container counts."""

    running: int = 0
    paused: int = 0
    stopped: int = 0


def program_version(argv: Sequence[str], pattern: str) -> str:
    """The version ``argv`` prints (the first match of ``pattern``'s group), '' if it
    can't be run or says nothing that matches."""
    try:
        out = run_program(argv, check=False, timeout=5).stdout.decode(errors="replace")
    except RctlError:
        return ""
    match = re.search(pattern, out)
    return match.group(1) if match else ""


def git_commit(source: Path) -> str:
    """The commit of a git checkout rctl runs from (short form), '' when it isn't one. Read
    from the files (no git needed): ``.git`` is a directory, or a worktree's ``gitdir:``
    file."""
    dotgit = source / ".git"
    try:
        if dotgit.is_file():
            dotgit = (source / dotgit.read_text().removeprefix("gitdir:").strip()).resolve()
        head = (dotgit / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:7]
        ref = head.removeprefix("ref: ")
        common = dotgit
        if (dotgit / "commondir").is_file():
            common = (dotgit / (dotgit / "commondir").read_text().strip()).resolve()
        for base in (dotgit, common):
            if (base / ref).is_file():
                return (base / ref).read_text().strip()[:7]
        for line in (common / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0][:7]
    except OSError:
        pass
    return ""


def os_arch() -> tuple[str, str]:
    """(``linux``, ``amd64``): docker's OS/Arch."""
    uname = os.uname()
    return uname.sysname.lower(), GOARCH.get(uname.machine, uname.machine)


def runtime_version(runtime: str) -> str:
    """``crun version 1.8.1`` → ``1.8.1`` (runc says the same)."""
    return program_version([runtime, "--version"], r"version\s+(\S+)")


def systemd_version() -> str:
    """``systemd 252 (252.22-1~deb12u1)`` → ``252 (252.22-1~deb12u1)``."""
    return program_version(["systemctl", "--version"], r"^systemd\s+(.+)")


def version_report(runtime: str) -> VersionReport:
    """docker's ``version``: the client (this CLI) and the engine (the same program, with
    its runtime, systemd and kernel)."""
    system, arch = os_arch()
    commit = git_commit(Path(__file__).resolve().parents[1])
    python = platform.python_version()
    kernel = os.uname().release
    components = [
        Component("Engine", __version__, {
            "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": commit,
            "PythonVersion": python, "Os": system, "Arch": arch, "KernelVersion": kernel,
        }),
    ]  # fmt: skip
    for name, version in ((runtime, runtime_version(runtime)), ("systemd", systemd_version())):
        if version:
            components.append(Component(name, version))
    return VersionReport(
        version=__version__,
        api_version=API_VERSION,
        min_api_version=MIN_API_VERSION,
        git_commit=commit,
        python_version=python,
        os=system,
        arch=arch,
        kernel_version=kernel,
        components=tuple(components),
    )


def operating_system(os_release: Path = Path("/etc/os-release")) -> str:
    """``PRETTY_NAME`` of os-release(5)."""
    try:
        for line in os_release.read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "PRETTY_NAME":
                return value.strip().strip("\"'")
    except OSError:
        pass
    return ""


def memory_total(meminfo: Path = Path("/proc/meminfo")) -> int:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


@dataclass(frozen=True, slots=True)
class InfoInputs:
    """What ``info`` reports about rctl's own state (the engine gathers it)."""

    counts: ContainerCounts
    images: int
    storage_driver: str
    data_root: str
    run_root: str
    runtime: str
    default_network: str
    search_registries: tuple[str, ...]
    insecure_registries: tuple[str, ...]
    volume_drivers: tuple[str, ...] = ("local",)
    network_drivers: tuple[str, ...] = ("bridge", "host", "null", "pasta", "slirp4netns")


def info_report(inputs: InfoInputs, uid: int) -> InfoReport:
    """docker's ``info``, with rctl's storage, cgroups and network."""
    cgroup_version, controllers = cgroup_facts(uid)
    counts = inputs.counts
    return InfoReport(
        containers_running=counts.running,
        containers_paused=counts.paused,
        containers_stopped=counts.stopped,
        images=inputs.images,
        driver=inputs.storage_driver,
        backing_filesystem=_filesystem(inputs.data_root),
        root_dir=inputs.data_root,
        run_root=inputs.run_root,
        cgroup_version=cgroup_version,
        cgroup_controllers=tuple(controllers),
        kernel_version=os.uname().release,
        operating_system=operating_system(),
        os_type=os.uname().sysname.lower(),
        architecture=os.uname().machine,
        ncpu=os.cpu_count() or 0,
        mem_total=memory_total(),
        name=socket.gethostname(),
        server_version=__version__,
        runtime=inputs.runtime,
        runtime_path=_which(inputs.runtime),
        default_network=inputs.default_network,
        search_registries=inputs.search_registries,
        insecure_registries=inputs.insecure_registries,
        volume_drivers=inputs.volume_drivers,
        network_drivers=inputs.network_drivers,
    )


def _which(program: str) -> str:
    import shutil  # noqa: PLC0415 - only info needs it

    return shutil.which(program) or program


def _filesystem(path: str) -> str:
    """The file system type holding ``path`` (its mount, from /proc/self/mounts)."""
    best, kind = "", ""
    target = os.path.realpath(path)
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return ""
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind
