"""Seccomp profiles for containers: the default one, and profiles given by the user.

A profile is a list of :class:`SyscallRule` that may depend on the container's capabilities
and on the host's architecture and kernel (docker's ``includes``/``excludes``). Rendering one
for a container (:func:`plan_seccomp`) keeps the rules that apply and gives runtime-spec's
``linux.seccomp`` object (runtime-spec config-linux.md, "Seccomp"), which crun hands to
libseccomp. The filtering is containers/common's (``pkg/seccomp`` ``setupSeccomp``): a
rule is dropped when the host's arch is in ``excludes.arches``, any of ``excludes.caps`` is
in the bounding set or the kernel is at least ``excludes.minKernel``; and when the arch is
not in ``includes.arches``, one of ``includes.caps`` is missing or the kernel is older than
``includes.minKernel``.

The default profile is podman's: the file containers-common installs
(``/usr/share/containers/seccomp.json``, or the admin's ``/etc/containers/seccomp.json``),
and on hosts without it rctl's copy of that file (``seccomp.json`` beside this module). It
is read when a container is planned (:func:`load_default_profile`), never at start-up.
Everything not listed fails with ENOSYS, a few dangerous syscalls (``kexec_load``,
``userfaultfd``...) with EPERM, and those guarded by a capability (``bpf`` by CAP_SYS_ADMIN,
``chroot`` by CAP_SYS_CHROOT...) only work when the container has it. ``io_uring_*`` is
not allowed (moby dropped it from its profile too, for the kernel bugs it keeps exposing).

``--security-opt seccomp=PATH`` profiles are docker's format (``archMap``, ``includes``,
``excludes``) or plain runtime-spec objects (``architectures``); both are read by
:func:`parse_seccomp_profile` from the text the caller read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from rctlbase.errors import HostError, UsageError

_E = TypeVar("_E", bound=StrEnum)


class Action(StrEnum):
    """What libseccomp does for a matching syscall (runtime-spec "seccomp actions")."""

    ALLOW = "SCMP_ACT_ALLOW"
    ERRNO = "SCMP_ACT_ERRNO"
    KILL = "SCMP_ACT_KILL"
    KILL_PROCESS = "SCMP_ACT_KILL_PROCESS"
    KILL_THREAD = "SCMP_ACT_KILL_THREAD"
    TRAP = "SCMP_ACT_TRAP"
    TRACE = "SCMP_ACT_TRACE"
    LOG = "SCMP_ACT_LOG"
    NOTIFY = "SCMP_ACT_NOTIFY"


class Op(StrEnum):
    """How a syscall argument is compared (runtime-spec "seccomp operators")."""

    NE = "SCMP_CMP_NE"
    LT = "SCMP_CMP_LT"
    LE = "SCMP_CMP_LE"
    EQ = "SCMP_CMP_EQ"
    GE = "SCMP_CMP_GE"
    GT = "SCMP_CMP_GT"
    MASKED_EQ = "SCMP_CMP_MASKED_EQ"


# Host machine (uname -m) -> docker's GOARCH name used in rules' "arches" filters, and the
# libseccomp architectures a filter covers there (moby's archMap: native arch + sub-arches).
MACHINE_GOARCH: Mapping[str, str] = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "i686": "x86",
}
ARCHITECTURES: Mapping[str, tuple[str, ...]] = {
    "x86_64": ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
    "aarch64": ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"),
}
NATIVE_SCMP_ARCH: Mapping[str, str] = {
    "x86_64": "SCMP_ARCH_X86_64",
    "aarch64": "SCMP_ARCH_AARCH64",
    "s390x": "SCMP_ARCH_S390X",
}


@dataclass(frozen=True, slots=True)
class SyscallArg:
    """A condition on argument ``index`` of a syscall."""

    index: int
    value: int
    op: Op
    value_two: int = 0

    def to_oci(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "value": self.value,
            "valueTwo": self.value_two,
            "op": self.op.value,
        }


@dataclass(frozen=True, slots=True)
class SyscallRule:
    """Syscalls and the action for them, with docker's conditions on when the rule applies.

    The rule applies when every cap of ``caps`` is in the bounding set, none of ``not_caps``
    is, the host's GOARCH is in ``arches`` (when given) and not in ``not_arches``, and the
    kernel (when known) is at least ``min_kernel`` and older than ``not_min_kernel``.
    """

    names: tuple[str, ...]
    action: Action = Action.ALLOW
    args: tuple[SyscallArg, ...] = ()
    errno_ret: int | None = None
    caps: frozenset[str] = frozenset()
    not_caps: frozenset[str] = frozenset()
    arches: frozenset[str] = frozenset()
    not_arches: frozenset[str] = frozenset()
    min_kernel: tuple[int, int] | None = None
    not_min_kernel: tuple[int, int] | None = None

    def applies(self, caps: frozenset[str], goarch: str, kernel: tuple[int, int] | None) -> bool:
        """Whether the rule is part of the filter for these capabilities and this host."""
        if not self.caps <= caps or self.not_caps & caps:
            return False
        if (self.arches and goarch not in self.arches) or goarch in self.not_arches:
            return False
        if kernel is None:
            return True
        if self.not_min_kernel is not None and kernel >= self.not_min_kernel:
            return False
        return self.min_kernel is None or kernel >= self.min_kernel

    def to_oci(self) -> dict[str, Any]:
        out: dict[str, Any] = {"names": list(self.names), "action": self.action.value}
        if self.args:
            out["args"] = [arg.to_oci() for arg in self.args]
        if self.errno_ret is not None:
            out["errnoRet"] = self.errno_ret
        return out


@dataclass(frozen=True, slots=True)
class SeccompProfile:
    """A whole profile: the default action and the rules, before host and caps are known.

    ``architectures`` None means "the host's" (:data:`ARCHITECTURES`), as docker's archMap.
    """

    default_action: Action
    rules: tuple[SyscallRule, ...]
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] | None = None

    def render(
        self,
        caps: Iterable[str],
        machine: str = "x86_64",
        kernel: tuple[int, int] | None = None,
    ) -> dict[str, Any]:
        """The ``linux.seccomp`` object for a process with bounding set ``caps`` on ``machine``."""
        if self.architectures is None and machine not in ARCHITECTURES:
            raise HostError(
                f"rctl has no seccomp architecture list for {machine}",
                hint="run with --security-opt seccomp=unconfined, or give a profile "
                "that lists its architectures",
            )
        capset = frozenset(caps)
        goarch = MACHINE_GOARCH.get(machine, machine)
        out: dict[str, Any] = {"defaultAction": self.default_action.value}
        if self.default_errno_ret is not None:
            out["defaultErrnoRet"] = self.default_errno_ret
        arches = ARCHITECTURES[machine] if self.architectures is None else self.architectures
        out["architectures"] = list(arches)
        out["syscalls"] = [r.to_oci() for r in self.rules if r.applies(capset, goarch, kernel)]
        return out


# Where podman finds its default profile (containers/common pkg/config: SeccompOverridePath,
# then SeccompDefaultPath): the admin's override, then the one containers-common installs
# and the distribution keeps up to date.
SYSTEM_PROFILES = (
    Path("/etc/containers/seccomp.json"),
    Path("/usr/share/containers/seccomp.json"),
)
# A copy of containers-common's file for hosts without it (packaging/update-seccomp-profile
# regenerates it; a unit test compares it with the host's file).
EMBEDDED_PROFILE = Path(__file__).with_name("seccomp.json")


def default_profile_path() -> Path:
    """The default profile's file: the first of :data:`SYSTEM_PROFILES` present, else
    rctl's copy."""
    for path in SYSTEM_PROFILES:
        if path.is_file():
            return path
    return EMBEDDED_PROFILE


