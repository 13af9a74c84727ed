"""``--userns keep-id``: the nested maps, fuse-overlayfs's ID shift, the passwd and group
entries (rootless.containers.keepid, uidmap.mapping.nest_keep_id, storage.drivers)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rctlbase.errors import HostError, UsageError
from rootless.containers.inner import rootfs_plan
from rootless.containers.keepid import (
    HostUser,
    keep_id_driver,
    keep_id_home,
    outer_ids,
    passwd_with_user,
    plan_keep_id,
    with_keep_id_user,
)
from rootless.containers.keepid import group_with_user as group_with
from rootless.containers.ocispec import plan_oci_config
from rootless.containers.spec import ContainerSpec, ImageDefaults, UsernsMode, UserSpec
from rootless.storage.drivers import Driver, mount_command, plan_rootfs
from uidmap.mapping import IDMap, UsernsPlan, lookup, nest_keep_id, plan_userns
from uidmap.subid import IDRange

ALICE = HostUser("alice", 1000, 1000, "Alice A", "/home/alice", "alice")
SUB = (IDRange(100000, 65536),)
DEFAULT = plan_userns(1000, 1000, SUB, SUB)
NESTED = ((0, 1, 1000), (1000, 0, 1), (1001, 1001, 64536))
PASSWD = "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n"
GROUP = "root:x:0:\nwww-data:x:33:\n"


def triples(maps: tuple[IDMap, ...]) -> tuple[tuple[int, int, int], ...]:
    return tuple((m.container_id, m.host_id, m.size) for m in maps)


def test_nested_maps_for_uid_1000_with_one_range() -> None:
    nested = nest_keep_id(DEFAULT)
    assert triples(nested.uid_maps) == NESTED
    assert triples(nested.gid_maps) == NESTED


@pytest.mark.parametrize(
    "ranges",
    [SUB, (IDRange(100000, 500), IDRange(300000, 65036)), (IDRange(500, 70000),)],
    ids=["one-range", "two-ranges", "range-holding-the-uid"],
)
def test_nested_in_default_is_keep_id_from_the_host(ranges: tuple[IDRange, ...]) -> None:
    """Through both namespaces, each container ID lands where keep-id planned from the
    host would put it (an independent computation: uidmap.mapping.plan_userns)."""
    outer = plan_userns(1000, 1000, ranges, ranges)
    direct = plan_userns(1000, 1000, ranges, ranges, keep_id=True)
    nested = nest_keep_id(outer)
    for container_id in range(65537):
        via_outer = lookup(nested.uid_maps, container_id)
        assert via_outer is not None
        assert outer.to_host(via_outer) == direct.to_host(container_id), container_id


def test_nested_maps_refused_when_the_uid_is_beyond_the_subordinate_ids() -> None:
    outer = plan_userns(70000, 1000, SUB, SUB)
    with pytest.raises(HostError, match="keep-id needs 70000 subordinate uids"):
        nest_keep_id(outer)


def test_fuse_overlayfs_presents_stored_ids_as_the_nested_namespace_sees_them() -> None:
    """fuse-overlayfs shows stored ID S+i as P+i for each S:P:COUNT triple (measured);
    the nested namespace then sees the outer ID P+i as its own S+i: the identity."""
    nested = nest_keep_id(DEFAULT)
    keep = plan_keep_id(DEFAULT, ALICE, PASSWD, GROUP, home="/")
    for stored in (0, 1, 33, 999, 1000, 1001, 65535, 65536):
        presented = lookup(tuple(IDMap(*t) for t in keep.uid_mapping), stored)
        assert presented is not None
        seen = next(
            m.container_id + presented - m.host_id
            for m in nested.uid_maps
            if m.host_id <= presented < m.host_id + m.size
        )
        assert seen == stored


def test_fuse_overlayfs_mount_gets_the_mapping_options() -> None:
    keep = plan_keep_id(DEFAULT, ALICE, None, None, home="/")
    plan = plan_rootfs(
        Driver.FUSE_OVERLAYFS, Path("/l"), ("aaa",), Path("/c"),
        uid_mapping=keep.uid_mapping, gid_mapping=keep.gid_mapping,
    )  # fmt: skip
    command = mount_command(plan)
    assert command is not None
    options = command[2].split(",")
    assert "uidmapping=0:1:1000:1000:0:1:1001:1001:64536" in options
    assert "gidmapping=0:1:1000:1000:0:1:1001:1001:64536" in options
    plain = mount_command(plan_rootfs(Driver.FUSE_OVERLAYFS, Path("/l"), ("aaa",), Path("/c")))
    assert plain is not None and "mapping=" not in plain[2]
    with pytest.raises(ValueError, match="only fuse-overlayfs"):
        plan_rootfs(Driver.OVERLAY, Path("/l"), ("a",), Path("/c"), uid_mapping=NESTED)


def test_the_launcher_reads_the_mapping_back_from_launch_json() -> None:
    raw: dict[str, object] = {
        "driver": "fuse-overlayfs", "layers_root": "/l", "lowers": ["a/diff"],
        "upper": "/c/upper", "work": "/c/work", "merged": "/c/merged",
        "uid_mapping": [list(t) for t in NESTED], "gid_mapping": [[0, 5, 1]],
    }  # fmt: skip
    plan = rootfs_plan(raw)
    assert plan.uid_mapping == NESTED and plan.gid_mapping == ((0, 5, 1),)
    del raw["uid_mapping"], raw["gid_mapping"]  # launch.json of an older rctl
    assert rootfs_plan(raw).uid_mapping == ()


def test_passwd_entry_added_unless_the_image_has_the_name_or_the_uid() -> None:
    added = passwd_with_user(PASSWD, ALICE, "/home/alice")
    assert added == PASSWD + "alice:*:1000:1000:Alice A:/home/alice:/bin/sh\n"
    assert passwd_with_user("root:x:0:0::/root:/bin/sh", ALICE, "/") == (
        "root:x:0:0::/root:/bin/sh\nalice:*:1000:1000:Alice A:/:/bin/sh\n"
    )
    assert passwd_with_user(None, ALICE, "/") == "alice:*:1000:1000:Alice A:/:/bin/sh\n"
    assert passwd_with_user(PASSWD + "alice:x:1500:1500::/a:/bin/sh\n", ALICE, "/") is None
    assert passwd_with_user(PASSWD + "bob:x:1000:1000::/b:/bin/sh\n", ALICE, "/") is None


def test_group_entry_added_unless_the_image_has_the_name_or_the_gid() -> None:
    assert group_with(GROUP, ALICE) == GROUP + "alice:x:1000:alice\n"
    staff = HostUser("alice", 1000, 50, group="staff")
    assert group_with(GROUP, staff) == GROUP + "staff:x:50:alice\n"
    assert group_with(GROUP + "users:x:1000:\n", ALICE) is None
    assert group_with(GROUP + "alice:x:2000:\n", ALICE) is None


def test_home_is_the_user_s_only_when_mounted_there() -> None:
    assert keep_id_home("/home/alice", ["/data", "/home/alice/"], "/srv") == "/home/alice"
    assert keep_id_home("/home/alice", ["/data", "/home"], "/srv") == "/srv"
    assert keep_id_home("/home/alice", [], "/") == "/"


def test_plan_keep_id_resolves_the_process_user_from_the_added_entry() -> None:
    spec = ContainerSpec(
        name="c", image_ref="busybox", image_id="sha256:" + "b" * 64,
        image=ImageDefaults(cmd=("sh",), user="www-data"), userns=UsernsMode.KEEP_ID,
    )  # fmt: skip
    keep = plan_keep_id(DEFAULT, ALICE, PASSWD, GROUP, home="/home/alice")
    resolved = with_keep_id_user(spec, ALICE).with_resolved_user(keep.passwd, keep.group)
    user = resolved.resolved_user
    assert user is not None
    assert (user.uid, user.gid, user.home) == (1000, 1000, "/home/alice")
    given = with_keep_id_user(replace(spec, user=UserSpec("0")), ALICE)
    assert given.user == UserSpec("0")


def test_the_driver_becomes_fuse_overlayfs_vfs_and_a_missing_program_are_refused() -> None:
    fuse = "/usr/bin/fuse-overlayfs"
    assert keep_id_driver(Driver.OVERLAY, fuse) is Driver.FUSE_OVERLAYFS
    assert keep_id_driver(Driver.FUSE_OVERLAYFS, fuse) is Driver.FUSE_OVERLAYFS
    with pytest.raises(UsageError, match="not vfs"):
        keep_id_driver(Driver.VFS, fuse)
    with pytest.raises(HostError, match="fuse-overlayfs, which is not installed"):
        keep_id_driver(Driver.OVERLAY, None)


def test_outer_ids_are_what_a_chown_outside_the_container_must_give() -> None:
    nested = nest_keep_id(DEFAULT)
    assert outer_ids(nested, 1000, 1000) == (0, 0)
    assert outer_ids(nested, 0, 33) == (1, 34)
    assert outer_ids(nested, 2000, 65536) == (2000, 65536)
    assert outer_ids(UsernsPlan((), ()), 7, 8) == (7, 8)


def test_no_ping_sysctl_in_a_joined_network_namespace_of_the_launcher() -> None:
    spec = ContainerSpec(
        name="c", image_ref="b", image_id="sha256:" + "b" * 64,
        image=ImageDefaults(cmd=("sh",)), user=UserSpec("1000", "1000"),
    )  # fmt: skip
    joined = plan_oci_config(
        spec, rootfs_path="/r", hostname="h", uid_maps=NESTED, gid_maps=NESTED,
        new_userns=True, netns_path="/proc/self/ns/net",
    )  # fmt: skip
    assert "sysctl" not in joined["linux"]
    assert joined["process"]["user"] == {"uid": 1000, "gid": 1000}
    own = plan_oci_config(
        spec, rootfs_path="/r", hostname="h", uid_maps=NESTED, gid_maps=NESTED, new_userns=True
    )
    assert own["linux"]["sysctl"] == {"net.ipv4.ping_group_range": "0 65536"}
