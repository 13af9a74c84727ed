"""The one door to raw system calls (ctypes) and the one translator of their failures.

Every ctypes call of rctl lives here, as mkosi keeps them in ``sandbox.py``
(tests/unit/test_layers.py checks it).
Callers get small typed functions that raise :class:`OSError` with the errno set, like the
``os`` module does, and use :func:`syscall_error` to turn an unexpected ``OSError`` into a
one-line :class:`~rctlbase.errors.HostError` whose hint says what EPERM or ENOSYS usually
means on a rootless host.

- :func:`openat2` is openat2(2) through ``syscall(SYS_openat2, ...)``: glibc has no wrapper.
- :func:`unshare` and :func:`setns` make or join namespaces (Python 3.11's ``os`` has
  neither), and :func:`make_mounts_private` stops mount propagation out of a new mount
  namespace (what ``unshare --propagation private`` does).
- :func:`open_beneath` opens a path below a directory fd without ever following a symbolic
  link or leaving the directory: openat2 with ``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
  RESOLVE_NO_MAGICLINKS`` where the kernel has it (Linux >= 5.6), else a walk one component
  at a time with ``O_NOFOLLOW | O_DIRECTORY``, which gives the same answers.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat

from rctlbase.errors import HostError

# openat2(2) is 437 on every architecture that has it (the syscall table was unified for
# syscalls added since Linux 5.1); include/uapi/linux/openat2.h for the RESOLVE_* flags.
SYS_OPENAT2 = 437
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# Resolution used by open_beneath: stay below the directory, follow no link of any kind.
RESOLVE_STRICT = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS


class _OpenHow(ctypes.Structure):
    """``struct open_how`` of include/uapi/linux/openat2.h."""

    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# Set once openat2 answered ENOSYS (kernel < 5.6, or a seccomp filter saying so), so that
# later calls go straight to the component walk.
openat2_missing = False


def openat2(dir_fd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
    """Open ``path`` relative to ``dir_fd`` with openat2(2); return the new fd.

    Raises OSError with the kernel's errno (ENOSYS where the kernel lacks the call; EXDEV
    when a path would leave ``dir_fd`` under RESOLVE_BENEATH; ELOOP for a symbolic link
    under RESOLVE_NO_SYMLINKS).
    """
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    raw = os.fsencode(path)
    fd = int(
        _libc.syscall(
            ctypes.c_long(SYS_OPENAT2),
            ctypes.c_int(dir_fd),
            ctypes.c_char_p(raw),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"openat2: {os.strerror(err)}", path)
    return fd


def open_beneath(dir_fd: int, path: str, flags: int = os.O_RDONLY | os.O_DIRECTORY) -> int:
    """Open ``path`` below ``dir_fd`` without following any symbolic link; return the fd.

    ``path`` is relative; an absolute path or a ``..`` component raises OSError(EXDEV)
    like openat2's RESOLVE_BENEATH does. A symbolic link anywhere in the path raises
    OSError(ELOOP), a missing component ENOENT, a non-directory in the middle ENOTDIR.
    ``""`` and ``"."`` reopen ``dir_fd`` itself.
    """
    global openat2_missing  # noqa: PLW0603 - a process-wide fact about the kernel
    if not openat2_missing:
        try:
            return openat2(dir_fd, path or ".", flags, 0, RESOLVE_STRICT)
        except OSError as exc:
            if exc.errno == errno.ENOSYS:
                openat2_missing = True
            # Old container runtimes' seccomp profiles answer EPERM for unknown syscalls
            # (moby#42871); the walk below is just as safe, so use it for this call.
            elif exc.errno != errno.EPERM:
                raise
    return _walk_beneath(dir_fd, path, flags)


def _walk_beneath(dir_fd: int, path: str, flags: int) -> int:
    """open_beneath without openat2: one ``openat(O_NOFOLLOW)`` per path component."""
    if path.startswith("/"):
        raise OSError(errno.EXDEV, "absolute path below a directory", path)
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise OSError(errno.EXDEV, "'..' in a path below a directory", path)
    current = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        for part in parts[:-1]:
            nxt = _open_component(current, part, os.O_RDONLY | os.O_DIRECTORY)
            os.close(current)
            current = nxt
        if not parts:
            return os.open(".", flags | os.O_CLOEXEC, dir_fd=current)
        return _open_component(current, parts[-1], flags)
    finally:
        os.close(current)


def _open_component(dir_fd: int, name: str, flags: int) -> int:
    """openat(O_NOFOLLOW) of one name; a symbolic link is ELOOP as under RESOLVE_NO_SYMLINKS."""
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except NotADirectoryError as exc:  # O_DIRECTORY on a link says ENOTDIR, not ELOOP
        if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name) from exc
        raise


# What an errno usually means when rctl meets it on a rootless host.
_HINTS = {
    errno.EPERM: (
        "the kernel refused it: rctl must run this inside its user namespace, and some "
        "operations need a newer kernel or a looser seccomp/LSM policy"
    ),
    errno.EACCES: "permission denied: check the owner and mode of the directory",
    errno.ENOSYS: (
        "the kernel lacks this system call (too old), or a seccomp filter of the "
        "environment rctl runs in blocks it"
    ),
    errno.ENOSPC: "the filesystem is full: free some space (rctl image prune)",
    errno.EDQUOT: "your disk quota is exhausted: free some space (rctl image prune)",
    errno.EROFS: "the filesystem is read-only",
    errno.EOPNOTSUPP: "the filesystem does not support this (extended attributes? device nodes?)",
}


def syscall_error(exc: OSError, action: str) -> HostError:
    """Turn an OSError met while doing ``action`` into a one-line HostError with a hint.

    ``action`` says what was attempted (``"create usr/bin/sh"``); the message adds the
    errno's text, the hint what EPERM/ENOSYS/ENOSPC... usually mean. Use it as
    ``raise syscall_error(exc, "...") from exc``.
    """
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return HostError(f"cannot {action}: {reason}", hint=_HINTS.get(exc.errno or 0))


# sched.h / mount.h
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18


def unshare(flags: int) -> None:
    """unshare(2): move this (single-threaded) process into new namespaces."""
    if _libc.unshare(ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")


def setns(fd: int, nstype: int) -> None:
    """setns(2): join the namespace ``fd`` refers to (an open ``/proc/PID/ns/...``)."""
    if _libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def sethostname(name: str) -> None:
    """sethostname(2): the host name of this process's UTS namespace."""
    raw = name.encode()
    if _libc.sethostname(raw, ctypes.c_size_t(len(raw))) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"sethostname: {os.strerror(err)}")


NS_GET_PARENT = 0xB702  # _IO(0xb7, 0x2), linux/nsfs.h


def parent_namespace(fd: int) -> int:
    """ioctl_ns(2) ``NS_GET_PARENT``: a new descriptor (close-on-exec) for the parent of the
    user or PID namespace ``fd`` refers to."""
    import fcntl  # noqa: PLC0415 - exec into keep-id containers only

    return fcntl.ioctl(fd, NS_GET_PARENT)


def make_mounts_private() -> None:
    """Make every mount of this mount namespace private (``mount --make-rprivate /``)."""
    if _libc.mount(None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount --make-rprivate /: {os.strerror(err)}")


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    """mount(2), e.g. an overlay filesystem (what ``mount -t TYPE -o DATA SOURCE TARGET`` does
    without the program)."""
    if (
        _libc.mount(
            os.fsencode(source),
            os.fsencode(target),
            fstype.encode(),
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        )
        != 0
    ):
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype} on {target}: {os.strerror(err)}")
