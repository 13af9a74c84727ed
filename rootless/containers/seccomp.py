"""Seccomp profiles for containers: docker's default, and profiles given by the user.

A profile is a list of :class:`SyscallRule` that may depend on the container's capabilities
and on the host's architecture (docker's ``includes``/``excludes``). Rendering one for a
container (:func:`plan_seccomp`) keeps the rules that apply and gives runtime-spec's
``linux.seccomp`` object (runtime-spec config-linux.md, "Seccomp"), which crun hands to
libseccomp.

The default profile is moby's ``profiles/seccomp/default.json`` (the same allow list as
``default_linux.go``): everything not listed fails with EPERM (``defaultErrnoRet`` 1),
``clone`` may not make namespaces and ``clone3`` fails with ENOSYS (so libc falls back to
``clone``, whose flags seccomp can inspect) unless CAP_SYS_ADMIN was added, and syscalls
guarded by a capability (``mount`` by CAP_SYS_ADMIN, ``reboot`` by CAP_SYS_BOOT...) are
allowed only when ``--cap-add`` gave it. Podman's ``containers/common`` profile differs in
details (ENOSYS as its default errno); docker's is the reference here.

``--security-opt seccomp=PATH`` profiles are docker's format (``archMap``, ``includes``,
``excludes``) or plain runtime-spec objects (``architectures``); both are read by
:func:`parse_seccomp_profile` from the text the caller read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from rctlbase.errors import HostError, UsageError

# Docker's errno for syscalls outside the allow list, and for clone3 without CAP_SYS_ADMIN.
EPERM = 1
ENOSYS = 38

# The flags of clone(2) that make namespaces: the default profile refuses them without
# CAP_SYS_ADMIN (CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET).
CLONE_NAMESPACE_FLAGS = 0x7E020000
AF_VSOCK = 40

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
MACHINE_GOARCH: Mapping[str, str] = {"x86_64": "amd64", "aarch64": "arm64"}
ARCHITECTURES: Mapping[str, tuple[str, ...]] = {
    "x86_64": ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
    "aarch64": ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"),
}
NATIVE_SCMP_ARCH: Mapping[str, str] = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}


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
    kernel is at least ``min_kernel`` (when known).
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

    def applies(self, caps: frozenset[str], goarch: str, kernel: tuple[int, int] | None) -> bool:
        """Whether the rule is part of the filter for these capabilities and this host."""
        if not self.caps <= caps or self.not_caps & caps:
            return False
        if (self.arches and goarch not in self.arches) or goarch in self.not_arches:
            return False
        return self.min_kernel is None or kernel is None or kernel >= self.min_kernel

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


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# moby profiles/seccomp/default.json, the unconditional allow list.
_ALLOWED = _names("""
    accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
    clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
    clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect
    copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
    epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
    exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir
    fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr
    flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync
    ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd getdents
    getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32
    getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
    getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname
    getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch
    inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents
    io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit
    io_uring_enter io_uring_register io_uring_setup ipc kill landlock_add_rule
    landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat
    listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise
    membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2
    mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
    mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget
    msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat
    _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc
    pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64
    process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead
    readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
    remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq
    rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
    rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
    sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
    sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
    sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop
    semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid
    setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid
    setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
    setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address
    setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd
    signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64
    statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create
    timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
    timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
    timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat
    utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
