"""What a transient service is, and the D-Bus properties that ask systemd for it.

:class:`ServiceSpec` is the declarative side: a frozen, validated description of one
``.service`` unit (command, environment, limits, restart policy, logging, file descriptors).
:func:`plan_properties` is the pure translation into the ``a(sv)`` list that
``org.freedesktop.systemd1.Manager.StartTransientUnit`` takes, as ``(name, (signature,
value))`` pairs. Every name and signature follows org.freedesktop.systemd1(5) ("Properties"
of the Service, Unit, cgroup, exec and kill interfaces) as implemented by systemd 252
(Debian 12), and ``systemd-run``'s src/shared/bus-unit-util.c for the write-only ones
(``Std*FileDescriptor``, ``AddRef``).

A field left at ``None`` (or ``False``/empty) is not sent: the manager's default applies.
``Type=`` and ``Restart=`` are always sent, because rctl's defaults (``exec``, ``no``)
differ from or must not depend on the manager's.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from rctlbase.errors import UsageError
from units.unitfile import has_control, unit_name_problem

# systemd's "infinity" for usec and limit properties (UINT64_MAX), e.g. TasksMax=infinity.
USEC_INFINITY = 2**64 - 1
# A setting comes from a flag of the CLI or a key of a definition file, named first.
_SETTING_HINT = "fix the flag or definition key named first (see docs/definitions.md)"
INFINITY = USEC_INFINITY

# journal_field_valid(): upper case, digits and '_', not starting with '_' or a digit,
# at most 64 bytes (src/libsystemd/sd-journal/journal-file.c).
_JOURNAL_FIELD = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_TAB_NL = re.compile(r"[\t\n]")

Property = tuple[str, tuple[str, Any]]


class ServiceType(StrEnum):
    """``Type=`` of systemd.service(5). ``exec`` reports a failed exec() as a start failure."""

    SIMPLE = "simple"
    EXEC = "exec"
    FORKING = "forking"
    ONESHOT = "oneshot"
    DBUS = "dbus"
    NOTIFY = "notify"
    IDLE = "idle"


class RestartPolicy(StrEnum):
    """``Restart=`` of systemd.service(5)."""

    NO = "no"
    ON_SUCCESS = "on-success"
    ON_FAILURE = "on-failure"
    ON_ABNORMAL = "on-abnormal"
    ON_WATCHDOG = "on-watchdog"
    ON_ABORT = "on-abort"
    ALWAYS = "always"


class KillMode(StrEnum):
    """``KillMode=`` of systemd.kill(5)."""

    CONTROL_GROUP = "control-group"
    MIXED = "mixed"
    PROCESS = "process"
    NONE = "none"


class CollectMode(StrEnum):
    """``CollectMode=`` of systemd.unit(5): when the manager forgets an ended unit."""

    INACTIVE = "inactive"
    INACTIVE_OR_FAILED = "inactive-or-failed"


@dataclass(frozen=True, slots=True)
class ExecCommand:
    """One command line of ``ExecStopPost=`` and friends.

    ``ignore_failure`` is the ``-`` prefix of unit files: a failing command does not make
    the unit's result a failure.
    """

    argv: tuple[str, ...]
    ignore_failure: bool = False

    def __post_init__(self) -> None:
        check_argv("exec_stop_post", self.argv)


@dataclass(frozen=True, slots=True)
class StartLimit:
    """``StartLimitBurst=`` within ``StartLimitIntervalUSec=`` (systemd.unit(5)).

    The manager counts every start, the first one and each automatic restart; once
    ``burst`` starts happened within ``interval_usec`` the unit fails with result
    ``start-limit-hit`` and is not restarted again. An interval of 0 disables the limit.
    """

    burst: int
    interval_usec: int

    @classmethod
    def max_restarts(cls, restarts: int) -> StartLimit:
        """Docker's ``on-failure:N``: at most ``restarts`` restarts after the first start.

        N restarts are N + 1 starts, and an infinite interval means the count never
        resets by itself (``reset_failed`` resets it, like a manual restart in Docker).
        """
        if restarts < 0:
            raise UsageError(
                f"max restarts must be 0 or more, not {restarts}",
                hint="give a restart count of 0 or more",
            )
        return cls(burst=restarts + 1, interval_usec=USEC_INFINITY)

    @classmethod
    def unlimited(cls) -> StartLimit:
        """No start limit: ``always`` and ``on-failure`` without N restart forever."""
        return cls(burst=0, interval_usec=0)


@dataclass(frozen=True, slots=True)
class ResourceSetting:
    """One setting of systemd.resource-control(5) that a :class:`ServiceSpec` field holds.

    ``property`` is its D-Bus name (with ``signature``), ``key`` its unit-file name, which
    differs where the file takes another unit (``CPUQuota=150%`` is
    ``CPUQuotaPerSecUSec=1500000``); ``low``..``high`` is what systemd accepts.
    """

    field: str
    property: str
    key: str
    signature: str = "t"
    low: int = 0
    high: int = INFINITY


# Every resource limit a unit can get: plan_properties sends them in this order, and the
# unit-file rendering (units/unitrender.py) writes them from the same table. A new limit
# is a ServiceSpec field and one line here.
RESOURCE_SETTINGS = (
    ResourceSetting("memory_max", "MemoryMax", "MemoryMax"),
    ResourceSetting("memory_swap_max", "MemorySwapMax", "MemorySwapMax"),
    ResourceSetting("cpu_quota_per_sec_usec", "CPUQuotaPerSecUSec", "CPUQuota"),
    ResourceSetting("cpu_weight", "CPUWeight", "CPUWeight", low=1, high=10000),
    ResourceSetting("tasks_max", "TasksMax", "TasksMax"),
    ResourceSetting("memory_low", "MemoryLow", "MemoryLow"),
    ResourceSetting("io_weight", "IOWeight", "IOWeight", low=1, high=10000),
)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A transient ``.service`` unit, validated on construction (UsageError names the field).

    Sizes are bytes, durations microseconds, ``None`` means "the manager's default".
    ``memory_swap_max`` is swap alone (cgroup ``memory.swap.max``), not Docker's
    memory+swap total. ``cpu_quota_per_sec_usec`` is CPU time per wall-clock second
    (``--cpus 1.5`` is 1_500_000). The ``*_fd`` fields are descriptors of this process that
    the manager receives and gives the service as stdin/stdout/stderr (attached runs);
    ``pid_file`` names the main process of a ``forking`` service (``PIDFile=``);
    without them output goes to the journal. journald tags a user service's output with
    ``_SYSTEMD_USER_UNIT``, ``_SYSTEMD_INVOCATION_ID`` and ``SYSLOG_IDENTIFIER``
    (``syslog_identifier``); ``log_extra_fields`` is sent and set on the unit, but the user
    manager (systemd 252 at least) does not export it to journald, so it reaches the
    entries of system-manager units only (github.com/systemd/systemd/issues/29956).
    ``add_ref`` keeps the unit loaded (results readable) while this client's bus
    connection holds a reference, even with ``collect_mode``.
    """

    name: str
    exec_start: tuple[str, ...]
    description: str = ""
    service_type: ServiceType = ServiceType.EXEC
    pid_file: str | None = None
    notify_access: str | None = None  # NotifyAccess= of a notify service: main, all...
    environment: Mapping[str, str] = field(default_factory=dict)
    working_directory: str | None = None
    exec_stop_post: tuple[ExecCommand, ...] = ()
    restart: RestartPolicy = RestartPolicy.NO
    restart_usec: int | None = None
    start_limit: StartLimit | None = None
    timeout_start_usec: int | None = None
    timeout_stop_usec: int | None = None
    remain_after_exit: bool = False
    kill_mode: KillMode | None = None
    kill_signal: int | None = None
    send_sighup: bool = False
    delegate: bool = False
    slice: str | None = None
    memory_max: int | None = None
    memory_swap_max: int | None = None
    cpu_quota_per_sec_usec: int | None = None
    cpu_weight: int | None = None
    tasks_max: int | None = None
    memory_low: int | None = None
    io_weight: int | None = None
    allowed_cpus: bytes | None = None  # AllowedCPUs=: CPU n is bit n % 8 of byte n // 8
    cpu_quota_period_usec: int | None = None
    standard_output: str | None = None  # StandardOutput= and StandardError=: "null"...
    syslog_identifier: str | None = None
    log_extra_fields: Mapping[str, str] = field(default_factory=dict)
    stdin_fd: int | None = None
    stdout_fd: int | None = None
    stderr_fd: int | None = None
    collect_mode: CollectMode | None = None
    add_ref: bool = False
    # [Unit] dependencies: a pod's member is bound to and ordered after the pod's unit.
    binds_to: tuple[str, ...] = ()
    after: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Freeze the mappings too: a spec must not change after it was validated.
        object.__setattr__(self, "environment", MappingProxyType(dict(self.environment)))
        object.__setattr__(self, "log_extra_fields", MappingProxyType(dict(self.log_extra_fields)))
        check_unit_name("name", self.name, ".service")
        check_argv("exec_start", self.exec_start)
        for key, value in self.environment.items():
            # env_assignment_is_valid() of systemd: a value may hold tabs and newlines.
            if not key or "=" in key or has_control(key) or has_control(_TAB_NL.sub("", value)):
                raise UsageError(f"environment: invalid variable {key!r}", hint=_SETTING_HINT)
        # The manager keeps a transient unit as a unit file, read back at a daemon-reload,
        # and writes these without C escapes (unlike Environment= or LogExtraFields=): a
        # newline or carriage return would start a setting of its own there.
        for what in ("description", "syslog_identifier", "working_directory", "pid_file"):
            if has_control(getattr(self, what) or ""):
                raise UsageError(f"{what}: control characters are not allowed", hint=_SETTING_HINT)
        for key in self.log_extra_fields:
            if not _JOURNAL_FIELD.fullmatch(key):
                raise UsageError(
                    f"log_extra_fields: {key!r} is not a journal field name",
                    hint="use upper case letters, digits and _, starting with a letter",
                )
        if "\0" in "".join(self.log_extra_fields.values()):
            raise UsageError(
                "log_extra_fields: values must not contain NUL bytes", hint=_SETTING_HINT
            )
        if self.pid_file is not None and not self.pid_file.startswith("/"):
            raise UsageError(
                f"pid_file: {self.pid_file!r} is not an absolute path", hint=_SETTING_HINT
            )
        if self.working_directory is not None and not self.working_directory.startswith("/"):
            raise UsageError(
                f"working_directory: {self.working_directory!r} is not an absolute path",
                hint=_SETTING_HINT,
            )
        if self.slice is not None:
            check_unit_name("slice", self.slice, ".slice")
        self._check_dependencies()
        if self.syslog_identifier == "":
            raise UsageError("syslog_identifier: must not be empty", hint=_SETTING_HINT)
        self._check_numbers()
        if self.service_type == ServiceType.ONESHOT and self.restart in (
            RestartPolicy.ALWAYS,
            RestartPolicy.ON_SUCCESS,
        ):
            # service_verify() in src/core/service.c refuses this combination.
            raise UsageError(
                f"restart: {self.restart} is not allowed for a oneshot service", hint=_SETTING_HINT
            )

    def _check_dependencies(self) -> None:
        for what in ("binds_to", "after"):
            for unit in getattr(self, what):
                check_unit_name(what, unit, "." + unit.rpartition(".")[2])

    def _check_numbers(self) -> None:
        for name in (
            "restart_usec",
            "timeout_start_usec",
            "timeout_stop_usec",
            "cpu_quota_period_usec",
            "stdin_fd",
            "stdout_fd",
            "stderr_fd",
        ):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= INFINITY:
                raise UsageError(f"{name}: {value} is out of range", hint=_SETTING_HINT)
        for setting in RESOURCE_SETTINGS:
            value = getattr(self, setting.field)
            if value is not None and not setting.low <= value <= setting.high:
                raise UsageError(
                    f"{setting.field}: {value} is not within {setting.low}..{setting.high}",
                    hint=_SETTING_HINT,
                )
        if self.standard_output not in (None, "null", "journal", "inherit"):
            raise UsageError(
                f"standard_output: {self.standard_output!r} is not null, journal or inherit",
                hint=_SETTING_HINT,
            )
        if self.kill_signal is not None and not 1 <= self.kill_signal <= signal.SIGRTMAX:
            raise UsageError(
                f"kill_signal: {self.kill_signal} is not a signal number", hint=_SETTING_HINT
            )
        if self.start_limit is not None and (
            self.start_limit.burst < 0 or not 0 <= self.start_limit.interval_usec <= INFINITY
        ):
            raise UsageError(f"start_limit: {self.start_limit} is out of range", hint=_SETTING_HINT)


