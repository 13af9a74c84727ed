"""Applying plans and diagnosing the host (uidmap.userns, uidmap.maptools), without namespaces."""

from __future__ import annotations

import os
import pwd
import struct
from pathlib import Path

import pytest

from rctlbase.errors import CommandFailed, HostError, NotFoundError
from uidmap import userns
from uidmap.mapping import IDKind, IDMap, UsernsPlan
from uidmap.maptools import MapTool, inspect_map_tool, parse_file_caps
from uidmap.userns import ProblemKind, apply_plan, check_host, explain_map_failure, load_plan

PLAN = UsernsPlan(
    (IDMap(0, 1000, 1), IDMap(1, 100000, 65536)),
    (IDMap(0, 1000, 1), IDMap(1, 100000, 65536)),
)
GOOD_UIDMAP = MapTool("newuidmap", Path("/usr/bin/newuidmap"), setuid_root=True)
GOOD_GIDMAP = MapTool("newgidmap", Path("/usr/bin/newgidmap"), setuid_root=True)
ME = pwd.getpwuid(os.getuid())


def failure(stderr: str) -> CommandFailed:
    return CommandFailed("newuidmap failed", stderr=stderr)


def explain(
    stderr: str,
    *,
    kind: IDKind = IDKind.UID,
    tool: MapTool = GOOD_UIDMAP,
    own_map: str = "         0          0 4294967295\n",
    alive: bool = True,
) -> Exception:
    return explain_map_failure(
        kind,
        failure(stderr),
        pid=4242,
        maps=PLAN.uid_maps,
        tool=tool,
        user="alice",
        own_map=own_map,
        target_alive=alive,
    )


# --- explaining newuidmap/newgidmap failures -------------------------------------------


def test_helper_without_setuid_or_caps_is_blamed_before_the_kernel() -> None:
    tool = MapTool("newuidmap", Path("/usr/bin/newuidmap"))
    error = explain("newuidmap: write to uid_map failed: Operation not permitted", tool=tool)
    assert isinstance(error, HostError)
    assert error.message == (
        "newuidmap (/usr/bin/newuidmap) cannot map subordinate IDs: "
        "it is neither setuid root nor has file capabilities"
    )
    assert error.hint == (
        "sudo chmod u+s /usr/bin/newuidmap (or: sudo setcap cap_setuid+ep /usr/bin/newuidmap)"
    )


def test_newgidmap_fix_names_cap_setgid_and_chown_when_not_owned_by_root() -> None:
    tool = MapTool("newgidmap", Path("/opt/bin/newgidmap"), owner_uid=1000)
    error = explain("newgidmap: Could not set caps", kind=IDKind.GID, tool=tool)
    assert isinstance(error, HostError)
    assert error.message.startswith("newgidmap (/opt/bin/newgidmap) cannot map")
    assert error.hint == (
        "sudo chown root:root /opt/bin/newgidmap && sudo chmod u+s /opt/bin/newgidmap "
        "(or: sudo setcap cap_setgid+ep /opt/bin/newgidmap)"
    )


def test_capable_helper_on_a_nosuid_mount_is_diagnosed() -> None:
    tool = MapTool("newuidmap", Path("/usr/bin/newuidmap"), file_caps=True, nosuid_mount=True)
    error = explain("newuidmap: write to uid_map failed: Operation not permitted", tool=tool)
    assert isinstance(error, HostError)
    assert "nosuid mount" in error.message
    assert error.hint == "remount the filesystem of /usr/bin/newuidmap without nosuid"


def test_file_capabilities_count_as_privileged() -> None:
    tool = MapTool("newuidmap", Path("/usr/bin/newuidmap"), file_caps=True)
    assert tool.privileged
    error = explain("newuidmap: write to uid_map failed: Invalid argument", tool=tool)
    assert isinstance(error, HostError)
    assert "kernel refused" in error.message


