"""A container's r/w layer read back: changes (``rctl diff``), the layer tar with whiteouts
(``rctl commit``), and the commit's config.

Trees are built in ``tmp_path``; whiteouts are 0:0 character devices as overlayfs makes
them. The round-trip tests unpack the tar with the hardened extractor over a copy of the
lower tree and compare with what the container saw.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
from pathlib import Path

import pytest

from rctlbase.errors import UsageError
from rootless.build.commit import plan_commit_config
from rootless.build.layerdiff import Change, ChangeKind, overlay_changes, vfs_changes
from rootless.images.unpack import WhiteoutFormat, unpack_layer

A, C, D = ChangeKind.ADDED, ChangeKind.CHANGED, ChangeKind.DELETED


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def whiteout(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))


def lower_tree(root: Path) -> Path:
    write(root / "etc/passwd", "root:x:0:0::/root:/bin/sh\n")
    write(root / "etc/group", "root:x:0:\n")
    write(root / "usr/bin/tool", "#!/bin/sh\n")
    write(root / "data/old", "old\n")
    return root


def overlay_upper(upper: Path) -> Path:
    write(upper / "etc/passwd", "root:x:0:0::/root:/bin/bash\n")
    write(upper / "etc/new", "new\n")
    (upper / "usr/bin").mkdir(parents=True)
    whiteout(upper / "usr/bin/tool")
    (upper / "data").mkdir()
    os.setxattr(upper / "data", "user.overlay.opaque", b"y")
    write(upper / "data/fresh", "fresh\n")
    os.symlink("/etc", upper / "link")
    return upper


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_overlay_changes_name_added_changed_and_deleted_paths(tmp_path: Path) -> None:
    lower = lower_tree(tmp_path / "lower")
    upper = overlay_upper(tmp_path / "upper")
    changes = overlay_changes(upper, [lower], None)
    assert changes == [
        Change(C, "/data"),
        Change(A, "/data/fresh"),
        Change(C, "/etc"),
        Change(A, "/etc/new"),
        Change(C, "/etc/passwd"),
        Change(A, "/link"),
        Change(C, "/usr"),
        Change(C, "/usr/bin"),
        Change(D, "/usr/bin/tool"),
    ]


def test_overlay_layer_tar_has_whiteouts_and_opaque_markers(tmp_path: Path) -> None:
    lower = lower_tree(tmp_path / "lower")
    upper = overlay_upper(tmp_path / "upper")
    out = io.BytesIO()
    overlay_changes(upper, [lower], out)
    entries = members(out.getvalue())
    assert set(entries) == {
        "data", "data/.wh..wh..opq", "data/fresh", "etc", "etc/new", "etc/passwd", "link",
        "usr", "usr/bin", "usr/bin/.wh.tool",
    }  # fmt: skip
    assert entries["link"].issym() and entries["link"].linkname == "/etc"
    assert entries["etc/passwd"].size == len("root:x:0:0::/root:/bin/bash\n")
    assert entries["etc/passwd"].uname == ""


def test_overlay_layer_unpacks_over_its_lower_into_the_containers_view(tmp_path: Path) -> None:
    lower = lower_tree(tmp_path / "lower")
    upper = overlay_upper(tmp_path / "upper")
    out = io.BytesIO()
    overlay_changes(upper, [lower], out)
    merged = tmp_path / "merged"
    shutil.copytree(lower, merged, symlinks=True)
    out.seek(0)
    unpack_layer(out, merged, whiteouts=WhiteoutFormat.VFS)
    found = sorted(str(p.relative_to(merged)) for p in merged.rglob("*"))
    assert found == [
        "data", "data/fresh", "etc", "etc/group", "etc/new", "etc/passwd", "link", "usr",
        "usr/bin",
    ]  # fmt: skip
    assert (merged / "etc/passwd").read_text().endswith("/bin/bash\n")


def test_overlay_lookup_never_follows_a_lower_layers_symlink(tmp_path: Path) -> None:
    # The lower has a -> (a host directory holding x); the container made a real a/x.
    # Followed, the link would make a/x look "changed"; it is new.
    outside = tmp_path / "outside"
    write(outside / "x", "host\n")
    lower = tmp_path / "lower"
    lower.mkdir()
    os.symlink(outside, lower / "a")
    upper = tmp_path / "upper"
    write(upper / "a/x", "mine\n")
    assert overlay_changes(upper, [lower], None) == [Change(C, "/a"), Change(A, "/a/x")]


def test_overlay_archives_a_symlinked_directory_as_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "secret", "host secret\n")
    upper = tmp_path / "upper"
    upper.mkdir()
    os.symlink(outside, upper / "escape")
    out = io.BytesIO()
    changes = overlay_changes(upper, [], out)
    assert changes == [Change(A, "/escape")]
    assert list(members(out.getvalue())) == ["escape"]


def test_overlay_lower_whiteouts_and_opaque_dirs_hide_what_is_below(tmp_path: Path) -> None:
    bottom = tmp_path / "bottom"
    write(bottom / "gone", "x")
    write(bottom / "dir/old", "x")
    middle = tmp_path / "middle"
    middle.mkdir()
    whiteout(middle / "gone")
    (middle / "dir").mkdir()
    os.setxattr(middle / "dir", "user.overlay.opaque", b"y")
    upper = tmp_path / "upper"
    write(upper / "gone", "again")
    write(upper / "dir/old", "again")
    changes = overlay_changes(upper, [middle, bottom], None)
    assert changes == [Change(C, "/dir"), Change(A, "/dir/old"), Change(A, "/gone")]


def test_overlay_hard_links_become_link_entries(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    write(upper / "a", "same")
    os.link(upper / "a", upper / "b")
    out = io.BytesIO()
    overlay_changes(upper, [], out)
    entries = members(out.getvalue())
    assert entries["a"].isreg() and entries["b"].islnk() and entries["b"].linkname == "a"


def test_layer_tar_is_deterministic(tmp_path: Path) -> None:
    lower = lower_tree(tmp_path / "lower")
    upper = overlay_upper(tmp_path / "upper")
    first, second = io.BytesIO(), io.BytesIO()
    overlay_changes(upper, [lower], first)
    overlay_changes(upper, [lower], second)
    assert first.getvalue() == second.getvalue()


def test_vfs_changes_compare_the_copy_with_its_image(tmp_path: Path) -> None:
    base = lower_tree(tmp_path / "base")
    root = tmp_path / "root"
    shutil.copytree(base, root, symlinks=True)
    for path in (base / "etc", root / "etc"):
        os.utime(path, ns=(0, 0))  # copytree sets times after the copy
    write(root / "etc/passwd", "changed, same length.....\n")
    os.utime(root / "etc", ns=(0, 0))
    (root / "usr/bin/tool").unlink()
    write(root / "new", "new")
    out = io.BytesIO()
    changes = vfs_changes(root, base, out)
    assert Change(C, "/etc/passwd") in changes
    assert Change(D, "/usr/bin/tool") in changes
    assert Change(A, "/new") in changes
    assert Change(C, "/etc") not in changes  # same metadata: not listed, not archived
    assert not [c for c in changes if c.path.startswith("/data")]
    entries = members(out.getvalue())
    assert "usr/bin/.wh.tool" in entries and "etc/passwd" in entries and "etc" not in entries


def test_vfs_without_a_base_adds_everything(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "a/b", "x")
    assert vfs_changes(root, None, None) == [Change(A, "/a"), Change(A, "/a/b")]


PARENT = {
    "architecture": "amd64",
    "os": "linux",
    "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
    "history": [{"created_by": "base"}],
}


def test_commit_config_appends_the_layer_and_its_history() -> None:
    config = plan_commit_config(
        PARENT,
        diff_id="sha256:" + "2" * 64,
        changes=['CMD ["python3", "app.py"]', "ENV MODE=prod", "EXPOSE 8080"],
        created="2026-12-07T19:00:00Z",
        created_by="/bin/sh -c make",
        message="built by hand",
        author="Jane",
    )
    assert config["rootfs"]["diff_ids"] == ["sha256:" + "1" * 64, "sha256:" + "2" * 64]
    assert config["config"]["Cmd"] == ["python3", "app.py"]
    assert config["config"]["Env"] == ["PATH=/bin", "MODE=prod"]
    assert config["config"]["ExposedPorts"] == {"8080/tcp": {}}
    assert config["author"] == "Jane"
    assert config["history"][-1] == {
        "created": "2026-12-07T19:00:00Z",
        "created_by": "/bin/sh -c make",
        "author": "Jane",
        "comment": "built by hand",
    }
    assert PARENT["config"] == {"Cmd": ["sh"], "Env": ["PATH=/bin"]}  # not changed in place


def test_new_mount_points_are_left_out_but_existing_paths_are_not(tmp_path: Path) -> None:
    lower = lower_tree(tmp_path / "lower")
    upper = tmp_path / "upper"
    write(upper / "run/secrets/token", "")  # the runtime's mount point of a secret
    write(upper / "etc/passwd", "changed")
    skip = frozenset({"/run/secrets/token", "/etc/passwd"})
    changes = overlay_changes(upper, [lower], None, skip)
    assert Change(A, "/run/secrets/token") not in changes
    assert Change(C, "/etc/passwd") in changes
    assert vfs_changes(upper, lower, None, skip) == [
        c for c in vfs_changes(upper, lower, None) if c.path != "/run/secrets/token"
    ]


def test_commit_changes_take_healthcheck_and_refuse_run() -> None:
    config = plan_commit_config(
        PARENT, diff_id="sha256:" + "2" * 64, created="", created_by="",
        changes=["HEALTHCHECK --interval=5s CMD true", "USER 1000"],
    )  # fmt: skip
    assert config["config"]["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5 * 10**9}
    assert config["config"]["User"] == "1000"
    with pytest.raises(UsageError, match="not one of"):
        plan_commit_config(PARENT, diff_id="sha256:" + "2" * 64, created="", created_by="",
                           changes=["RUN rm -rf /"])  # fmt: skip