""")

# personality(2) personas docker allows: PER_LINUX, UNAME26, PER_LINUX32, UNAME26|LINUX32,
# and 0xffffffff (the query).
_PERSONAS = (0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF)


def _cap(caps: str, names: str) -> SyscallRule:
    return SyscallRule(_names(names), caps=frozenset(caps.split()))


def _arch(arches: str, names: str) -> SyscallRule:
    return SyscallRule(_names(names), arches=frozenset(arches.split()))


DEFAULT_RULES: tuple[SyscallRule, ...] = (
    SyscallRule(_ALLOWED),
    # Before 4.8, ptrace could bypass seccomp (kernel commit 93e35efb8de4).
    SyscallRule(_names("process_vm_readv process_vm_writev ptrace"), min_kernel=(4, 8)),
    SyscallRule(("socket",), args=(SyscallArg(0, AF_VSOCK, Op.NE),)),
    *(SyscallRule(("personality",), args=(SyscallArg(0, p, Op.EQ),)) for p in _PERSONAS),
    _arch("ppc64le", "sync_file_range2 swapcontext"),
    _arch("arm arm64", "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint "
          "cacheflush set_tls"),
    _arch("amd64 x32", "arch_prctl"),
    _arch("amd64 x32 x86", "modify_ldt"),
    _arch("s390 s390x", "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr"),
    _arch("riscv64", "riscv_flush_icache"),
    _cap("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
    _cap("CAP_SYS_ADMIN", "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick "
         "lookup_dcookie mount mount_setattr move_mount open_tree perf_event_open quotactl "
         "quotactl_fd setdomainname sethostname setns syslog umount umount2 unshare"),
    SyscallRule(
        ("clone",),
        args=(SyscallArg(0, CLONE_NAMESPACE_FLAGS, Op.MASKED_EQ, 0),),
        not_caps=frozenset({"CAP_SYS_ADMIN"}),
        not_arches=frozenset({"s390", "s390x"}),
    ),
    SyscallRule(  # s390 passes clone's flags as its second argument
        ("clone",),
        args=(SyscallArg(1, CLONE_NAMESPACE_FLAGS, Op.MASKED_EQ, 0),),
        not_caps=frozenset({"CAP_SYS_ADMIN"}),
        arches=frozenset({"s390", "s390x"}),
    ),
    SyscallRule(
        ("clone3",), Action.ERRNO, errno_ret=ENOSYS, not_caps=frozenset({"CAP_SYS_ADMIN"})
    ),
    _cap("CAP_SYS_BOOT", "reboot"),
    _cap("CAP_SYS_CHROOT", "chroot"),
    _cap("CAP_SYS_MODULE", "delete_module init_module finit_module"),
    _cap("CAP_SYS_PACCT", "acct"),
    _cap("CAP_SYS_PTRACE", "kcmp pidfd_getfd process_madvise process_vm_readv "
         "process_vm_writev ptrace"),
    _cap("CAP_SYS_RAWIO", "iopl ioperm"),
    _cap("CAP_SYS_TIME", "settimeofday stime clock_settime clock_settime64"),
    _cap("CAP_SYS_TTY_CONFIG", "vhangup"),
    _cap("CAP_SYS_NICE", "get_mempolicy mbind set_mempolicy set_mempolicy_home_node"),
    _cap("CAP_SYSLOG", "syslog"),
    _cap("CAP_BPF", "bpf"),
    _cap("CAP_PERFMON", "perf_event_open"),
)  # fmt: skip

DEFAULT_PROFILE = SeccompProfile(
    default_action=Action.ERRNO, default_errno_ret=EPERM, rules=DEFAULT_RULES
)


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
        names = (*names, *_strings([item["name"]], f"{where}.name"))
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
    min_kernel = None
    if inc.get("minKernel"):
        major, _, minor = str(inc["minKernel"]).partition(".")
        if not (major.isdigit() and minor.partition(".")[0].isdigit()):
            raise _bad_profile(f"{where}.includes.minKernel is not a version: {inc['minKernel']}")
        min_kernel = (int(major), int(minor.partition(".")[0]))
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
        min_kernel=min_kernel,
    )


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
    architectures: tuple[str, ...] | None = None
    if doc.get("archMap"):
        native = NATIVE_SCMP_ARCH.get(machine)
        for i, entry in enumerate(doc["archMap"]):
            if not isinstance(entry, dict):
                raise _bad_profile(f"archMap[{i}] is not an object")
            if entry.get("architecture") == native:
                subs = _strings(entry.get("subArchitectures"), f"archMap[{i}].subArchitectures")
                architectures = (str(native), *subs)
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
            return DEFAULT_PROFILE
        return parse_seccomp_profile(self.profile_text, machine)