def load_default_profile(machine: str = "x86_64") -> SeccompProfile:
    """The default profile (:func:`default_profile_path`), read when a container is planned,
    not when rctl starts."""
    return load_profile_file(default_profile_path(), machine)


def load_profile_file(path: Path, machine: str = "x86_64") -> SeccompProfile:
    """A profile installed on the host or with rctl: a broken one is the host's fault."""
    try:
        return parse_seccomp_profile(path.read_text(), machine)
    except OSError as exc:
        raise HostError(
            f"cannot read the default seccomp profile {path}: {exc.strerror}",
            hint="reinstall containers-common, or run with --security-opt seccomp=unconfined",
        ) from exc
    except UsageError as exc:
        raise HostError(
            f"the default seccomp profile {path} is invalid: {exc.message}",
            hint="reinstall containers-common, or run with --security-opt seccomp=unconfined",
        ) from exc


def plan_seccomp(
    profile: SeccompProfile | None,
    caps: Iterable[str],
    *,
    machine: str = "x86_64",
    kernel: tuple[int, int] | None = None,
) -> dict[str, Any] | None:
    """``linux.seccomp`` for a container, or None for ``seccomp=unconfined``.

    ``caps`` is the process's bounding set (``CAP_*`` names); ``machine`` is the host's
    ``uname -m``; ``kernel`` its (major, minor) when known.
    """
    if profile is None:
        return None
    return profile.render(caps, machine, kernel)


