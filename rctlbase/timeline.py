"""Where the time of a container's start and end goes: ``RCTL_TIMELINE=FILE rctl run ...``.

With ``RCTL_TIMELINE`` set, each rctl process of a container's life (the CLI, the launcher
that systemd starts in the container's unit, the unit's stop hook) appends one line per
step to FILE: ``SECONDS PID STEP``, SECONDS on CLOCK_MONOTONIC, which is the machine's
one clock (systemd's ``*TimestampMonotonic`` properties read it too), so ``sort -n FILE``
interleaves the processes in time. The first line of each process is its start, estimated
as the time of its first mark minus the CPU time it has used by then: an interpreter's
start and imports are CPU work, so that is close to the moment of its ``execve(2)``.

The CLI passes the variable into the container's unit. Unset, which is the normal case, a
mark costs one dictionary lookup. ``bench/lifecycle.py`` uses it to break ``run --rm``
down into its steps.
"""

from __future__ import annotations

import os
import time

VARIABLE = "RCTL_TIMELINE"
STARTED = "started"

_marked_pids: set[int] = set()


def mark(step: str) -> None:
    """Append ``step`` to the timeline, if one is asked for (and this process's start,
    the first time)."""
    path = os.environ.get(VARIABLE)
    if not path:
        return
    now, pid = time.monotonic(), os.getpid()
    lines = f"{now:.6f} {pid} {step}\n"
    if pid not in _marked_pids:  # (a forked child is a process of its own)
        _marked_pids.add(pid)
        lines = f"{now - time.process_time():.6f} {pid} {STARTED}\n" + lines
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, lines.encode())
    finally:
        os.close(fd)


def environment() -> dict[str, str]:
    """The variable for a process that rctl starts through systemd (the container's unit),
    or nothing when no timeline is asked for."""
    path = os.environ.get(VARIABLE)
    return {VARIABLE: path} if path else {}
