"""What a container is: :class:`ContainerSpec`, and the parsers of docker-run flag values.

A spec holds the user's choices (``rctl run`` flags, a definition's keys) next to the
image's defaults (:class:`ImageDefaults`), validated together when it is made; the
effective process (argv, environment, directory, user, stop signal) is derived from both
the way docker does it (``daemon/commit.go`` ``merge``, ``container.CreateDaemonEnvironment``).
User and group *names* need the image's ``/etc/passwd`` and ``/etc/group``: the engine reads
them and calls :meth:`ContainerSpec.with_resolved_user`; numeric users need nothing.

Every ``parse_*`` raises :class:`~rctlbase.errors.UsageError` naming the flag and the bad
value, with a hint. Nothing here touches the host: the environment for bare ``-e KEY`` and
the text of env files and seccomp profiles are given by the caller.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from rctlbase.errors import UsageError
from rootless.containers.isolation import Isolation, NamespaceMode, resolve_groups
from rootless.containers.seccomp import SeccompPolicy

# docker's system.DefaultPathEnv for Linux, given when neither image nor user sets PATH.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MIN_MEMORY = 6 * 1024 * 1024  # docker: "Minimum memory limit allowed is 6MB"
DEFAULT_STOP_TIMEOUT = 10
# A stop timeout becomes systemd's TimeoutStopUSec (microseconds in 64 bits): this bound,
# about 31 years, keeps it far from overflowing, in the unit file's "+5 s" too.
MAX_STOP_TIMEOUT = 10**9
# capabilities(7), in bit order (CAP_CHOWN = 0 ... CAP_CHECKPOINT_RESTORE = 40).
_CAP_NAMES = """
    CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP
    LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER
    SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE
    SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP
    MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF
    CHECKPOINT_RESTORE"""
ALL_CAPABILITIES: tuple[str, ...] = tuple(f"CAP_{n}" for n in _CAP_NAMES.split())
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")  # docker's container name pattern
_HOSTNAME = re.compile(r"(?!-)[a-zA-Z0-9-]{1,63}(?<!-)(\.(?!-)[a-zA-Z0-9-]{1,63}(?<!-))*")


def _digits(text: str) -> bool:
    # str.isdigit() is true of '²' and other digits that int() refuses.
    return text.isascii() and text.isdigit()


def _bad(flag: str, value: object, why: str, hint: str) -> UsageError:
    return UsageError(f"invalid {flag} value {value!r}: {why}", hint=hint)


def parse_stop_timeout(seconds: int) -> int:
    """``--stop-timeout``: seconds from 0 to :data:`MAX_STOP_TIMEOUT`."""
    if seconds < 0:
        raise _bad("--stop-timeout", seconds, "negative", "give seconds, e.g. 10")
    if seconds > MAX_STOP_TIMEOUT:
        raise _bad("--stop-timeout", seconds, f"more than {MAX_STOP_TIMEOUT} seconds",
                   "give seconds, e.g. 10")  # fmt: skip
    return seconds


# ---- the parts of a spec ------------------------------------------------------------------


class RestartPolicyName(StrEnum):
    """docker's ``--restart`` policies."""

    NO = "no"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"
    UNLESS_STOPPED = "unless-stopped"


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """``--restart NAME[:MAX_RETRIES]``; ``max_retries`` 0 is "no limit" (on-failure only)."""

    name: RestartPolicyName = RestartPolicyName.NO
    max_retries: int = 0


class UsernsMode(StrEnum):
    """``--userns``: whose IDs the container's processes have.

    DEFAULT: container root is the user, other IDs come from /etc/subuid; KEEP_ID: the user
    keeps their own uid inside; HOST: podman's name for DEFAULT when rootless.
    """

    DEFAULT = ""
    KEEP_ID = "keep-id"
    HOST = "host"


