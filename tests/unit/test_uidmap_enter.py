"""``python -m uidmap.enter``: waits for its release, then execs with docker's exit codes.

Each case runs the module in a child process with a real pipe (no namespace is needed to
test the waiting and the exec), so a wrong exec can never replace the test process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from uidmap.enter import main


def enter(
    argv: list[str], *, release: bool, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run enter with a pipe; write the byte (``release``) or just close the write end."""
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uidmap.enter", str(read_end), "--", *argv],
            pass_fds=(read_end,),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    finally:
        os.close(read_end)
    if release:
        os.write(write_end, b"\n")
    os.close(write_end)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def test_released_runs_argv_with_rctl_userns_set() -> None:
    code, out, _ = enter(["sh", "-c", 'echo "$RCTL_USERNS"; exit 7'], release=True)
    assert (code, out) == (7, "1\n")


def test_argv_gets_default_sigpipe_not_pythons_ignore() -> None:
    code, out, _ = enter(["cat", "/proc/self/status"], release=True)
    assert code == 0
    ignored = int(
        next(line for line in out.splitlines() if line.startswith("SigIgn:")).split()[1], 16
    )
    assert not ignored & (1 << (signal.SIGPIPE - 1))


def test_closed_pipe_exits_125_without_running_argv(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    code, _, err = enter(["touch", str(marker)], release=False)
    assert code == 125
    assert "not set up" in err
    assert not marker.exists()


def test_missing_program_exits_127() -> None:
    code, _, err = enter(["rctl-no-such-program-xyz"], release=True)
    assert code == 127
    assert 'exec: "rctl-no-such-program-xyz": executable file not found in $PATH' in err


def test_missing_path_exits_127(tmp_path: Path) -> None:
    code, _, _ = enter([str(tmp_path / "absent")], release=True)
    assert code == 127


def test_not_executable_exits_126(tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    code, out, err = enter([str(script)], release=True)  # even root needs an x bit
    assert (code, out) == (126, "")
    assert "permission denied" in err


def test_directory_exits_126(tmp_path: Path) -> None:
    code, _, _ = enter([str(tmp_path)], release=True)
    assert code == 126


@pytest.mark.parametrize(
    "args",
    [[], ["3"], ["3", "--"], ["x", "--", "true"], ["3", "true"], ["3", "-", "true"]],
)
def test_bad_usage_exits_125(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 125  # returns before reading any fd or exec'ing anything
    assert "usage: python -m uidmap.enter FD -- ARGV..." in capsys.readouterr().err


def test_unreadable_fd_exits_125(capsys: pytest.CaptureFixture[str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    assert main([str(read_end), "--", "true"]) == 125  # EBADF: never released
    assert "not set up" in capsys.readouterr().err
