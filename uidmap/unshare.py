"""Running a program in a new user namespace mapped with a plan (``rctl unshare``).

The sequence, without ctypes (what podman does in C before its Go runtime starts)::

    rctl ──spawn──> unshare --user --mount [--net] -- python -I -m uidmap.enter R -- ARGV
      │                 unshare(2) makes the namespaces, then execs python (same pid)
      ├─ poll /proc/PID/ns/user until it differs from ours
      ├─ newuidmap/newgidmap PID ...            (uidmap.userns.apply_plan)
      └─ write one byte to the pipe ──────────> enter reads it, execs ARGV as root inside

If rctl fails or dies before the byte, the pipe's write end closes and enter exits 125
without running ARGV; when mapping fails the child is also killed and reaped here.

:func:`fork_in_userns` is the same without any program in between, for the container
launcher, where every process started costs start-up time: the forked child calls
unshare(2) itself, tells the parent, waits for the maps, and runs a function that ends in
exec (the OCI runtime). It can also join an existing user namespace instead (bridge networks,
where every container shares the user namespace of the per-user network namespace).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Literal, NoReturn

from rctlbase import syscalls
from rctlbase.errors import HostError, ProgramNotFound, RctlError, debug_requested, report
from rctlbase.run import last_line, spawn_program
from uidmap.mapping import UsernsPlan
from uidmap.userns import apply_plan, userns_problems

if TYPE_CHECKING:
    import subprocess  # the Popen type only: programs start through rctlbase.run

NAMESPACE_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class UsernsResult:
    """How a program run in a user namespace ended; output only when captured."""

    returncode: int
    stdout: bytes | None = None
    stderr: bytes | None = None

    @property
    def exit_code(self) -> int:
        """The shell's view: a death by signal N is 128+N (docker run does the same)."""
        return 128 - self.returncode if self.returncode < 0 else self.returncode


