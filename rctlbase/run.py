"""The one door to external programs.

Every program rctl runs goes through :func:`run_program` (or :func:`spawn_program` for
long-lived helpers). The argv is logged at debug level as a shell line, a missing program
becomes :class:`~rctlbase.errors.ProgramNotFound` with an install hint, and a failure becomes
:class:`~rctlbase.errors.CommandFailed` carrying the program's last stderr line (all of it
is logged at debug level).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Literal

from rctlbase.errors import CommandFailed, ProgramNotFound, reported_message


def debug(what: str, argv: Sequence[str]) -> None:
    """Log ``argv`` as a shell line at debug level. Only a process that has set logging up
    (the CLI's ``--debug``) can show it, so the others skip importing logging and shlex:
    the launcher's start-up time is every container's."""
    if "logging" not in sys.modules:
        return
    import logging  # noqa: PLC0415 - already imported, see above
    import shlex  # noqa: PLC0415

    log = logging.getLogger("rctl.run")
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s: %s", what, shlex.join(argv))


def debug_output(program: str, stderr: bytes) -> None:
    """Log all of a failed program's stderr at debug level (the error quotes one line)."""
    if "logging" not in sys.modules or not stderr.strip():
        return
    import logging  # noqa: PLC0415 - already imported, see debug()

    logging.getLogger("rctl.run").debug("%s said:\n%s", program, stderr.decode(errors="replace"))


# Debian/Ubuntu package that ships each program rctl may run, for the install hint.
PACKAGES: Mapping[str, str] = {
    "newuidmap": "uidmap",
    "newgidmap": "uidmap",
    "crun": "crun",
    "runc": "runc",
    "fuse-overlayfs": "fuse-overlayfs",
    "fusermount3": "fuse3",
    "slirp4netns": "slirp4netns",
    "pasta": "passt",
    "skopeo": "skopeo",
}


@contextlib.contextmanager
def starting(program: str) -> Iterator[None]:
    """Translate the OS's refusal to start ``program`` into ProgramNotFound with a hint."""
    try:
        yield
    except FileNotFoundError as exc:
        raise ProgramNotFound(f"{program} is not installed", hint=install_hint(program)) from exc
    except PermissionError as exc:
        raise ProgramNotFound(
            f"{program} is not executable", hint="check its mode and the filesystem's noexec"
        ) from exc


def install_hint(program: str) -> str:
    """Return the command that installs ``program`` on Debian-like systems."""
    package = PACKAGES.get(Path(program).name, Path(program).name)
    return f"install it: sudo apt-get install {package} (dnf install {package} on Fedora)"


def run_program(
    argv: Sequence[str],
    *,
    check: bool = True,
    input_data: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` to completion, capturing its output.

    Raises ProgramNotFound when argv[0] is not installed and, with ``check``, CommandFailed
    when it exits non-zero.
    """
    debug("run", argv)
    try:
        with starting(argv[0]):
            proc = subprocess.run(
                list(argv),
                input=input_data,
                capture_output=True,
                env=None if env is None else dict(env),
                cwd=cwd,
                timeout=timeout,
                check=False,
            )
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(
            f"{argv[0]} did not finish within {timeout} s",
            hint="it may wait for something that never comes: run with --debug for its command",
        ) from exc
    if check and proc.returncode != 0:
        name = Path(argv[0]).name
        debug_output(name, proc.stderr)
        raise CommandFailed(
            f"{name} failed: {last_line(proc.stderr) or f'exit {proc.returncode}'}",
            hint=f"run with --debug for the command line and all {name} wrote",
            returncode=proc.returncode,
            stderr=proc.stderr.decode(errors="replace"),
        )
    return proc


def spawn_program(
    argv: Sequence[str],
    *,
    pass_fds: Sequence[int] = (),
    stdin: int | IO[bytes] | Literal["pipe", "devnull"] | None = None,
    stdout: int | IO[bytes] | Literal["pipe", "devnull"] | None = None,
    stderr: int | IO[bytes] | Literal["pipe", "devnull"] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    new_session: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` without waiting for it: long-lived helpers, a namespace's first process.

    Each stream is inherited (None), a file descriptor or file, ``"pipe"`` (read or write it
    through the returned Popen) or ``"devnull"``. Only ``pass_fds`` (besides 0-2) reach the
    program. The caller owns the process: it must wait for it (or kill and wait) so no
    zombie is left. A missing program raises ProgramNotFound as in :func:`run_program`.
    ``new_session`` starts it in a session of its own (setsid(2)): a helper meant to
    outlive its starter, which the service manager reaps once the starter has exited.
    """
    streams = {"pipe": subprocess.PIPE, "devnull": subprocess.DEVNULL}
    debug("spawn", argv)
    with starting(argv[0]):
        return subprocess.Popen(
            list(argv),
            stdin=streams[stdin] if isinstance(stdin, str) else stdin,
            stdout=streams[stdout] if isinstance(stdout, str) else stdout,
            stderr=streams[stderr] if isinstance(stderr, str) else stderr,
            pass_fds=tuple(pass_fds),
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=new_session,
        )


def last_line(data: bytes) -> str:
    """The line of a program's output that says what went wrong, for one-line error
    messages: the message of its last ``Error:`` line (rctl's helpers report so, the hint
    after it), else its last non-empty line."""
    return reported_message(data.decode(errors="replace"))


def exec_program(argv: Sequence[str]) -> None:
    """Replace this process with ``argv`` (found on PATH); raises ProgramNotFound on failure."""
    debug("exec", argv)
    # Python ignores SIGPIPE and SIGXFSZ, and ignored signals stay ignored across execve(2):
    # give the program the defaults, as subprocess's restore_signals does.
    for name in ("SIGPIPE", "SIGXFSZ"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    with starting(argv[0]):
        os.execvp(argv[0], list(argv))  # noqa: S606 - argv, never a shell line
