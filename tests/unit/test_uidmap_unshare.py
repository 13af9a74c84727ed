"""``run_in_userns`` and ``rctlbase.run.spawn_program`` without ID maps.

The real mapping needs newuidmap and a subordinate range (tests/integration/test_userns.py);
here ``apply_plan`` is replaced, so what is tested is the sequence around it: the new
namespace, the release, the cleanup when mapping fails. These need unshare(1) and user
namespaces the current user may create, and are skipped (saying so) without them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from rctlbase.errors import HostError, ProgramNotFound
from rctlbase.run import spawn_program
from uidmap import unshare
from uidmap.mapping import IDMap, UsernsPlan
from uidmap.unshare import UsernsResult, run_in_userns

PLAN = UsernsPlan((IDMap(0, 1000, 1),), (IDMap(0, 1000, 1),))


def userns_available() -> str | None:
    """Why user namespaces can't be made here, or None."""
    if shutil.which("unshare") is None:
        return "unshare(1) is not installed"
    probe = subprocess.run(
        ["unshare", "--user", "--mount", "--", "true"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        return f"this user may not create user namespaces: {probe.stderr.decode().strip()}"
    return None


needs_userns = pytest.mark.skipif(userns_available() is not None, reason=str(userns_available()))


def assert_no_child_left() -> None:
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


# --- spawn_program ---------------------------------------------------------------------


def test_spawn_program_pipes_and_passes_fds() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"through the fd")
    os.close(write_end)
    try:
        proc = spawn_program(
            ["sh", "-c", f"cat /dev/fd/{read_end}; echo; cat"],
            pass_fds=(read_end,),
            stdin="pipe",
            stdout="pipe",
            stderr="devnull",
        )
    finally:
        os.close(read_end)
    out, err = proc.communicate(b"through stdin")
    assert (proc.returncode, out) == (0, b"through the fd\nthrough stdin")
    assert err is None


def test_spawn_program_missing_is_program_not_found() -> None:
    with pytest.raises(ProgramNotFound) as caught:
        spawn_program(["newuidmap-absent-xyz"])
    assert caught.value.message == "newuidmap-absent-xyz is not installed"
    assert caught.value.hint is not None


# --- run_in_userns ---------------------------------------------------------------------


def test_exit_code_of_a_signal_is_128_plus_n() -> None:
    assert UsernsResult(-9).exit_code == 137
    assert UsernsResult(3).exit_code == 3


def test_missing_unshare_is_diagnosed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ProgramNotFound, match="unshare is not installed") as caught:
        run_in_userns(["true"], PLAN)
    assert caught.value.hint is not None
    assert "util-linux" in caught.value.hint


def test_unshare_failing_early_is_a_host_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "unshare"
    fake.write_text(
        "#!/bin/sh\necho 'unshare: unshare failed: Operation not permitted' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda name: str(fake))
    with pytest.raises(HostError) as caught:
        run_in_userns(["true"], PLAN, capture_output=True)
    assert caught.value.message == (
        "unshare could not create a user namespace: "
        "unshare: unshare failed: Operation not permitted"
    )
    assert_no_child_left()


@needs_userns
def test_released_program_runs_in_a_new_user_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[int] = []
    monkeypatch.setattr(unshare, "apply_plan", lambda pid, plan: applied.append(pid))
    result = run_in_userns(
        ["sh", "-c", 'readlink /proc/self/ns/user; echo "$RCTL_USERNS"; cat; exit 3'],
        PLAN,
        input_data=b"from stdin\n",
        capture_output=True,
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout is not None
    inner_ns, flag, echoed = result.stdout.decode().splitlines()
    assert inner_ns != os.readlink("/proc/self/ns/user")
    assert (flag, echoed) == ("1", "from stdin")
    assert len(applied) == 1
    assert_no_child_left()


@needs_userns
def test_net_adds_a_network_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unshare, "apply_plan", lambda pid, plan: None)
    result = run_in_userns(["readlink", "/proc/self/ns/net"], PLAN, net=True, capture_output=True)
    assert result.returncode == 0
    assert result.stdout is not None
    assert result.stdout.decode().strip() != os.readlink("/proc/self/ns/net")


@needs_userns
def test_failed_mapping_kills_the_child_before_argv_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def refuse(pid: int, plan: UsernsPlan) -> None:
        raise HostError("newuidmap refused")

    monkeypatch.setattr(unshare, "apply_plan", refuse)
    marker = tmp_path / "ran"
    with pytest.raises(HostError, match="newuidmap refused"):
        run_in_userns(["touch", str(marker)], PLAN, capture_output=True)
    assert not marker.exists()
    assert_no_child_left()


@needs_userns
def test_missing_program_gives_127(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unshare, "apply_plan", lambda pid, plan: None)
    result = run_in_userns(["rctl-no-such-program-xyz"], PLAN, capture_output=True)
    assert result.returncode == 127
    assert result.stderr is not None
    assert b"executable file not found" in result.stderr