def test_range_not_allowed_names_the_range_and_the_fix() -> None:
    error = explain("newuidmap: uid range [1-65537) -> [200000-265536) not allowed\n")
    assert isinstance(error, HostError)
    assert error.message == (
        "newuidmap refused to map container uids 1-65536 to host uids 200000-265535: "
        "they are not alice's in /etc/subuid"
    )
    assert error.hint is not None
    assert error.hint.startswith("sudo usermod --add-subuids 200000-265535 alice")


def test_gid_range_not_allowed_names_subgid() -> None:
    error = explain(
        "newgidmap: gid range [0-1) -> [5-6) not allowed", kind=IDKind.GID, tool=GOOD_GIDMAP
    )
    assert isinstance(error, HostError)
    assert "container gids 0-0 to host gids 5-5" in error.message
    assert "/etc/subgid" in error.message


def test_write_refused_because_our_namespace_lacks_the_ids() -> None:
    # rctl itself in a container that maps only 65536 IDs: 100000.. cannot be mapped below it.
    error = explain(
        "newuidmap: write to uid_map failed: Operation not permitted",
        own_map="0 1000000 65536\n",
    )
    assert isinstance(error, HostError)
    assert error.message == (
        "the kernel refused the uid map of process 4242: host uids 100000-165535 are not "
        "mapped in rctl's own user namespace"
    )
    assert error.hint is not None
    assert "0 1000000 65536" in error.hint


def test_write_refused_for_another_reason_lists_the_map() -> None:
    error = explain("newuidmap: write to uid_map failed: Operation not permitted")
    assert isinstance(error, HostError)
    assert error.message == (
        "the kernel refused the uid map 0→1000 (1), 1→100000 (65536) of process 4242: "
        "Operation not permitted"
    )


def test_target_gone_is_said_so() -> None:
    error = explain("newuidmap: write to uid_map failed: No such process", alive=False)
    assert isinstance(error, HostError)
    assert error.message == "process 4242 exited before its uid map was written"


def test_target_of_another_user() -> None:
    line = (
        "newuidmap: Target process is owned by a different user: uid:1000 pw_uid:1000 "
        "st_uid:1000, gid:1000 pw_gid:1000 st_gid:27"
    )
    error = explain(line)
    assert isinstance(error, HostError)
    assert error.message.startswith("newuidmap refused process 4242: Target process is owned")


def test_unknown_failure_keeps_the_original_error() -> None:
    original = failure("newuidmap: something new")
    error = explain_map_failure(
        IDKind.UID,
        original,
        pid=1,
        maps=PLAN.uid_maps,
        tool=GOOD_UIDMAP,
        user="alice",
        own_map="",
        target_alive=True,
    )
    assert error is original


# --- apply_plan, with stand-in newuidmap/newgidmap programs on PATH -------------------------


def fake_map_tools(bin_dir: Path, calls: Path, uid_script: str = "", gid_script: str = "") -> str:
    """newuidmap and newgidmap scripts that log their command lines to ``calls``."""
    bin_dir.mkdir()
    for name, extra in (("newuidmap", uid_script), ("newgidmap", gid_script)):
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\n{extra}\n')
        tool.chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


def test_apply_plan_runs_both_helpers_with_the_ranges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls"
    monkeypatch.setenv("PATH", fake_map_tools(tmp_path / "bin", calls))
    plan = UsernsPlan((IDMap(0, 1000, 1), IDMap(1, 100000, 65536)), (IDMap(0, 1001, 1),))
    apply_plan(77, plan)
    # They run at the same time: either may log first.
    assert sorted(calls.read_text().splitlines()) == [
        "newgidmap 77 0 1001 1",
        "newuidmap 77 0 1000 1 1 100000 65536",
    ]


