"""Planning root filesystems: the mount each driver needs, from layer chain IDs."""

from __future__ import annotations

from pathlib import Path

import pytest

from rctlbase.errors import UsageError
from rootless.storage.drivers import Driver, layer_format, mount_command, parse_driver, plan_rootfs

LAYERS = Path("/home/u/.local/share/rctl/layers/overlay")
CTR = Path("/home/u/.local/share/rctl/containers/abc")


def test_kernel_overlay_mounts_relative_lowers_top_first_with_userxattr() -> None:
    plan = plan_rootfs(Driver.OVERLAY, LAYERS, ("aaa", "bbb", "ccc"), CTR)
    assert mount_command(plan) == [
        "mount", "-t", "overlay", "overlay", "-o",
        f"lowerdir=ccc/diff:bbb/diff:aaa/diff,upperdir={CTR}/upper,workdir={CTR}/work,userxattr",
        f"{CTR}/merged",
    ]  # fmt: skip
    assert plan.rootfs == CTR / "merged"


def test_fuse_overlayfs_gets_absolute_lowers_and_no_userxattr() -> None:
    plan = plan_rootfs(Driver.FUSE_OVERLAYFS, LAYERS, ("aaa", "bbb"), CTR)
    command = mount_command(plan)
    assert command is not None and command[0] == "fuse-overlayfs"
    assert (
        command[2]
        == f"lowerdir={LAYERS}/bbb/diff:{LAYERS}/aaa/diff,upperdir={CTR}/upper,workdir={CTR}/work"
    )


def test_vfs_needs_no_mount_and_uses_its_copy_as_root() -> None:
    plan = plan_rootfs(Driver.VFS, LAYERS, ("aaa",), CTR)
    assert mount_command(plan) is None
    assert plan.rootfs == CTR / "rootfs"
    assert layer_format(Driver.VFS) == "vfs"
    assert layer_format(Driver.FUSE_OVERLAYFS) == layer_format(Driver.OVERLAY) == "overlay"


def test_too_many_layers_for_one_mount_is_refused_with_a_hint() -> None:
    with pytest.raises(UsageError, match="too many layers") as info:
        plan_rootfs(Driver.OVERLAY, LAYERS, tuple(f"{i:064x}" for i in range(80)), CTR)
    assert info.value.hint and "vfs" in info.value.hint


def test_unknown_driver_names_the_choices() -> None:
    assert parse_driver("fuse-overlayfs") is Driver.FUSE_OVERLAYFS
    with pytest.raises(UsageError, match="unknown storage driver 'btrfs'") as info:
        parse_driver("btrfs")
    assert info.value.hint == "use one of: overlay, fuse-overlayfs, vfs"
