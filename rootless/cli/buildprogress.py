"""``rctl build``'s output on a terminal (``--progress tty``, or ``auto`` on a TTY): the step
lines and the steps' own output scroll as in plain mode, under a live line that shows the
step running and for how long.

The steps' output cannot go straight to the terminal then (it would write through the live
line): it goes into a pipe, and a thread here prints it line by line through the same
console, which keeps the live line at the bottom.
"""

from __future__ import annotations

import os
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

MAX_LINE = 64 << 10  # a step's line longer than this is printed in pieces


def wanted(progress: str, quiet: bool, isatty: bool) -> bool:
    """Whether the live view is drawn: ``tty``, or ``auto`` on a terminal; never with -q."""
    return not quiet and (progress == "tty" or (progress == "auto" and isatty))


class _Running:
    """The live line: the current step and its time so far (re-rendered on each refresh)."""

    def __init__(self) -> None:
        self.step = "starting"
        self.since = time.monotonic()

    def __rich__(self) -> Text:
        from rich.text import Text  # noqa: PLC0415

        return Text(f"=> {self.step}  {time.monotonic() - self.since:.1f}s", style="bold")


class TtyProgress:
    """A context manager: ``say`` for the step lines, ``out_fd`` for the steps' output."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console  # noqa: PLC0415 - on a terminal only

        self.console = console or Console(highlight=False, soft_wrap=True)
        self.running = _Running()
        self.live: Live | None = None
        self._read_fd, self.out_fd = os.pipe()
        self._thread = threading.Thread(target=self._pump, daemon=True)

    def __enter__(self) -> TtyProgress:
        from rich.live import Live  # noqa: PLC0415

        self.live = Live(self.running, console=self.console, refresh_per_second=4,
                         transient=True)  # fmt: skip
        self.live.start()
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        os.close(self.out_fd)  # the containers that wrote to it are gone: EOF
        self._thread.join(timeout=10)
        os.close(self._read_fd)
        if self.live is not None:
            self.live.stop()

    def say(self, line: str) -> None:
        """A step line: printed, and the live line follows the step it starts."""
        if "STEP " in line:
            self.running.step = line.split("STEP ", 1)[1]
            self.running.since = time.monotonic()
        self.console.print(line, markup=False, highlight=False)

    def _pump(self) -> None:
        pending = b""
        while True:
            try:
                data = os.read(self._read_fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            pending += data
            *lines, pending = pending.split(b"\n")
            if len(pending) > MAX_LINE:
                lines, pending = [*lines, pending], b""
            for line in lines:
                text = line.decode(errors="replace").rsplit("\r", 1)[-1]
                self.console.print(text, markup=False, highlight=False)
        if pending:
            self.console.print(pending.decode(errors="replace"), markup=False, highlight=False)
