"""The guard that runs ``crun start`` for the launcher, or kills the created container
when the launcher dies first (:mod:`rootless.containers.startguard`), with real processes:
a ``sleep`` stands for the created container."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from rootless.containers.startguard import StartGuard


def container() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"])


def test_go_runs_the_start_and_returns_its_status(tmp_path: Path) -> None:
    created = container()
    try:
        guard = StartGuard.spawn(["sh", "-c", f"touch {tmp_path}/started; exit 3"])
        guard.arm(created.pid)
        assert guard.start() == 3
        assert (tmp_path / "started").exists()
        assert created.poll() is None  # started, not killed
    finally:
        created.kill()
        created.wait()


def test_the_launcher_s_end_after_the_pid_kills_the_container(tmp_path: Path) -> None:
    created = container()
    guard = StartGuard.spawn(["touch", str(tmp_path / "started")])
    guard.arm(created.pid)
    assert guard.cancel() == 0  # the pipe's end without a go: what a dead launcher leaves
    assert created.wait(timeout=5) == -signal.SIGKILL
    assert not (tmp_path / "started").exists()


def test_a_launcher_killed_after_the_handover_leaves_no_waiting_container(
    tmp_path: Path,
) -> None:
    """The launcher (a forked child here) arms the guard, then is SIGKILLed."""
    created = container()
    launcher = os.fork()
    if launcher == 0:  # pragma: no cover - the child ends by SIGKILL
        StartGuard.spawn(["touch", str(tmp_path / "started")]).arm(created.pid)
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(10)
        os._exit(1)
    _, status = os.waitpid(launcher, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert created.wait(timeout=5) == -signal.SIGKILL
    assert not (tmp_path / "started").exists()


def test_a_failed_create_leaves_nothing_to_kill_or_start(tmp_path: Path) -> None:
    guard = StartGuard.spawn(["touch", str(tmp_path / "started")])
    assert guard.cancel() == 0
    assert not (tmp_path / "started").exists()


def test_a_start_that_cannot_run_kills_the_container(tmp_path: Path) -> None:
    created = container()
    guard = StartGuard.spawn([str(tmp_path / "no-such-runtime"), "start", "x"])
    guard.arm(created.pid)
    assert guard.start() == 127
    assert created.wait(timeout=5) == -signal.SIGKILL
