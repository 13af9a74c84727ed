"""``python -m uidmap.enter FD -- ARGV...``: wait for the ID maps, then exec ARGV.

The first program of a user namespace made by :func:`uidmap.unshare.run_in_userns`
(``unshare --user --mount -- python -m uidmap.enter FD -- ARGV``). It blocks on the pipe FD
until the parent has written the uid/gid maps and sends one byte; end of file instead means
the parent failed, and ARGV never runs (exit 125).

Nothing else is needed to be root inside: once 0 maps to the user, the kernel reports uid 0,
and execve(2) as uid 0 of the namespace grants the full capability set there
(capabilities(7), "User namespaces"), so ARGV can chown to any mapped ID. Under keep-id the
user stays itself, without capabilities, like podman's ``--userns=keep-id``.

Standard library and :mod:`rctlbase.errors` only (which imports nothing of the project): it
runs before anything is mapped, on every container start. Exit codes follow docker: 125
setup failed, 126 not executable, 127 not found; the error is reported like every rctl
error, ``Error:`` and ``Hint:`` lines on stderr.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from collections.abc import Sequence

from rctlbase.errors import CommandNotRunnable, report, run_main

EXIT_SETUP = 125
EXIT_CANNOT_EXEC = 126
EXIT_NOT_FOUND = 127
NOT_FOUND_ERRNOS = (errno.ENOENT, errno.ENOTDIR)
CANNOT_EXEC_ERRNOS = (errno.EACCES, errno.EPERM, errno.ENOEXEC, errno.EISDIR, errno.ETXTBSY)

USAGE = "usage: python -m uidmap.enter FD -- ARGV..."


HINTS = {
    EXIT_SETUP: "'rctl doctor' checks the host's user namespace setup",
    EXIT_CANNOT_EXEC: "check the file's mode and that it is a program for this machine",
    EXIT_NOT_FOUND: "check the command's name and the image's PATH",
}


def fail(message: str, code: int) -> int:
    """Report on stderr as every rctl error is; ``code`` is the exit status."""
    report(CommandNotRunnable(message, exit_code=code, hint=HINTS[code]))
    return code


def wait_for_release(fd: int) -> bool:
    """Block until the parent writes a byte (True) or closes its end (False); close ``fd``."""
    try:
        released = os.read(fd, 1) != b""  # PEP 475: EINTR is retried
    except OSError:
        return False
    os.close(fd)
    return released


def exec_program(argv: Sequence[str]) -> int:
    """Exec ``argv`` with ``RCTL_USERNS=1``; returns only on failure, with docker's code."""
    os.environ["RCTL_USERNS"] = "1"
    # Python ignores SIGPIPE and SIGXFSZ; ignored dispositions survive execve(2), so restore
    # them as subprocess's restore_signals does.
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    try:
        # Replacing this process is the point of this module, not running a subprocess.
        os.execvp(argv[0], list(argv))  # noqa: S606
    except OSError as exc:
        reason = os.strerror(exc.errno or 0).lower()
        if exc.errno in NOT_FOUND_ERRNOS:
            return fail(f'exec: "{argv[0]}": executable file not found in $PATH', EXIT_NOT_FOUND)
        if exc.errno in CANNOT_EXEC_ERRNOS:
            return fail(f'exec: "{argv[0]}": {reason}', EXIT_CANNOT_EXEC)
        return fail(f'exec: "{argv[0]}": {reason}', EXIT_SETUP)
    return EXIT_SETUP  # pragma: no cover - execvp does not return


def main(args: Sequence[str]) -> int:
    """Parse ``FD -- ARGV...``, wait for the release, exec ARGV."""
    if len(args) < 3 or args[1] != "--" or not args[0].isdecimal():
        return fail(USAGE, EXIT_SETUP)
    if not wait_for_release(int(args[0])):
        return fail("the user namespace was not set up; not running the command", EXIT_SETUP)
    return exec_program(args[2:])


if __name__ == "__main__":
    sys.exit(run_main(lambda: main(sys.argv[1:])))
