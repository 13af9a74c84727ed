"""The process that runs ``crun start``, or kills the created container if the launcher dies.

Between ``crun create`` and ``crun start`` the launcher hands its unit over to the created
container (``MAINPID=``): from then on systemd watches that process, which waits in the
runtime's exec FIFO until it is started, and no longer the launcher. A launcher that died
there (SIGKILL, the OOM killer) would leave an active unit around a container that never
runs. So the start is run by a guard started beforehand, which waits on a pipe that only
the launcher writes to: the created container's PID, then ``go``. On ``go`` the guard
becomes the runtime's start. If the pipe ends first, the kernel closed the launcher's end:
the launcher is gone, and the guard SIGKILLs the created container, whose unit then ends
(its stop hook records how). Before the PID there is nothing of its own to end: the
launcher is still the unit's main process, and systemd ends the unit with it.

The guard is a few lines of ``sh``, started while ``crun create`` runs, and on ``go`` it
execs the runtime, which would otherwise have been spawned then: the start costs no more.
A forked copy of the launcher would do the same in Python, but a fork of an interpreter
costs milliseconds (its pages copied on write, on both sides), a spawned shell next to
nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rctlbase.run import spawn_program

if TYPE_CHECKING:
    import subprocess

GO = b"go\n"
# stdin: the container's PID, then "go". Arguments: the runtime's start command.
# A runtime that can't be run (sh would exit at a failed exec) kills the container too.
SCRIPT = """\
read -r pid || exit 0
status=0
if read -r order && [ "$order" = go ]; then
    command -v "$1" >/dev/null && exec "$@"
    echo "rctl: $1 is not installed" >&2
    status=127
fi
kill -9 "$pid" 2>/dev/null
exit $status
"""


class StartGuard:
    """The launcher's side of the guard that holds the runtime's start (see the module)."""

    def __init__(self, process: subprocess.Popen[bytes], pipe: int) -> None:
        self.process = process
        self._pipe = pipe

    @classmethod
    def spawn(cls, start: Sequence[str]) -> StartGuard:
        """Start the guard, which will run ``start`` (the runtime's start command)."""
        read_end, write_end = os.pipe()  # the write end stays ours alone (close-on-exec)
        try:
            process = spawn_program(
                ["sh", "-c", SCRIPT, "rctl-start-guard", *start], stdin=read_end
            )
        finally:
            os.close(read_end)
        return cls(process, write_end)

    def arm(self, container: int) -> None:
        """The container is created as process ``container``: from now on, the end of the
        launcher kills it unless :meth:`start` was called."""
        self._send(b"%d\n" % container)

    def start(self) -> int:
        """Have the guard start the container; the start's exit status."""
        self._send(GO)
        return self._close()

    def cancel(self) -> int:
        """Nothing to start (the create failed), or, once armed, nothing to start any more:
        the guard leaves, killing an armed container."""
        return self._close()

    def _send(self, message: bytes) -> None:
        with contextlib.suppress(BrokenPipeError):  # the guard is gone: its status says so
            os.write(self._pipe, message)

    def _close(self) -> int:
        if self._pipe >= 0:
            os.close(self._pipe)
            self._pipe = -1
        return self.process.wait()