def test_apply_plan_translates_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refuse = "echo 'newuidmap: uid range [1-65537) -> [100000-165536) not allowed' >&2; exit 1"
    path = fake_map_tools(tmp_path / "bin", tmp_path / "calls", uid_script=refuse)
    monkeypatch.setenv("PATH", path)
    monkeypatch.setattr(userns, "inspect_map_tool", lambda name: GOOD_UIDMAP)
    with pytest.raises(HostError, match="container uids 1-65536 to host uids 100000-165535") as e:
        apply_plan(os.getpid(), PLAN)
    assert isinstance(e.value.__cause__, CommandFailed)


# --- the helpers' privileges ----------------------------------------------------------------


def caps_xattr(revision: int, permitted: int, effective: bool) -> bytes:
    magic = revision | (1 if effective else 0)
    if revision == 0x01000000:
        return struct.pack("<III", magic, permitted & 0xFFFFFFFF, 0)
    words = struct.pack("<IIIII", magic, permitted & 0xFFFFFFFF, 0, permitted >> 32, 0)
    return words + (struct.pack("<I", 0) if revision == 0x03000000 else b"")


@pytest.mark.parametrize("revision", [0x01000000, 0x02000000, 0x03000000])
def test_parse_file_caps_reads_cap_setuid_ep(revision: int) -> None:
    assert parse_file_caps(caps_xattr(revision, 1 << 7, True)) == (1 << 7, True)
    assert parse_file_caps(caps_xattr(revision, 1 << 6, False)) == (1 << 6, False)


def test_parse_file_caps_reads_the_high_word_and_tolerates_garbage() -> None:
    assert parse_file_caps(caps_xattr(0x02000000, 1 << 40, True)) == (1 << 40, True)
    assert parse_file_caps(b"\x01\x02") == (0, False)


def test_inspect_map_tool_reads_mode_and_owner(tmp_path: Path) -> None:
    binary = tmp_path / "newuidmap"
    binary.write_bytes(b"")
    binary.chmod(0o755)
    plain = inspect_map_tool("newuidmap", binary)
    assert plain.path == binary
    assert not plain.setuid_root
    assert not plain.file_caps
    assert plain.owner_uid == os.getuid()
    binary.chmod(0o4755 if os.getuid() == 0 else 0o755)
    assert inspect_map_tool("newuidmap", binary).setuid_root == (os.getuid() == 0)


def test_inspect_map_tool_sees_file_capabilities(tmp_path: Path) -> None:
    binary = tmp_path / "newgidmap"
    binary.write_bytes(b"")
    try:
        os.setxattr(binary, "security.capability", caps_xattr(0x02000000, 1 << 6, True))
    except OSError as exc:
        pytest.skip(f"cannot set security.capability here (needs CAP_SETFCAP): {exc}")
    tool = inspect_map_tool("newgidmap", binary)
    assert tool.file_caps
    assert tool.privileged


def test_inspect_map_tool_missing(tmp_path: Path) -> None:
    assert inspect_map_tool("newuidmap", tmp_path / "absent").path is None
    assert inspect_map_tool("rctl-no-such-helper-xyz").path is None


# --- check_host and load_plan ---------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"subuid": tmp_path / "subuid", "subgid": tmp_path / "subgid", "sys": tmp_path / "sys"}
    for name in ("user", "kernel"):
        (paths["sys"] / name).mkdir(parents=True)
    (paths["sys"] / "user" / "max_user_namespaces").write_text("63000\n")
    return paths


def check(files: dict[str, Path], tools: list[MapTool] | None = None) -> list[userns.Problem]:
    return check_host(
        ME.pw_name,
        subuid_path=files["subuid"],
        subgid_path=files["subgid"],
        tools=[GOOD_UIDMAP, GOOD_GIDMAP] if tools is None else tools,
        proc_sys=files["sys"],
    )


def test_check_host_finds_nothing_on_a_good_host(files: dict[str, Path]) -> None:
    files["subuid"].write_text(f"{ME.pw_name}:100000:65536\n")
    files["subgid"].write_text(f"{ME.pw_uid}:100000:65536\n")
    assert check(files) == []