@dataclass(frozen=True, slots=True)
class UserSpec:
    """``--user USER[:GROUP]`` as given: names or numbers, resolved later."""

    user: str
    group: str | None = None

    @property
    def raw(self) -> str:
        return self.user if self.group is None else f"{self.user}:{self.group}"

    def numeric(self) -> ResolvedUser | None:
        """The IDs when both parts are numbers (gid 0 when no group, like docker), else None."""
        if not _digits(self.user) or not (self.group is None or _digits(self.group)):
            return None
        return ResolvedUser(int(self.user), int(self.group or 0))


@dataclass(frozen=True, slots=True)
class ResolvedUser:
    """The IDs the process runs with; ``home`` None when the image did not say."""

    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str | None = None


@dataclass(frozen=True, slots=True)
class TmpfsMount:
    """``--tmpfs DEST[:OPTIONS]`` with the options completed (rw, noexec, nosuid, nodev)."""

    destination: str
    options: tuple[str, ...] = ("rw", "noexec", "nosuid", "nodev")


@dataclass(frozen=True, slots=True)
class BindMount:
    """A host directory or file in the container (named volumes arrive resolved to these).

    ``options`` are extra mount flags (nosuid, noexec, nodev, a propagation...).
    """

    source: str
    destination: str
    read_only: bool = False
    options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits; None is "not set". ``memory_swap`` is memory+swap, -1 unlimited;
    ``pids_limit`` -1 is unlimited (docker's), where None leaves systemd's default."""

    memory: int | None = None
    memory_swap: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    pids_limit: int | None = None
    memory_reservation: int | None = None  # --memory-reservation: MemoryLow=
    cpuset_cpus: str | None = None  # --cpuset-cpus 0-2,4: AllowedCPUs=
    cpu_quota: int | None = None  # --cpu-quota: µs per --cpu-period
    cpu_period: int | None = None  # --cpu-period µs (default 100000)
    blkio_weight: int | None = None  # --blkio-weight 10..1000: IOWeight=

    def __post_init__(self) -> None:
        if self.memory is not None and self.memory < MIN_MEMORY:
            raise _bad("--memory", self.memory, "below the minimum of 6 MiB", "use at least 6m")
        if self.memory_swap is not None and self.memory_swap != -1:
            if self.memory is None:
                raise UsageError(
                    "--memory-swap needs --memory",
                    hint="set --memory too: --memory-swap is memory plus swap",
                )
            if self.memory_swap < self.memory:
                raise _bad(
                    "--memory-swap",
                    self.memory_swap,
                    "smaller than --memory",
                    "it is memory plus swap: give at least the --memory value, or -1",
                )
        if self.cpus is not None and not (math.isfinite(self.cpus) and self.cpus >= 0.01):
            raise _bad("--cpus", self.cpus, "must be at least 0.01", "e.g. --cpus 1.5")
        if self.cpu_shares is not None and not 2 <= self.cpu_shares <= 262144:
            raise _bad("--cpu-shares", self.cpu_shares, "out of range", "use 2 to 262144")
        if self.pids_limit is not None and self.pids_limit <= 0 and self.pids_limit != -1:
            raise _bad("--pids-limit", self.pids_limit, "must be positive", "or -1 for no limit")
        if self.memory_reservation and self.memory and self.memory_reservation > self.memory:
            raise UsageError(
                "--memory-reservation is above --memory",
                hint="a reservation is a soft floor: give at most the --memory value",
            )
        if self.cpus is not None and (self.cpu_quota or self.cpu_period):
            raise UsageError(
                "conflicting options: --cpus and --cpu-quota/--cpu-period",
                hint="--cpus N is a quota of N periods: use one way",
            )


@dataclass(frozen=True, slots=True)
class HostEntry:
    """``--add-host NAME:IP``, a line of the container's /etc/hosts."""

    hostname: str
    address: str  # an IP address or "host-gateway", which the engine replaces


class ImageConfigLike(Protocol):
    """The fields of an image config's ``config`` section a container needs.

    ``rootless.images.manifest.ContainerConfig`` has them (the engine passes it as is), and
    so has :class:`ImageDefaults`.
    """

    @property
    def env(self) -> tuple[str, ...]: ...
    @property
    def cmd(self) -> tuple[str, ...] | None: ...
    @property
    def entrypoint(self) -> tuple[str, ...] | None: ...
    @property
    def working_dir(self) -> str: ...
    @property
    def user(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def stop_signal(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class ImageDefaults:
    """What the image says about its containers (image-spec config.md, ``config``).

    ``cmd``/``entrypoint`` None means the image does not set them.
    """

    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    stop_signal: str | None = None


# ---- the spec -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """A container's definition: the user's choices over its image's defaults, validated.

    ``entrypoint`` None keeps the image's; ``()`` (``--entrypoint ""``) clears it. Giving an
    entrypoint also drops the image's Cmd, as in docker. ``env`` holds the user's KEY=VALUE
    entries (``-e``, ``--env-file``), applied over the image's by :attr:`process_env`.
    ``hostname`` None lets the engine pick (the short container ID); ``network`` is the
    ``--network`` value ("" for the default, "host", "none", "container:ID", a name).
    """

    name: str
    image_ref: str
    image_id: str
    image: ImageConfigLike = field(default_factory=ImageDefaults)
    command: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    workdir: str | None = None
    user: UserSpec | None = None
    resolved_user: ResolvedUser | None = None
    hostname: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    read_only: bool = False
    read_only_tmpfs: bool = True  # podman: --read-only also gets tmpfs /run, /tmp, /var/tmp
    tmpfs: tuple[TmpfsMount, ...] = ()
    mounts: tuple[BindMount, ...] = ()
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    no_new_privileges: bool = False
    seccomp: SeccompPolicy = field(default_factory=SeccompPolicy)
    init: bool = False
    userns: UsernsMode = UsernsMode.DEFAULT
    tty: bool = False
    stdin_open: bool = False
    limits: Limits = field(default_factory=Limits)
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    stop_signal: int | None = None
    stop_timeout: int = DEFAULT_STOP_TIMEOUT
    network: str = ""
    add_hosts: tuple[HostEntry, ...] = ()
    dns: tuple[str, ...] = ()
    isolation: Isolation = field(default_factory=Isolation)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise _bad(
                "--name", self.name, "not a container name", "use [a-zA-Z0-9][a-zA-Z0-9_.-]*"
            )
        if self.workdir is not None and not self.workdir.startswith("/"):
            raise _bad("--workdir", self.workdir, "not absolute", "give a path starting with /")
        if self.hostname is not None and not (
            len(self.hostname) <= 64 and _HOSTNAME.fullmatch(self.hostname)
        ):
            raise _bad("--hostname", self.hostname, "not a valid hostname", "use RFC 1123 labels")
        if self.hostname is not None and self.isolation.uts is NamespaceMode.HOST:
            raise UsageError(
                "conflicting options: --hostname and --uts host",
                hint="with --uts host the container has the host's name: drop one of them",
            )
        for cap in (*self.cap_add, *self.cap_drop):
            if cap != "ALL" and cap not in ALL_CAPABILITIES:
                raise ValueError(f"capability {cap!r} was not parsed with parse_capability")
        for entry in self.env:
            if not entry.partition("=")[0] or "=" not in entry:
                raise ValueError(f"env entry {entry!r} was not parsed with parse_env")
        parse_stop_timeout(self.stop_timeout)
        seen: set[str] = set()
        for dest in [m.destination for m in self.tmpfs] + [m.destination for m in self.mounts]:
            flag = "--tmpfs/--volume/--mount"
            if not dest.startswith("/"):
                raise _bad(flag, dest, "the destination is not absolute", "start it with /")
            if dest.rstrip("/") in seen:
                raise UsageError(
                    f"duplicate mount point: {dest}", hint="mount one thing per destination"
                )
            seen.add(dest.rstrip("/"))
        if not self.process_args:
            raise UsageError(
                "no command specified",
                hint="give a command after the image name, or use an image with a CMD "
                "or an ENTRYPOINT",
            )
        _ = self.kill_signal  # the image's StopSignal must parse

    @property
    def process_entrypoint(self) -> tuple[str, ...]:
        """The entrypoint that runs: the user's, else the image's."""
        if self.entrypoint is not None:
            return self.entrypoint
        return self.image.entrypoint or ()

    @property
    def process_command(self) -> tuple[str, ...]:
        """The arguments after the entrypoint: the user's, else the image's Cmd.

        The image's Cmd is dropped when the user gave an entrypoint (docker run reference,
        "ENTRYPOINT (default command to execute at runtime)").
        """
        if self.command or self.entrypoint is not None:
            return self.command
        return self.image.cmd or ()

    @property
    def process_args(self) -> tuple[str, ...]:
        return self.process_entrypoint + self.process_command

    @property
    def process_env(self) -> tuple[str, ...]:
        """The image's env with the user's applied over it, PATH defaulted when unset."""
        merged = merge_env(self.image.env, self.env)
        if not any(e.startswith("PATH=") for e in merged):
            merged = (f"PATH={DEFAULT_PATH}", *merged)
        return merged

    @property
    def process_cwd(self) -> str:
        """``--workdir``, else the image's WorkingDir (relative ones taken from /), else /."""
        cwd = self.workdir or self.image.working_dir or "/"
        return cwd if cwd.startswith("/") else f"/{cwd}"

    @property
    def process_user(self) -> UserSpec:
        """``--user``, else the image's User, else root."""
        if self.user is not None:
            return self.user
        if self.image.user:
            return parse_user(self.image.user, flag="the image's User")
        return UserSpec("0")

    @property
    def kill_signal(self) -> int:
        """``--stop-signal``, else the image's StopSignal, else SIGTERM."""
        if self.stop_signal is not None:
            return self.stop_signal
        if self.image.stop_signal:
            return parse_signal(self.image.stop_signal, flag="the image's StopSignal")
        return int(signal.SIGTERM)

    @property
    def all_labels(self) -> dict[str, str]:
        """The image's labels with the user's over them (what docker inspect shows)."""
        return {**self.image.labels, **self.labels}

    @property
    def host_network(self) -> bool:
        return self.network == "host"

    def with_resolved_user(self, passwd: str | None, group: str | None) -> ContainerSpec:
        """This spec with :attr:`process_user` resolved against the image's files' text."""
        user = resolve_user(self.process_user, passwd, group)
        extra = resolve_groups(self.isolation.group_add, group)
        gids = tuple(dict.fromkeys((*user.additional_gids, *extra)))
        return replace(self, resolved_user=replace(user, additional_gids=gids))


def merge_env(base: Iterable[str], overrides: Iterable[str]) -> tuple[str, ...]:
    """docker's ReplaceOrAppendEnvValues: an override replaces the entry of its key in place."""
    out = list(base)
    index = {e.partition("=")[0]: i for i, e in enumerate(out)}
    for entry in overrides:
        key = entry.partition("=")[0]
        if key in index:
            out[index[key]] = entry
        else:
            index[key] = len(out)
            out.append(entry)
    return tuple(out)


def resolve_user(user: UserSpec, passwd: str | None, group: str | None) -> ResolvedUser:
    """IDs of ``user`` from the text of the image's /etc/passwd and /etc/group.

    As runc's ``user.GetExecUser``: a number not in passwd is used as is (group 0, home /);
    a name must exist; supplementary groups are those listing the user, unless a group was
    given explicitly.
    """
    users = [f.split(":") for f in (passwd or "").splitlines() if f.count(":") >= 6]
    groups = [f.split(":") for f in (group or "").splitlines() if f.count(":") >= 3]
    found = next((u for u in users if (u[2] if _digits(user.user) else u[0]) == user.user), None)
    if found is None and not _digits(user.user):
        raise UsageError(
            f"unable to find user {user.user}: no matching entries in passwd file",
            hint="use a numeric --user UID[:GID], or a user that exists in the image",
        )
    sgids: list[int] = []
    match = None
    if user.group is not None:
        match = next((g for g in groups if user.group in (g[0], g[2])), None)
        if match is None and not _digits(user.group):
            raise UsageError(
                f"unable to find group {user.group}: no matching entries in group file",
                hint="use a numeric group, or a group that exists in the image",
            )
    try:
        uid = int(found[2]) if found else int(user.user)
        gid = int(found[3]) if found else 0
        if user.group is not None:
            gid = int(user.group if _digits(user.group) else match[2] if match else gid)
    except ValueError as exc:
        raise UsageError(
            f"the image's /etc/passwd or /etc/group entry for {user.raw} is malformed",
            hint="fix the image's files, or use a numeric --user UID:GID",
        ) from exc
    if user.group is None and found is not None:
        for g in groups:
            if found[0] in g[3].split(",") and _digits(g[2]) and int(g[2]) not in sgids:
                sgids.append(int(g[2]))
    home = found[5] if found and found[5] else "/"
    return ResolvedUser(uid, gid, tuple(sgids), home)


# ---- parsers of docker-run flag values -----------------------------------------------------

_SIZE = re.compile(r"(\d+(?:\.\d+)?) ?([kmgtp])?i?b?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_memory(value: str, *, flag: str = "--memory") -> int:
    """Bytes of a docker size (``512m``, ``1g``, ``1.5g``, ``1024``; units b, k, m, g, t, p).

    0 is accepted (docker's "no limit"); :class:`Limits` refuses values under 6 MiB.
    """
    match = _SIZE.fullmatch(value.strip())
    if not match:
        raise _bad(flag, value, "not a size", "give bytes or a number with a unit, e.g. 512m")
    size = float(match[1]) * _UNITS[(match[2] or "").lower()]
    if size >= 1 << 63:  # also infinity: float() of 400 digits
        raise _bad(flag, value, "too large", "give bytes or a number with a unit, e.g. 512m")
    return int(size)


def parse_memory_swap(value: str) -> int:
    """``--memory-swap``: a size, or -1 for unlimited swap."""
    return -1 if value.strip() == "-1" else parse_memory(value, flag="--memory-swap")


def parse_cpus(value: str) -> float:
    """``--cpus 1.5``: CPUs' worth of time per period; more than the host has is allowed."""
    try:
        cpus = float(value)
    except ValueError:
        raise _bad("--cpus", value, "not a number", "e.g. --cpus 1.5") from None
    if not math.isfinite(cpus) or cpus < 0.01:
        raise _bad("--cpus", value, "must be at least 0.01", "leave --cpus out for no limit")
    return cpus


def parse_pids_limit(value: str) -> int:
    """``--pids-limit N``; 0 and -1 mean unlimited (-1), as in docker."""
    try:
        limit = int(value)
    except ValueError:
        raise _bad("--pids-limit", value, "not an integer", "e.g. --pids-limit 100") from None
    if limit < -1:
        raise _bad("--pids-limit", value, "negative", "use -1 for no limit")
    return limit if limit > 0 else -1


def parse_restart(value: str) -> RestartPolicy:
    """``--restart no|always|unless-stopped|on-failure[:MAX_RETRIES]``."""
    name, colon, count = value.partition(":")
    hint = "use no, always, unless-stopped or on-failure[:MAX_RETRIES]"
    try:
        policy = RestartPolicyName(name)
    except ValueError:
        raise _bad("--restart", value, "unknown restart policy", hint) from None
    if not colon:
        return RestartPolicy(policy)
    if policy is not RestartPolicyName.ON_FAILURE:
        raise _bad("--restart", value, f"a retry count can't go with {name!r}", hint)
    if not re.fullmatch(r"-?\d+", count):
        raise _bad("--restart", value, "the retry count is not a number", hint)
    if int(count) < 0:
        raise _bad("--restart", value, "the retry count is negative", hint)
    return RestartPolicy(policy, int(count))


def parse_env(value: str, environ: Mapping[str, str], *, flag: str = "--env") -> str | None:
    """``-e KEY=VALUE``, or ``-e KEY`` taking KEY from ``environ`` (None when it is unset)."""
    key, eq, _ = value.partition("=")
    if not key or any(c.isspace() for c in key):
        raise _bad(flag, value, "no variable name, or one with spaces", "use KEY=VALUE or KEY")
    if eq:
        return value
    return f"{key}={environ[key]}" if key in environ else None


def parse_env_file(
    text: str, environ: Mapping[str, str], *, source: str = "--env-file"
) -> tuple[str, ...]:
    """docker's env-file syntax: ``KEY=VALUE`` lines taken verbatim (no quotes, no
    expansion), ``#`` comments and blank lines skipped, a bare ``KEY`` taken from
    ``environ`` when set there. ``source`` names the file in errors.
    """
    out: list[str] = []
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, _ = line.partition("=")
        key = key.lstrip()
        if not key or any(c.isspace() for c in key):
            why = "no variable name" if not key else f"variable {key!r} contains whitespace"
            raise UsageError(
                f"invalid env file {source}, line {number}: {why}",
                hint="write one KEY=VALUE (or a bare KEY) per line",
            )
        if eq:
            out.append(line)
        elif key in environ:
            out.append(f"{key}={environ[key]}")
    return tuple(out)


def parse_signal(value: str, *, flag: str = "--stop-signal") -> int:
    """A signal number from ``SIGTERM``, ``term``, ``15`` or ``RTMIN+3``."""
    text = value.strip().upper().removeprefix("SIG")
    hint = "give a name like SIGTERM or TERM, or a number like 15"
    if _digits(text):
        number = int(text)
    elif text.startswith(("RTMIN", "RTMAX")):
        offset = text[5:] or "+0"
        if not re.fullmatch(r"[+-]\d+", offset):
            raise _bad(flag, value, "not a signal", hint)
        base = signal.SIGRTMIN if text.startswith("RTMIN") else signal.SIGRTMAX
        number = int(base) + int(offset)
    else:
        try:
            number = int(signal.Signals[f"SIG{text}"])
        except KeyError:
            raise _bad(flag, value, "not a signal", hint) from None
    if not 1 <= number <= int(signal.SIGRTMAX):
        raise _bad(flag, value, "not a signal number", hint)
    return number


_TMPFS_FLAGS = {
    "rw": "ro", "ro": "rw", "exec": "noexec", "noexec": "exec", "suid": "nosuid",
    "nosuid": "suid", "dev": "nodev", "nodev": "dev", "atime": "noatime", "noatime": "atime",
    "strictatime": "", "relatime": "", "nodiratime": "", "diratime": "", "tmpcopyup": "",
    "notmpcopyup": "",
}  # fmt: skip
_TMPFS_VALUES = {
    "size": r"\d+[kmgKMG%]?",
    "mode": r"[0-7]{1,4}",
    "uid": r"\d+",
    "gid": r"\d+",
    "nr_inodes": r"\d+[kmgKMG%]?",
    "nr_blocks": r"\d+[kmgKMG%]?",
}


def parse_tmpfs(value: str) -> TmpfsMount:
    """``--tmpfs /run:rw,size=64m``: rw, noexec, nosuid, nodev unless the options say else."""
    dest, _, opts = value.partition(":")
    hint = "e.g. --tmpfs /run:rw,size=64m,mode=1777"
    if not dest.startswith("/") or dest.rstrip("/") == "":
        raise _bad("--tmpfs", value, "the destination must be an absolute path, not /", hint)
    chosen = [o for o in opts.split(",") if o]
    for opt in chosen:
        key, eq, val = opt.partition("=")
        if eq and key in _TMPFS_VALUES:
            if not re.fullmatch(_TMPFS_VALUES[key], val):
                raise _bad("--tmpfs", value, f"bad {key}= value {val!r}", hint)
        elif eq or key not in _TMPFS_FLAGS:
            raise _bad("--tmpfs", value, f"unknown option {opt!r}", hint)
    defaults = [d for d in ("rw", "noexec", "nosuid", "nodev") if _TMPFS_FLAGS[d] not in chosen]
    options = defaults + [o for o in chosen if o not in defaults]
    return TmpfsMount(dest, tuple(dict.fromkeys(options)))


def parse_user(value: str, *, flag: str = "--user") -> UserSpec:
    """``--user USER[:GROUP]``, each a name or a number."""
    user, colon, group = value.partition(":")
    hint = "use UID[:GID] or NAME[:GROUP], e.g. 1000:1000"
    if not user or (colon and not group) or ":" in group:
        raise _bad(flag, value, "not USER[:GROUP]", hint)
    for part in (user, group):
        if _digits(part) and int(part) > 0xFFFFFFFE:
            raise _bad(flag, value, f"{part} is out of range", hint)
        if part and not re.fullmatch(r"[A-Za-z0-9_.][A-Za-z0-9_.$-]*", part):
            raise _bad(flag, value, f"{part!r} is not a user or group name", hint)
    return UserSpec(user, group if colon else None)


def parse_label(value: str, *, flag: str = "--label") -> tuple[str, str]:
    """``--label KEY=VALUE`` (or a bare KEY, whose value is empty)."""
    key, _, val = value.partition("=")
    if not key.strip():
        raise _bad(flag, value, "the key is empty", "use KEY=VALUE")
    return key, val


def parse_capability(value: str, *, flag: str = "--cap-add") -> str:
    """``NET_ADMIN``, ``cap_net_admin`` or ``ALL`` → ``CAP_NET_ADMIN`` / ``ALL``."""
    name = value.strip().upper()
    if name == "ALL":
        return name
    name = name if name.startswith("CAP_") else f"CAP_{name}"
    if name not in ALL_CAPABILITIES:
        raise _bad(flag, value, "unknown capability", "see capabilities(7), e.g. NET_ADMIN")
    return name


def parse_entrypoint(value: str) -> tuple[str, ...]:
    """``--entrypoint CMD``; ``""`` clears the image's; a JSON array gives argv (podman)."""
    if value.startswith("["):
        try:
            argv = json.loads(value)
        except json.JSONDecodeError:
            argv = None
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise _bad("--entrypoint", value, "not a JSON array of strings", 'e.g. ["sh","-c"]')
        return tuple(argv)
    return (value,) if value else ()


def parse_userns(value: str) -> UsernsMode:
    """``--userns``: "" or host (the default), or keep-id."""
    try:
        return UsernsMode(value)
    except ValueError:
        raise _bad("--userns", value, "not supported", "use keep-id or host") from None


def parse_add_host(value: str) -> HostEntry:
    """``--add-host NAME:IP`` (or ``NAME=IP``; IPv6 may be in brackets; IP may be
    ``host-gateway``)."""
    sep = "=" if "=" in value else ":"
    name, _, address = value.partition(sep)
    address = address.removeprefix("[").removesuffix("]")
    hint = "e.g. --add-host db:10.0.0.5"
    if not name or not _HOSTNAME.fullmatch(name):
        raise _bad("--add-host", value, "not NAME:IP", hint)
    if address != "host-gateway":
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            raise _bad("--add-host", value, "not an IP address", hint) from None
    return HostEntry(name, address)


def parse_dns(value: str) -> str:
    """``--dns IP``."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise _bad("--dns", value, "not an IP address", "e.g. --dns 1.1.1.1") from None