# ---- profiles given with --security-opt seccomp=PATH ------------------------------------


def _bad_profile(why: str) -> UsageError:
    return UsageError(
        f"invalid seccomp profile: {why}",
        hint="give a JSON profile in docker's format (see moby profiles/seccomp/default.json)",
    )


def _enum(kind: type[_E], value: object, where: str) -> _E:
    try:
        return kind(str(value))
    except ValueError:
        raise _bad_profile(f"{where} is not a known value: {value!r}") from None


def _int(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _bad_profile(f"{where} must be a non-negative integer, not {value!r}")
    return value


def _strings(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad_profile(f"{where} must be a list of strings")
    return tuple(value)


def _filter(rule: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = rule.get(key) or {}
    if not isinstance(value, dict):
        raise _bad_profile(f"{where}.{key} must be an object")
    return value


def _rule(item: object, where: str) -> SyscallRule:
    if not isinstance(item, dict):
        raise _bad_profile(f"{where} is not an object")
    names = _strings(item.get("names"), f"{where}.names")
    if "name" in item:  # docker's pre-1.13 form: one name per rule
        if names:
            raise _bad_profile(f"{where} has both name and names: use one")
        names = _strings([item["name"]], f"{where}.name")
    if not names:
        raise _bad_profile(f"{where} names no syscall")
    args = []
    for i, arg in enumerate(item.get("args") or []):
        at = f"{where}.args[{i}]"
        if not isinstance(arg, dict):
            raise _bad_profile(f"{at} is not an object")
        args.append(
            SyscallArg(
                index=_int(arg.get("index"), f"{at}.index"),
                value=_int(arg.get("value", 0), f"{at}.value"),
                value_two=_int(arg.get("valueTwo", 0), f"{at}.valueTwo"),
                op=_enum(Op, arg.get("op"), f"{at}.op"),
            )
        )
    inc, exc = _filter(item, "includes", where), _filter(item, "excludes", where)
    errno_ret = item.get("errnoRet")
    return SyscallRule(
        names=names,
        action=_enum(Action, item.get("action"), f"{where}.action"),
        args=tuple(args),
        errno_ret=None if errno_ret is None else _int(errno_ret, f"{where}.errnoRet"),
        caps=frozenset(_strings(inc.get("caps"), f"{where}.includes.caps")),
        not_caps=frozenset(_strings(exc.get("caps"), f"{where}.excludes.caps")),
        arches=frozenset(_strings(inc.get("arches"), f"{where}.includes.arches")),
        not_arches=frozenset(_strings(exc.get("arches"), f"{where}.excludes.arches")),
        min_kernel=_kernel(inc.get("minKernel"), f"{where}.includes.minKernel"),
        not_min_kernel=_kernel(exc.get("minKernel"), f"{where}.excludes.minKernel"),
    )


def _kernel(value: object, where: str) -> tuple[int, int] | None:
    """docker's KernelVersion, "MAJOR.MINOR" (a patch level is ignored, as docker does)."""
    if not value:
        return None
    major, _, minor = str(value).partition(".")
    minor = minor.partition(".")[0]
    if not (major.isdigit() and minor.isdigit()):
        raise _bad_profile(f"{where} is not a version: {value}")
    return int(major), int(minor)


def parse_seccomp_profile(text: str, machine: str = "x86_64") -> SeccompProfile:
    """Read a profile given with ``--security-opt seccomp=PATH`` (the file's text).

    Docker's ``archMap`` picks the entry of the host's native architecture; a runtime-spec
    ``architectures`` list is taken as is; with neither, the host's default list is used.
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad_profile(f"not JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(doc, dict):
        raise _bad_profile("not a JSON object")
    if "defaultAction" not in doc:
        raise _bad_profile("it has no defaultAction")
    if doc.get("archMap") and doc.get("architectures"):
        raise _bad_profile("it has both architectures and archMap: use one")
    architectures: tuple[str, ...] | None = None
    if doc.get("archMap"):
        native = NATIVE_SCMP_ARCH.get(machine)
        if not isinstance(doc["archMap"], list):
            raise _bad_profile("archMap must be a list")
        for i, entry in enumerate(doc["archMap"]):
            if not isinstance(entry, dict):
                raise _bad_profile(f"archMap[{i}] is not an object")
            if entry.get("architecture") == native:
                subs = _strings(entry.get("subArchitectures"), f"archMap[{i}].subArchitectures")
                architectures = (str(native), *subs)
                break  # the first entry for it, as containers/common takes
        architectures = architectures or ()
    elif doc.get("architectures"):
        architectures = _strings(doc["architectures"], "architectures")
    syscalls = doc.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise _bad_profile("syscalls must be a list")
    errno_ret = doc.get("defaultErrnoRet")
    return SeccompProfile(
        default_action=_enum(Action, doc["defaultAction"], "defaultAction"),
        default_errno_ret=None if errno_ret is None else _int(errno_ret, "defaultErrnoRet"),
        rules=tuple(_rule(item, f"syscalls[{i}]") for i, item in enumerate(syscalls)),
        architectures=architectures,
    )


# ---- the user's choice ------------------------------------------------------------------


class SeccompMode(StrEnum):
    """``--security-opt seccomp=``: the default profile, none, or the user's."""

    DEFAULT = "default"
    UNCONFINED = "unconfined"
    CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class SeccompPolicy:
    """The seccomp choice; ``profile_text`` is the JSON of a CUSTOM profile, checked here."""

    mode: SeccompMode = SeccompMode.DEFAULT
    profile_text: str | None = None

    def __post_init__(self) -> None:
        if (self.mode is SeccompMode.CUSTOM) != (self.profile_text is not None):
            raise ValueError("a seccomp profile's text goes with mode CUSTOM, and only with it")
        if self.profile_text is not None:
            parse_seccomp_profile(self.profile_text)

    @classmethod
    def from_option(cls, value: str, read: Callable[[str], str]) -> SeccompPolicy:
        """``--security-opt seccomp=VALUE``: ``unconfined``, ``builtin`` (docker's name for
        the default) or the path of a profile, whose text ``read`` returns.
        """
        if value == "unconfined":
            return cls(SeccompMode.UNCONFINED)
        if value == "builtin":
            return cls()
        if not value:
            raise UsageError(
                "invalid --security-opt value 'seccomp=': no profile",
                hint="use seccomp=unconfined or seccomp=/path/to/profile.json",
            )
        return cls(SeccompMode.CUSTOM, read(value))

    def profile(self, machine: str = "x86_64") -> SeccompProfile | None:
        """The profile to render, None when unconfined."""
        if self.mode is SeccompMode.UNCONFINED:
            return None
        if self.profile_text is None:
            return load_default_profile(machine)
        return parse_seccomp_profile(self.profile_text, machine)
