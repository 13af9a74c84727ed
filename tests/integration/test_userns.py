"""uidmap for real: subid files, newuidmap/newgidmap and a mapped user namespace, as uid 1000.

The test host gives rctltest (uid 1000) ``rctltest:100000:65536`` in /etc/subuid and
/etc/subgid, so the default plan is 0 → 1000, 1..65536 → 100000..165535.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from rctlbase.errors import HostError
from uidmap.mapping import IDMap, UsernsPlan, plan_userns
from uidmap.subid import load_subids
from uidmap.unshare import run_in_userns
from uidmap.userns import check_host, load_plan

USER = pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture(scope="module")
def plan() -> UsernsPlan:
    return load_plan(USER, os.getuid(), os.getgid())


@pytest.fixture(scope="module")
def keep_id_plan() -> UsernsPlan:
    return load_plan(USER, os.getuid(), os.getgid(), keep_id=True)


def run(argv: list[str], plan: UsernsPlan, *, net: bool = False) -> str:
    result = run_in_userns(argv, plan, net=net, capture_output=True)
    assert result.stderr is not None
    assert result.stdout is not None
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def no_child_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_the_host_passes_check_host() -> None:
    assert check_host(USER) == []


def test_plan_from_the_real_subid_files(plan: UsernsPlan) -> None:
    assert load_subids(USER, os.getuid())  # the harness's entry
    assert plan.uid_maps == (IDMap(0, 1000, 1), IDMap(1, 100000, 65536))
    assert plan.gid_maps == (IDMap(0, os.getgid(), 1), IDMap(1, 100000, 65536))


def test_id_u_is_0_inside(plan: UsernsPlan) -> None:
    assert run(["id", "-u"], plan) == "0\n"
    assert run(["id", "-g"], plan) == "0\n"


def test_uid_map_inside_has_65537_ids(plan: UsernsPlan) -> None:
    for name in ("uid_map", "gid_map"):
        rows = [
            tuple(map(int, line.split()))
            for line in run(["cat", f"/proc/self/{name}"], plan).splitlines()
        ]
        assert rows == [(0, 1000, 1), (1, 100000, 65536)]
        assert sum(count for _, _, count in rows) == 65537


def test_rctl_userns_is_set_and_namespaces_are_new(plan: UsernsPlan) -> None:
    out = run(
        ["sh", "-c", 'echo "$RCTL_USERNS"; readlink /proc/self/ns/user /proc/self/ns/mnt'], plan
    )
    flag, user_ns, mnt_ns = out.splitlines()
    assert flag == "1"
    assert user_ns != os.readlink("/proc/self/ns/user")
    assert mnt_ns != os.readlink("/proc/self/ns/mnt")


def test_net_gives_a_network_namespace_with_only_lo(plan: UsernsPlan) -> None:
    out = run(["cat", "/proc/net/dev"], plan, net=True)
    interfaces = [line.split(":")[0].strip() for line in out.splitlines()[2:]]
    assert interfaces == ["lo"]


def test_chown_inside_shows_as_subordinate_ids_outside(plan: UsernsPlan, tmp_path: Path) -> None:
    target = tmp_path / "owned"
    run(["sh", "-c", f"touch {target} && chown 1:1 {target}"], plan)
    st = target.stat()
    assert (st.st_uid, st.st_gid) == (100000, 100000)
    assert plan.to_host(1) == st.st_uid
    run(["chown", "65536:65536", str(target)], plan)
    assert (target.stat().st_uid, target.stat().st_gid) == (165535, 165535)


def test_keep_id_keeps_the_user_as_itself(keep_id_plan: UsernsPlan, tmp_path: Path) -> None:
    target = tmp_path / "mine"
    out = run(["sh", "-c", f"id -u; touch {target}"], keep_id_plan)
    assert out == f"{os.getuid()}\n"
    assert target.stat().st_uid == os.getuid()
    rows = run(["cat", "/proc/self/uid_map"], keep_id_plan).split()
    assert list(map(int, rows)) == [0, 100000, 1000, 1000, 1000, 1, 1001, 101000, 64536]


def test_missing_program_exits_127(plan: UsernsPlan) -> None:
    result = run_in_userns(["rctl-no-such-program"], plan, capture_output=True)
    assert result.returncode == 127
    assert result.stderr is not None
    assert b'exec: "rctl-no-such-program": executable file not found in $PATH' in result.stderr


def test_exit_code_is_the_programs(plan: UsernsPlan) -> None:
    assert run_in_userns(["sh", "-c", "exit 42"], plan).returncode == 42


def test_missing_subuid_entry_is_diagnosed(tmp_path: Path) -> None:
    subuid = tmp_path / "subuid"
    subuid.write_text("someoneelse:100000:65536\n")
    subuids = load_subids(USER, os.getuid(), subuid)
    assert subuids == ()
    with pytest.raises(HostError) as caught:
        plan_userns(
            os.getuid(),
            os.getgid(),
            subuids,
            load_subids(USER, os.getuid()),
            user=USER,
            subuid_path=subuid,
        )
    assert caught.value.message == f"no entry for {USER} in {subuid}"
    assert caught.value.hint is not None
    assert f"sudo usermod --add-subuids 165536-231071 {USER}" in caught.value.hint


def test_range_not_ours_is_refused_with_the_range_and_no_child_left(tmp_path: Path) -> None:
    stolen = UsernsPlan(
        (IDMap(0, os.getuid(), 1), IDMap(1, 300000, 10)), (IDMap(0, os.getgid(), 1),)
    )
    marker = tmp_path / "ran"
    with pytest.raises(HostError) as caught:
        run_in_userns(["touch", str(marker)], stolen, capture_output=True)
    assert caught.value.message == (
        f"newuidmap refused to map container uids 1-10 to host uids 300000-300009: "
        f"they are not {USER}'s in /etc/subuid"
    )
    assert not marker.exists()
    assert no_child_left()


def test_newuidmap_without_setuid_is_blamed_not_the_kernel(
    plan: UsernsPlan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A copy made by the user loses the setuid bit: first on PATH, it is what rctl runs.
    copy = tmp_path / "newuidmap"
    copy.write_bytes(Path("/usr/bin/newuidmap").read_bytes())
    copy.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with pytest.raises(HostError) as caught:
        run_in_userns(["true"], plan, capture_output=True)
    nosuid = bool(os.statvfs(tmp_path).f_flag & os.ST_NOSUID)
    reason = "nosuid mount" if nosuid else "neither setuid root nor has file capabilities"
    assert caught.value.message.startswith(f"newuidmap ({copy}) cannot map subordinate IDs")
    assert reason in caught.value.message
    assert caught.value.hint is not None
    assert str(copy) in caught.value.hint
    assert no_child_left()
