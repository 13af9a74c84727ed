"""The attached run's output copier (:func:`rootless.containers.launch.tee_output`) outlives
its unit's stop signal, whichever the image chose, so that it drains the output."""

from __future__ import annotations

import os
import signal

from rootless.containers.launch import ignore_stop_signals


def test_the_output_copier_outlives_any_stop_signal() -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        ignore_stop_signals()
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP,
                       signal.SIGUSR1, signal.SIGPIPE, signal.SIGRTMIN + 3):  # fmt: skip
            os.kill(os.getpid(), number)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