def check_unit_name(what: str, name: str, suffix: str) -> None:
    """Raise UsageError unless ``name`` is a valid unit name ending in ``suffix``."""
    if not name.endswith(suffix) or unit_name_problem(name) is not None:
        raise UsageError(
            f"{what}: {name!r} is not a valid unit name",
            hint=f"use letters, digits and :_.-@ and the suffix {suffix}",
        )


def check_argv(what: str, argv: tuple[str, ...]) -> None:
    """Raise UsageError unless ``argv`` is a command systemd accepts.

    systemd takes an absolute path or a bare name it looks up itself, never a relative
    path (filename_or_absolute_path_is_valid() in src/core/dbus-execute.c).
    """
    if not argv or not argv[0]:
        raise UsageError(f"{what}: the command is empty", hint=_SETTING_HINT)
    if "/" in argv[0] and not argv[0].startswith("/"):
        raise UsageError(
            f"{what}: {argv[0]!r} is neither an absolute path nor a bare program name",
            hint=_SETTING_HINT,
        )
    if any("\0" in arg for arg in argv):
        raise UsageError(f"{what}: arguments must not contain NUL bytes", hint=_SETTING_HINT)


def exec_command_value(argv: tuple[str, ...], *, ignore_failure: bool = False) -> list[Any]:
    """One ``(sasb)`` entry of ``ExecStart=``: binary, argv (with argv[0]), ignore failure."""
    return [argv[0], list(argv), ignore_failure]


