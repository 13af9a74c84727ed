"""The stop hook's ``--rm`` removal: the user's own files directly, the rest through the
user-namespace fallback (:func:`rootless.containers.exited.remove_container_dir`)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from rootless.containers import exited
from rootless.containers.plan import LaunchPlan
from uidmap.mapping import UsernsPlan


def make_container_dir(root: Path) -> Path:
    """A stopped overlay container's directory, work/work at mode 000 as overlayfs leaves it."""
    directory = root / "c0ffee"
    (directory / "bundle").mkdir(parents=True)
    plan = LaunchPlan(
        container_id="c0ffee",
        uid_maps=((0, 1000, 1), (1, 100000, 65536)),
        gid_maps=((0, 1000, 1), (1, 100000, 65536)),
        network="none",
        ports=(),
        pidfile=str(directory / "bundle" / "pid"),
        bundle=str(directory / "bundle"),
        runtime="crun",
        runtime_root="/run/user/1000/rctl/crun",
        rootfs={},
    )
    (directory / "bundle" / "launch.json").write_text(plan.to_json())
    (directory / "upper" / "etc").mkdir(parents=True)
    (directory / "upper" / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (directory / "work" / "work").mkdir(parents=True)
    (directory / "work" / "work").chmod(0)
    return directory


def test_own_files_are_removed_without_a_user_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = make_container_dir(tmp_path)

    def no_fallback(plan: UsernsPlan, child: Callable[[], None]) -> int:
        raise AssertionError("the user-namespace fallback ran")

    monkeypatch.setattr("uidmap.unshare.fork_in_userns", no_fallback)
    exited.remove_container_dir(str(directory), (directory / "bundle" / "launch.json").read_text())
    assert not directory.exists()
    assert tmp_path.exists()


def test_what_is_left_goes_through_the_user_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = make_container_dir(tmp_path)
    real_rmtree = shutil.rmtree
    calls: list[str] = []

    def rmtree_failing_once(path: str, *args: object, **kwargs: object) -> None:
        # The first (direct) attempt leaves everything, like files of other mapped IDs.
        calls.append(str(path))
        if len(calls) > 1:
            real_rmtree(path, ignore_errors=True)

    seen: list[UsernsPlan] = []

    def fork_in_place(plan: UsernsPlan, child: Callable[[], None]) -> int:
        seen.append(plan)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child exits through os._exit
            child()
        return pid

    monkeypatch.setattr(shutil, "rmtree", rmtree_failing_once)
    monkeypatch.setattr("uidmap.unshare.fork_in_userns", fork_in_place)
    exited.remove_container_dir(str(directory), (directory / "bundle" / "launch.json").read_text())
    assert not directory.exists()
    assert [m.host_id for m in seen[0].uid_maps] == [1000, 100000]