def test_check_host_reports_missing_entries_with_fixes(files: dict[str, Path]) -> None:
    files["subuid"].write_text("bob:100000:65536\n")
    problems = check(files)
    assert [p.kind for p in problems] == [ProblemKind.NO_SUBIDS, ProblemKind.NO_SUBIDS]
    assert problems[0].message == f"no entry for {ME.pw_name} in {files['subuid']}"
    assert problems[0].fix == f"sudo usermod --add-subuids 165536-231071 {ME.pw_name}"
    assert problems[1].message == f"no entry for {ME.pw_name} in {files['subgid']}"
    assert problems[1].fix == f"sudo usermod --add-subgids 165536-231071 {ME.pw_name}"


def test_check_host_reports_small_ranges_and_malformed_lines(files: dict[str, Path]) -> None:
    files["subuid"].write_text(f"{ME.pw_name}:100000:1000\n{ME.pw_name}:200000\n")
    files["subgid"].write_text(f"{ME.pw_name}:100000:65536\n")
    problems = check(files)
    assert [p.kind for p in problems] == [ProblemKind.MALFORMED_SUBIDS, ProblemKind.FEW_SUBIDS]
    assert "malformed line(s) 2" in problems[0].message
    assert "has 1000 subordinate uids" in problems[1].message
    assert problems[1].fix == f"sudo usermod --add-subuids 165536-230071 {ME.pw_name}"


def test_check_host_reports_helpers_and_kernel_settings(files: dict[str, Path]) -> None:
    files["subuid"].write_text(f"{ME.pw_name}:100000:65536\n")
    files["subgid"].write_text(f"{ME.pw_name}:100000:65536\n")
    (files["sys"] / "user" / "max_user_namespaces").write_text("0\n")
    (files["sys"] / "kernel" / "apparmor_restrict_unprivileged_userns").write_text("1\n")
    tools = [MapTool("newuidmap", None), MapTool("newgidmap", Path("/usr/bin/newgidmap"))]
    problems = check(files, tools)
    assert [p.kind for p in problems] == [
        ProblemKind.TOOL_MISSING,
        ProblemKind.TOOL_UNPRIVILEGED,
        ProblemKind.USERNS_DISABLED,
        ProblemKind.USERNS_RESTRICTED,
    ]
    assert problems[0].fix.startswith("sudo apt-get install uidmap")
    assert "setcap cap_setgid+ep /usr/bin/newgidmap" in problems[1].fix
    assert problems[2].fix.startswith("sudo sysctl -w user.max_user_namespaces=")
    assert "apparmor_restrict_unprivileged_userns=0" in problems[3].fix


def test_check_host_unknown_user() -> None:
    with pytest.raises(NotFoundError, match="no user named"):
        check_host("rctl-no-such-user-xyz", tools=[])


def test_load_plan_suggests_a_range_no_user_has(tmp_path: Path) -> None:
    subuid, subgid = tmp_path / "subuid", tmp_path / "subgid"
    subuid.write_text("bob:100000:65536\nalice:165536:1000\n")
    subgid.write_text("bob:100000:65536\nalice:165536:65536\n")
    with pytest.raises(HostError) as caught:
        load_plan("alice", 1000, 1000, subuid_path=subuid, subgid_path=subgid)
    assert caught.value.message == f"alice has 1000 subordinate uids in {subuid}, 65536 are needed"
    assert caught.value.hint == (
        "give alice more subordinate IDs: sudo usermod --add-subuids 231072-295607 alice"
    )
    subuid.write_text("bob:100000:65536\n1000:165536:65536\n")
    plan = load_plan("alice", 1000, 1000, subuid_path=subuid, subgid_path=subgid)
    assert plan.uid_maps == (IDMap(0, 1000, 1), IDMap(1, 165536, 65536))