def plan_properties(spec: ServiceSpec) -> list[Property]:
    """The ``StartTransientUnit`` properties of ``spec``, in a stable order.

    Values are plain Python values matching their signature (lists for arrays, bytes for
    ``ay``); the ``h`` (file descriptor) values are this process's descriptor numbers,
    which the bus layer moves into the message's fd array.
    """
    props: list[Property] = []

    def add(name: str, signature: str, value: Any, when: bool = True) -> None:
        if when:
            props.append((name, (signature, value)))

    add("Description", "s", spec.description, bool(spec.description))
    add("BindsTo", "as", list(spec.binds_to), bool(spec.binds_to))
    add("After", "as", list(spec.after), bool(spec.after))
    add("Type", "s", str(spec.service_type))
    add("PIDFile", "s", spec.pid_file, spec.pid_file is not None)
    add("NotifyAccess", "s", spec.notify_access, spec.notify_access is not None)
    add("ExecStart", "a(sasb)", [exec_command_value(spec.exec_start)])
    add(
        "ExecStopPost",
        "a(sasb)",
        [exec_command_value(c.argv, ignore_failure=c.ignore_failure) for c in spec.exec_stop_post],
        bool(spec.exec_stop_post),
    )
    add(
        "Environment",
        "as",
        [f"{key}={value}" for key, value in spec.environment.items()],
        bool(spec.environment),
    )
    add("WorkingDirectory", "s", spec.working_directory, spec.working_directory is not None)
    add("Restart", "s", str(spec.restart))
    add("RestartUSec", "t", spec.restart_usec, spec.restart_usec is not None)
    if spec.start_limit is not None:
        add("StartLimitBurst", "u", spec.start_limit.burst)
        add("StartLimitIntervalUSec", "t", spec.start_limit.interval_usec)
    add("TimeoutStartUSec", "t", spec.timeout_start_usec, spec.timeout_start_usec is not None)
    add("TimeoutStopUSec", "t", spec.timeout_stop_usec, spec.timeout_stop_usec is not None)
    add("RemainAfterExit", "b", True, spec.remain_after_exit)
    add("KillMode", "s", str(spec.kill_mode), spec.kill_mode is not None)
    add("KillSignal", "i", spec.kill_signal, spec.kill_signal is not None)
    add("SendSIGHUP", "b", True, spec.send_sighup)
    add("Delegate", "b", True, spec.delegate)
    add("Slice", "s", spec.slice, spec.slice is not None)
    for setting in RESOURCE_SETTINGS:
        value = getattr(spec, setting.field)
        add(setting.property, setting.signature, value, value is not None)
    add("AllowedCPUs", "ay", spec.allowed_cpus, spec.allowed_cpus is not None)
    add(
        "CPUQuotaPeriodUSec",
        "t",
        spec.cpu_quota_period_usec,
        spec.cpu_quota_period_usec is not None,
    )
    add("StandardOutput", "s", spec.standard_output, spec.standard_output is not None)
    add("StandardError", "s", spec.standard_output, spec.standard_output is not None)
    add("SyslogIdentifier", "s", spec.syslog_identifier, spec.syslog_identifier is not None)
    add(
        "LogExtraFields",
        "aay",
        [f"{key}={value}".encode() for key, value in spec.log_extra_fields.items()],
        bool(spec.log_extra_fields),
    )
    add("StandardInputFileDescriptor", "h", spec.stdin_fd, spec.stdin_fd is not None)
    add("StandardOutputFileDescriptor", "h", spec.stdout_fd, spec.stdout_fd is not None)
    add("StandardErrorFileDescriptor", "h", spec.stderr_fd, spec.stderr_fd is not None)
    add("CollectMode", "s", str(spec.collect_mode), spec.collect_mode is not None)
    add("AddRef", "b", True, spec.add_ref)
    return props


def split_fds(properties: list[Property]) -> tuple[list[Property], list[int]]:
    """Replace each ``h`` value by its index in the returned fd list (the wire encoding).

    D-Bus sends descriptors out of band (SCM_RIGHTS) and an ``h`` in the body is an index
    into the message's fd array (D-Bus specification, "UNIX_FD").
    """
    fds: list[int] = []
    out: list[Property] = []
    for name, (signature, value) in properties:
        if signature == "h":
            if value not in fds:
                fds.append(value)
            out.append((name, (signature, fds.index(value))))
        else:
            out.append((name, (signature, value)))
    return out, fds