def user_ns_of(pid: int) -> str | None:
    """The user namespace of ``pid`` (``user:[4026531837]``), None once it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/user")
    except OSError:
        return None


def wait_for_new_userns(pid: int, exited: Callable[[], bool], timeout: float) -> bool:
    """Poll until ``pid`` is in a user namespace other than ours; False if it exited first.

    unshare(1) calls unshare(2) just before it execs, so the window is short; mapping
    before it would write our own namespace's map, which the kernel refuses.
    """
    ours = user_ns_of(os.getpid())
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while not exited():
        if user_ns_of(pid) not in (ours, None):
            return True
        if time.monotonic() > deadline:
            raise HostError(f"unshare made no user namespace within {timeout:g} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.01)
    return False


def unshare_failure(stderr: bytes | None) -> HostError:
    """The error for unshare exiting before making the namespaces, with the likely cause."""
    problems = userns_problems()
    if problems:
        hint = "; ".join(f"{p.message}: {p.fix}" for p in problems)
    else:
        hint = "rctl doctor checks what the host lacks for user namespaces"
    said = last_line(stderr) if stderr else ""
    return HostError(
        f"unshare could not create a user namespace{f': {said}' if said else ''}", hint=hint
    )


def run_in_userns(
    argv: Sequence[str],
    plan: UsernsPlan,
    *,
    net: bool = False,
    env: Mapping[str, str] | None = None,
    stdin: int | IO[bytes] | None = None,
    input_data: bytes | None = None,
    capture_output: bool = False,
) -> UsernsResult:
    """Run ``argv`` in new user and mount namespaces (and a network one with ``net``).

    The namespace is mapped with ``plan``; ARGV runs as uid 0 inside (or as the user with a
    keep-id plan) with ``RCTL_USERNS=1`` in its environment (``env``, or ours). Streams are
    inherited unless ``stdin`` (a file or fd) or ``input_data`` is given or ``capture_output``.
    The exit code is ARGV's, or 125/126/127 from :mod:`uidmap.enter`. Raises HostError or
    ProgramNotFound when the namespace cannot be made or mapped; no child is left behind.
    """
    read_end, write_end = os.pipe()
    command = _unshare_command(argv, read_end, net=net)
    proc = _spawn_mapped(
        command,
        read_end,
        write_end,
        plan,
        stdin="pipe" if input_data is not None else stdin,
        stdout="pipe" if capture_output else None,
        stderr="pipe" if capture_output else None,
        env=env,
    )
    try:
        out, err = proc.communicate(input_data)
    except BaseException:
        _reap(proc)
        raise
    return UsernsResult(proc.returncode, out, err)


def _unshare_command(argv: Sequence[str], read_end: int, *, net: bool) -> list[str]:
    unshare = shutil.which("unshare")
    if unshare is None:
        raise ProgramNotFound(
            "unshare is not installed",
            hint="install it: sudo apt-get install util-linux (dnf install util-linux on Fedora)",
        )
    return [
        unshare,
        "--user",
        "--mount",
        *(["--net"] if net else []),
        "--",
        # -I: no PYTHON* variables, user site or current directory can change what runs.
        sys.executable,
        "-I",
        "-m",
        "uidmap.enter",
        str(read_end),
        "--",
        *argv,
    ]


def _spawn_mapped(
    command: list[str],
    read_end: int,
    write_end: int,
    plan: UsernsPlan,
    *,
    stdin: int | IO[bytes] | Literal["pipe"] | None,
    stdout: int | IO[bytes] | Literal["pipe"] | None,
    stderr: int | IO[bytes] | Literal["pipe"] | None,
    env: Mapping[str, str] | None,
) -> subprocess.Popen[bytes]:
    """Spawn the paused ``unshare ... uidmap.enter`` command, map it, release it."""
    try:
        proc = spawn_program(
            command, pass_fds=(read_end,), stdin=stdin, stdout=stdout, stderr=stderr, env=env
        )
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    try:
        try:
            if not wait_for_new_userns(
                proc.pid, lambda: proc.poll() is not None, NAMESPACE_TIMEOUT
            ):
                _, err = proc.communicate()
                raise unshare_failure(err)
            apply_plan(proc.pid, plan)
            os.write(write_end, b"\n")
        finally:
            # Without the byte, enter reads end of file and exits 125 without running argv.
            os.close(write_end)
    except BaseException:
        _reap(proc)
        raise
    return proc


def _reap(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def fork_in_userns(
    plan: UsernsPlan,
    child: Callable[[], object],
    *,
    net: bool = False,
    join: str | None = None,
    before_release: Callable[[int], None] | None = None,
) -> int:
    """Fork a child into new user and mount namespaces (and network with ``net``); its pid.

    ``child`` ends in exec, or returns the exit status (an int). The child makes the
    namespaces with unshare(2) (or joins the user namespace at path
    ``join``, already mapped, then makes the others), the parent maps it with ``plan``
    (newuidmap/newgidmap) and calls ``before_release(pid)``, then the child runs ``child()``
    as uid 0 there with the full capability set. ``child`` should exec; if it returns or
    raises, the child exits 125 (an RctlError's message on stderr). Raises HostError when
    the namespaces cannot be made or mapped; no child is left behind then.
    """
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, covered by the integration tests
        os.close(ready_r)
        os.close(go_w)
        _child(child, ready_w, go_r, net=net, join=join)
    os.close(ready_w)
    os.close(go_r)
    try:
        try:
            said = os.read(ready_r, 4096)
        finally:
            os.close(ready_r)
        if said != b"\n":
            os.waitpid(pid, 0)
            message = said.decode(errors="replace").strip() or "the child exited"
            raise unshare_failure(message.encode())
        if join is None:
            apply_plan(pid, plan)
        if before_release is not None:
            before_release(pid)
        os.write(go_w, b"\n")
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise
    finally:
        os.close(go_w)
    return pid


def _child(
    child: Callable[[], object], ready_w: int, go_r: int, *, net: bool, join: str | None
) -> NoReturn:  # pragma: no cover - runs in the forked child
    code = 125
    try:
        try:
            _make_namespaces(net=net, join=join)
        except OSError as exc:
            os.write(ready_w, f"{exc.strerror or exc}".encode())
            os._exit(125)
        os.write(ready_w, b"\n")
        os.close(ready_w)
        if os.read(go_r, 1) != b"\n":
            os._exit(125)  # the parent failed (and kills us anyway)
        os.close(go_r)
        syscalls.make_mounts_private()
        result = child()
        if isinstance(result, int):
            code = result
    except BaseException as exc:  # a forked child must not unwind
        report(exc, debug=debug_requested())
    finally:
        sys.stderr.flush()
        os._exit(code)


def fork_joined(pid: int, child: Callable[[], int]) -> int:
    """Fork a child into the user and mount namespaces of process ``pid`` (which this user
    made: a container's); it runs ``child()`` there and exits with its status. Returns the
    child's pid. After setns(2) into the mount namespace the child's root and working
    directory are that namespace's root: paths resolve as the container sees them, and only
    descriptors opened before the fork reach the host's files.
    """
    try:
        user_fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        mnt_fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise HostError(f"cannot open the namespaces of process {pid}: {exc.strerror}") from exc
    child_pid = os.fork()
    if child_pid == 0:  # pragma: no cover - runs in the child, covered by integration tests
        code = 125
        try:
            syscalls.setns(user_fd, syscalls.CLONE_NEWUSER)
            syscalls.setns(mnt_fd, syscalls.CLONE_NEWNS)
            code = child()
        except BaseException as exc:  # a forked child must not unwind
            report(exc, debug=debug_requested())
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(user_fd)
    os.close(mnt_fd)
    return child_pid


def enter_userns(
    plan: UsernsPlan,
    *,
    net: bool = False,
    join: str | None = None,
    join_more: Sequence[tuple[str, int]] = (),
    after_map: Callable[[int], None] | None = None,
    before_map: Callable[[], None] | None = None,
) -> None:
    """Move this process itself into new user and mount namespaces (and network with
    ``net``), mapped with ``plan``; it is uid 0 there with every capability on return.

    A forked helper, still outside, waits until this process has called unshare(2), writes
    its maps (newuidmap/newgidmap need an outside writer) and calls ``after_map(pid)`` (the
    network helper attaches here), then exits. With ``join`` (a ``/proc/PID/ns/user`` path)
    the existing, mapped user namespace is joined instead, and then each namespace of
    ``join_more`` (``(path, CLONE_NEW*)``: a pod's network, IPC, UTS namespaces, owned by
    that user namespace) instead of making a network one. ``before_map()`` runs in this
    process once the namespaces exist, before the helper maps them (it has every capability
    in them already): what the network helper will attach to is made there. This is what
    lets a container's launcher exec the OCI runtime itself: the unit's main process never
    changes. Raises HostError (or what ``after_map`` raised, as an RctlError's text) on
    failure.
    """
    me = os.getpid()
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    helper = os.fork()
    if helper == 0:  # pragma: no cover - the helper, covered by the integration tests
        os.close(ready_w)
        os.close(done_r)
        _map_parent(me, plan, ready_r, done_w, join=join, after_map=after_map)
    os.close(ready_r)
    os.close(done_w)
    try:
        _make_namespaces(net=net, join=join, join_more=join_more)
        if before_map is not None:
            before_map()
    except OSError as exc:
        os.close(ready_w)  # the helper reads end of file and exits
        os.close(done_r)
        os.waitpid(helper, 0)
        raise unshare_failure(str(exc.strerror or exc).encode()) from exc
    os.write(ready_w, b"\n")
    os.close(ready_w)
    with os.fdopen(done_r, "rb") as done:
        said = done.read()
    os.waitpid(helper, 0)
    if said != b"\n":
        message, _, hint = said[1:].decode(errors="replace").partition("\0")
        raise HostError(message or "the user namespace could not be mapped", hint=hint or None)
    syscalls.make_mounts_private()


def _make_namespaces(
    *, net: bool, join: str | None, join_more: Sequence[tuple[str, int]] = ()
) -> None:
    """unshare(2) user (or setns into ``join``), mount and maybe network namespaces, then
    setns(2) into ``join_more``'s (root in their owner, the joined user namespace)."""
    flags = syscalls.CLONE_NEWNS | (syscalls.CLONE_NEWNET if net else 0)
    if join is not None:
        fd = os.open(join, os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.setns(fd, syscalls.CLONE_NEWUSER)
        finally:
            os.close(fd)
    else:
        flags |= syscalls.CLONE_NEWUSER
    syscalls.unshare(flags)
    for path, nstype in join_more:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.setns(fd, nstype)
        finally:
            os.close(fd)


def _map_parent(
    parent: int,
    plan: UsernsPlan,
    ready_r: int,
    done_w: int,
    *,
    join: str | None,
    after_map: Callable[[int], None] | None,
) -> NoReturn:  # pragma: no cover - the helper of enter_userns, in a forked child
    code = 125
    try:
        if os.read(ready_r, 1) == b"\n":
            if join is None:
                apply_plan(parent, plan)
            if after_map is not None:
                after_map(parent)
            os.write(done_w, b"\n")
            code = 0
    except RctlError as exc:
        os.write(done_w, f"E{exc.message}\0{exc.hint or ''}".encode(errors="replace"))
    except BaseException as exc:  # a forked child must never unwind into the parent
        os.write(done_w, f"E{exc!r}\0".encode(errors="replace"))
    finally:
        os._exit(code)
