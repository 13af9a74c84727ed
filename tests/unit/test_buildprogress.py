"""``rctl build --progress``: the live view on a terminal prints the step lines and the
steps' output (read from its pipe) through one console; plain lines otherwise."""

from __future__ import annotations

import io
import os

from rich.console import Console

from rootless.cli.buildprogress import TtyProgress, wanted


def test_when_the_live_view_is_drawn() -> None:
    assert wanted("auto", False, True) and wanted("tty", False, False)
    assert not wanted("auto", False, False) and not wanted("plain", False, True)
    assert not wanted("tty", True, True)  # -q prints only the ID


def test_step_lines_and_step_output_reach_the_console() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=80, color_system=None)
    with TtyProgress(console) as view:
        view.say("STEP 1/2: FROM busybox")
        view.say("STEP 2/2: RUN echo hi")
        assert view.running.step == "2/2: RUN echo hi"
        os.write(view.out_fd, b"hi\nprogress 10%\rprogress 100%\nno newline")
    text = screen.getvalue()
    for line in ("STEP 1/2: FROM busybox", "STEP 2/2: RUN echo hi", "hi", "progress 100%",
                 "no newline"):  # fmt: skip
        assert line in text
    assert "progress 10%" not in text
