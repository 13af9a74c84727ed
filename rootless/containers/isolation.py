"""How far a container is kept from the host, beyond the defaults: the parsers of
``--ulimit``, ``--sysctl``, ``--device``, ``--shm-size``, ``--ipc``, ``--pid``, ``--uts``,
``--cgroupns``, ``--group-add``, ``--oom-score-adj``, ``--log-driver`` and
``--security-opt``, and the :class:`Isolation` value they make together.

Pure, like :mod:`rootless.containers.spec`: every ``parse_*`` raises
:class:`~rctlbase.errors.UsageError` naming its flag. What needs the host (may the user
open that device node, raise that limit, lower that OOM score) is checked by
:mod:`rootless.containers.hostcheck`.

A rootless container's namespaces belong to a user namespace of its own, made by its
launcher: joining another container's (``--pid container:NAME``) would need that
container's user namespace too, so ``container:`` modes are refused; ``host`` modes use
the namespace the launcher runs in, which is the host's for IPC, PID, UTS and cgroups.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from rctlbase.errors import UsageError

RLIM_INFINITY = 2**64 - 1
# docker's ulimit names (go-units ulimit.go), each an RLIMIT_ of setrlimit(2).
ULIMIT_NAMES = (
    "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
    "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
)  # fmt: skip
# Sysctls that apply to the container's own namespaces only (docker's and podman's list):
# the network namespace's net.*, and the IPC namespace's.
IPC_SYSCTLS = (
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
    "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
)  # fmt: skip
_SYSCTL_KEY = re.compile(r"[a-z0-9_]+(?:[./][a-zA-Z0-9_-]+)+")
_DEVICE_PERMISSIONS = re.compile(r"[rwm]{1,3}")
LOG_DRIVERS = ("journald", "none")
# --security-opt values that mean nothing here: no SELinux labels or AppArmor profiles are
# applied to a rootless container's processes by rctl.
IGNORED_SECURITY_OPTS = ("label", "apparmor")


def _bad(flag: str, value: object, why: str, hint: str) -> UsageError:
    return UsageError(f"invalid {flag} value {value!r}: {why}", hint=hint)


@dataclass(frozen=True, slots=True)
class Ulimit:
    """``--ulimit NAME=SOFT[:HARD]``; :data:`RLIM_INFINITY` for -1 (unlimited)."""

    name: str
    soft: int
    hard: int

    @property
    def rlimit(self) -> str:
        """The runtime-spec type: ``RLIMIT_NOFILE``."""
        return f"RLIMIT_{self.name.upper()}"


@dataclass(frozen=True, slots=True)
class Device:
    """``--device HOST[:CONTAINER][:PERMISSIONS]``: a host device node bound in."""

    source: str
    destination: str


class NamespaceMode(StrEnum):
    """``--ipc``, ``--pid``, ``--uts``, ``--cgroupns``: a namespace of its own, the host's,
    or (IPC) one without /dev/shm."""

    PRIVATE = "private"
    HOST = "host"
    NONE = "none"  # --ipc none: a namespace of its own, no /dev/shm mounted


@dataclass(frozen=True, slots=True)
class Isolation:
    """The choices above, validated together (``shm_size`` None: 64 MiB, docker's)."""

    ulimits: tuple[Ulimit, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()
    devices: tuple[Device, ...] = ()
    shm_size: int | None = None
    privileged: bool = False
    ipc: NamespaceMode = NamespaceMode.PRIVATE
    pid: NamespaceMode = NamespaceMode.PRIVATE
    uts: NamespaceMode = NamespaceMode.PRIVATE
    cgroupns: NamespaceMode = NamespaceMode.PRIVATE
    group_add: tuple[str, ...] = ()  # numbers or the image's group names, or keep-groups
    oom_score_adj: int | None = None
    log_driver: str = "journald"
    masked_paths: bool = True  # --security-opt systempaths=unconfined lifts them

    def __post_init__(self) -> None:
        for key, _ in self.sysctls:
            if self.ipc is NamespaceMode.HOST and not key.startswith("net."):
                raise UsageError(
                    f"--sysctl {key} can't be set with --ipc host: it would change the host's",
                    hint="drop --ipc host, or the sysctl",
                )
        if self.shm_size is not None and self.ipc is not NamespaceMode.PRIVATE:
            raise UsageError(
                f"--shm-size can't go with --ipc {self.ipc}",
                hint="the container mounts no /dev/shm of its own: drop one of them",
            )
        names = [u.name for u in self.ulimits]
        if len(set(names)) != len(names):
            raise UsageError("--ulimit: a limit is given twice", hint="give each limit once")

    @property
    def keep_groups(self) -> bool:
        """``--group-add keep-groups``: the user's own supplementary groups stay (crun)."""
        return "keep-groups" in self.group_add


def parse_ulimit(value: str) -> Ulimit:
    """``nofile=1024:2048``, ``nofile=1024`` (hard = soft), ``core=-1`` (unlimited)."""
    hint = "e.g. --ulimit nofile=1024:2048"
    name, eq, limits = value.partition("=")
    if not eq or name not in ULIMIT_NAMES:
        raise _bad("--ulimit", value, f"not NAME=SOFT[:HARD] with NAME one of "
                   f"{', '.join(ULIMIT_NAMES)}", hint)  # fmt: skip
    soft_text, colon, hard_text = limits.partition(":")
    numbers: list[int] = []
    for text in (soft_text, hard_text if colon else soft_text):
        if text == "-1":
            numbers.append(RLIM_INFINITY)
        elif text.isascii() and text.isdigit() and int(text) < RLIM_INFINITY:
            numbers.append(int(text))
        else:
            raise _bad("--ulimit", value, f"{text!r} is not a limit", hint)
    soft, hard = numbers
    if soft > hard:
        raise _bad("--ulimit", value, "the soft limit is above the hard one", hint)
    return Ulimit(name, soft, hard)


def parse_sysctl(value: str, *, host_network: bool = False) -> tuple[str, str]:
    """``--sysctl KEY=VALUE`` for a namespaced key: ``net.*`` (not with ``--network
    host``), the IPC namespace's ``kernel.shm*``, ``kernel.msg*``, ``kernel.sem``,
    ``fs.mqueue.*``. Others would change the host's kernel, and are refused."""
    key, eq, setting = value.partition("=")
    key = key.strip().replace("/", ".")
    hint = "only namespaced sysctls: net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*"
    if not eq or not _SYSCTL_KEY.fullmatch(key) or ".." in key:
        raise _bad("--sysctl", value, "not KEY=VALUE", "e.g. --sysctl net.ipv4.ip_forward=1")
    if any(c in setting for c in "\n\0"):
        raise _bad("--sysctl", value, "the value has a newline or NUL", hint)
    if key.startswith("net."):
        if host_network:
            raise UsageError(
                f"--sysctl {key} can't be set with --network host: it would change the host's",
                hint="drop --network host, or the sysctl",
            )
        return key, setting
    if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
        return key, setting
    raise _bad("--sysctl", value, "not a namespaced sysctl: it would change the host's", hint)


def parse_device(value: str) -> Device:
    """``--device /dev/fuse``, ``/dev/fuse:/dev/fuse2``, ``/dev/fuse:rwm``.

    The permissions are those of the device cgroup, which a rootless container can't have:
    only full access (r and w, with or without m) is accepted, and it is what the node's
    own file mode gives the user.
    """
    parts = value.split(":")
    hint = "e.g. --device /dev/fuse or --device /dev/fuse:/dev/fuse:rwm"
    if len(parts) > 3 or not parts[0]:
        raise _bad("--device", value, "not HOST[:CONTAINER][:PERMISSIONS]", hint)
    permissions = "rwm"
    if len(parts) >= 2 and _DEVICE_PERMISSIONS.fullmatch(parts[-1]):
        permissions = parts.pop()
    source = parts[0]
    destination = parts[1] if len(parts) == 2 else source
    if len(parts) > 2:
        raise _bad("--device", value, f"{parts[-1]!r} is not r, w, m permissions", hint)
    for path in (source, destination):
        if not path.startswith("/") or "\0" in path or ".." in path.split("/"):
            raise _bad("--device", value, f"{path!r} is not an absolute path", hint)
    if not {"r", "w"} <= set(permissions):
        why = f"permissions {permissions!r} can't be enforced rootless (no device cgroup)"
        raise _bad("--device", value, why, "give rw or rwm, or leave the permissions out")
    return Device(source, destination)


def parse_namespace_mode(flag: str, value: str) -> NamespaceMode:
    """``--ipc``/``--pid``/``--uts``/``--cgroupns``: "" or private (``--ipc shareable``
    too: each container's is), host, and for ``--ipc`` none; ``container:`` refused."""
    hint = {
        "--ipc": "use private, shareable, none or host",
        "--pid": "use host, or leave --pid out",
        "--uts": "use host, or leave --uts out",
        "--cgroupns": "use private or host",
    }[flag]
    if value.startswith("container:"):
        raise UsageError(
            f"{flag} {value}: joining another container's namespace is not supported",
            hint="each rootless container has a user namespace of its own, which owns its "
            f"other namespaces; {hint}",
        )
    if value in ("", "private") or (flag == "--ipc" and value == "shareable"):
        return NamespaceMode.PRIVATE
    if value == "host" or (flag == "--ipc" and value == "none"):
        return NamespaceMode(value)
    raise _bad(flag, value, "unknown mode", hint)


def parse_group_add(value: str) -> str:
    """``--group-add GROUP``: a number, a name from the image's /etc/group, or
    ``keep-groups`` (podman: the user's own supplementary groups, e.g. to open a device
    node that only the ``kvm`` group may)."""
    hint = "give a group number, a group name of the image, or keep-groups"
    if value == "keep-groups":
        return value
    if value.isascii() and value.isdigit():
        if int(value) > 0xFFFFFFFE:
            raise _bad("--group-add", value, "out of range", hint)
        return value
    if not re.fullmatch(r"[A-Za-z0-9_.][A-Za-z0-9_.$-]*", value):
        raise _bad("--group-add", value, "not a group name or number", hint)
    return value


def parse_oom_score_adj(value: int) -> int:
    """``--oom-score-adj`` from -1000 to 1000 (proc(5))."""
    if not -1000 <= value <= 1000:
        raise _bad("--oom-score-adj", value, "out of range", "use -1000 to 1000")
    return value


def parse_log_driver(value: str) -> str:
    """``--log-driver``: journald (the default: the unit's journal) or none."""
    if value not in LOG_DRIVERS:
        raise UsageError(
            f"--log-driver {value!r} is not supported",
            hint="rctl logs through the unit's journal: use journald (the default) or none",
        )
    return value


def ignored_security_opt(value: str) -> bool:
    """True for ``label=...`` and ``apparmor=...``, accepted and without effect here."""
    key = re.split("[=:]", value, maxsplit=1)[0]
    return key in IGNORED_SECURITY_OPTS


def parse_mac_address(value: str) -> None:
    """``--mac-address`` is refused: slirp4netns and pasta give the container's interface
    the address they choose, and bridge networks' peers are made without one."""
    raise UsageError(
        f"--mac-address {value}: the container's MAC address can't be chosen here",
        hint="leave --mac-address out: rctl's network helpers pick the interface's address",
    )


# ---- cgroup limits beyond --memory/--cpus/--pids-limit (the unit's properties) -----------

MAX_CPU = 8191  # the highest CPU number --cpuset-cpus takes (bounds the mask's size)
_CPU_LIST = re.compile(r"\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*")


def parse_cpuset(value: str, *, flag: str = "--cpuset-cpus") -> str:
    """``0-2,4``: CPU numbers and ranges (cpuset(7)'s list format), normalized."""
    hint = "e.g. --cpuset-cpus 0-2,4"
    text = value.strip()
    if not _CPU_LIST.fullmatch(text):
        raise _bad(flag, value, "not a list of CPUs", hint)
    for part in text.split(","):
        low, _, high = part.partition("-")
        if int(low) > MAX_CPU or (high and not int(low) <= int(high) <= MAX_CPU):
            raise _bad(flag, value, f"{part!r} is not a range of CPUs 0..{MAX_CPU}", hint)
    return text


def cpuset_mask(cpus: str) -> bytes:
    """systemd's ``AllowedCPUs=`` over D-Bus: a bit mask, CPU n at bit n % 8 of byte n // 8."""
    chosen: set[int] = set()
    for part in cpus.split(","):
        low, _, high = part.partition("-")
        chosen.update(range(int(low), int(high or low) + 1))
    mask = bytearray(max(chosen) // 8 + 1)
    for cpu in chosen:
        mask[cpu // 8] |= 1 << (cpu % 8)
    return bytes(mask)


def parse_cpu_period(value: int) -> int:
    """``--cpu-period`` µs: 1000 to 1000000 (the kernel's cpu.max bounds); 0 is unset."""
    if value != 0 and not 1000 <= value <= 1_000_000:
        raise _bad("--cpu-period", value, "out of range", "use 1000 to 1000000 (µs)")
    return value


def parse_cpu_quota(value: int) -> int:
    """``--cpu-quota`` µs per period: at least 1000; 0 and -1 are no limit."""
    if value not in (0, -1) and value < 1000:
        raise _bad("--cpu-quota", value, "below 1000 µs", "use 1000 or more, or -1 for none")
    return max(value, 0)


def parse_blkio_weight(value: int) -> int:
    """``--blkio-weight`` 10 to 1000 (0 is unset), the unit's ``IOWeight=`` as is."""
    if value != 0 and not 10 <= value <= 1000:
        raise _bad("--blkio-weight", value, "out of range", "use 10 to 1000")
    return value


def resolve_groups(group_add: tuple[str, ...], group: str | None) -> tuple[int, ...]:
    """The gids of ``--group-add`` values, names looked up in the text of the image's
    /etc/group (None: it has none); ``keep-groups`` adds none (the runtime keeps them)."""
    entries = [f.split(":") for f in (group or "").splitlines() if f.count(":") >= 3]
    gids: list[int] = []
    for value in group_add:
        if value == "keep-groups":
            continue
        if value.isascii() and value.isdigit():
            gids.append(int(value))
            continue
        found = next((g for g in entries if g[0] == value and g[2].isdigit()), None)
        if found is None:
            raise UsageError(
                f"--group-add {value}: no such group in the image's /etc/group",
                hint="give a group number, or a group the image has",
            )
        gids.append(int(found[2]))
    return tuple(dict.fromkeys(gids))
