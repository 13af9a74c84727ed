"""Planning user-namespace ID maps (uidmap.mapping): pure, so tested in depth."""

from __future__ import annotations

import dataclasses
import itertools
import random
from pathlib import Path

import pytest

from rctlbase.errors import HostError
from uidmap.mapping import IDMap, UsernsPlan, plan_userns
from uidmap.subid import IDRange

ONE_RANGE = (IDRange(100000, 65536),)


def total(maps: tuple[IDMap, ...]) -> int:
    return sum(m.size for m in maps)


def test_default_plan_maps_root_to_the_user_then_the_subordinate_range() -> None:
    plan = plan_userns(1000, 1001, ONE_RANGE, ONE_RANGE)
    assert plan.uid_maps == (IDMap(0, 1000, 1), IDMap(1, 100000, 65536))
    assert plan.gid_maps == (IDMap(0, 1001, 1), IDMap(1, 100000, 65536))
    assert total(plan.uid_maps) == total(plan.gid_maps) == 65537


def test_several_ranges_are_concatenated_in_file_order() -> None:
    subuids = (IDRange(300000, 1000), IDRange(100000, 100000))
    plan = plan_userns(1000, 1000, subuids, ONE_RANGE)
    assert plan.uid_maps == (
        IDMap(0, 1000, 1),
        IDMap(1, 300000, 1000),
        IDMap(1001, 100000, 64536),
    )


def test_size_limits_the_ids_mapped() -> None:
    plan = plan_userns(1000, 1000, ONE_RANGE, ONE_RANGE, size=1000)
    assert plan.uid_maps == (IDMap(0, 1000, 1), IDMap(1, 100000, 1000))


def test_own_id_and_repeated_ids_are_not_mapped_twice() -> None:
    # alice:900:200 holds alice's own uid 1000; 1000:950:100 repeats part of it.
    subuids = (IDRange(900, 200), IDRange(950, 100), IDRange(5000, 10))
    plan = plan_userns(1000, 1000, subuids, ONE_RANGE, size=205)
    assert plan.uid_maps == (
        IDMap(0, 1000, 1),
        IDMap(1, 900, 100),
        IDMap(101, 1001, 99),
        IDMap(200, 5000, 6),
    )


def test_keep_id_maps_the_user_to_itself() -> None:
    plan = plan_userns(1000, 1000, ONE_RANGE, ONE_RANGE, keep_id=True)
    expected = (IDMap(0, 100000, 1000), IDMap(1000, 1000, 1), IDMap(1001, 101000, 64536))
    assert plan.uid_maps == expected
    assert plan.gid_maps == expected
    assert total(plan.uid_maps) == 65537


def test_keep_id_splits_across_several_ranges() -> None:
    subuids = (IDRange(100000, 600), IDRange(200000, 65536))
    plan = plan_userns(1000, 1000, subuids, ONE_RANGE, keep_id=True)
    assert plan.uid_maps == (
        IDMap(0, 100000, 600),
        IDMap(600, 200000, 400),
        IDMap(1000, 1000, 1),
        IDMap(1001, 200400, 64536),
    )


def test_to_host_follows_the_maps() -> None:
    plan = plan_userns(1000, 2000, ONE_RANGE, ONE_RANGE, keep_id=True)
    assert plan.to_host(0) == 100000
    assert plan.to_host(999) == 100999
    assert plan.to_host(1000) == 1000
    assert plan.to_host(1001) == 101000
    assert plan.to_host(65536) == 165535
    assert plan.to_host(65537) is None
    assert plan.to_host_gid(2000) == 2000
    assert plan.to_host_gid(1000) == 101000
    default = plan_userns(1000, 2000, ONE_RANGE, ONE_RANGE)
    assert (default.to_host(0), default.to_host(1), default.to_host_gid(0)) == (1000, 100000, 2000)


def test_oci_form_is_the_runtime_spec_shape() -> None:
    plan = plan_userns(1000, 1001, ONE_RANGE, ONE_RANGE)
    assert plan.to_oci() == {
        "uidMappings": [
            {"containerID": 0, "hostID": 1000, "size": 1},
            {"containerID": 1, "hostID": 100000, "size": 65536},
        ],
        "gidMappings": [
            {"containerID": 0, "hostID": 1001, "size": 1},
            {"containerID": 1, "hostID": 100000, "size": 65536},
        ],
    }


def test_plan_values_are_frozen() -> None:
    plan = UsernsPlan((IDMap(0, 1000, 1),), ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.uid_maps = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.uid_maps[0].size = 2  # type: ignore[misc]


def test_missing_entries_name_the_files_and_the_fix() -> None:
    with pytest.raises(HostError) as caught:
        plan_userns(1000, 1000, (), (), user="alice")
    assert caught.value.message == "no entry for alice in /etc/subuid and /etc/subgid"
    assert caught.value.hint == (
        "add `alice:100000:65536` to /etc/subuid and /etc/subgid "
        "(sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice)"
    )


def test_missing_subuid_entry_alone_uses_the_injected_path_and_a_free_range() -> None:
    with pytest.raises(HostError) as caught:
        plan_userns(1000, 1000, (), ONE_RANGE, user="alice", subuid_path=Path("/tmp/subuid"))
    assert caught.value.message == "no entry for alice in /tmp/subuid"
    # The user's subgid range ends at 165535, so the suggestion starts after it.
    assert caught.value.hint == (
        "add `alice:165536:65536` to /tmp/subuid (sudo usermod --add-subuids 165536-231071 alice)"
    )


def test_too_small_range_says_found_and_needed_and_adds_the_shortfall() -> None:
    with pytest.raises(HostError) as caught:
        plan_userns(1000, 1000, (IDRange(100000, 1000),), ONE_RANGE, user="alice")
    assert caught.value.message == (
        "alice has 1000 subordinate uids in /etc/subuid, 65536 are needed"
    )
    assert caught.value.hint == (
        "give alice more subordinate IDs: sudo usermod --add-subuids 165536-230071 alice"
    )


def test_both_too_small_get_one_usermod_line() -> None:
    with pytest.raises(HostError) as caught:
        plan_userns(1000, 1000, (IDRange(100000, 1000),), (), user="alice", free_start=300000)
    assert caught.value.message == (
        "alice has 1000 subordinate uids in /etc/subuid, 65536 are needed; "
        "no entry for alice in /etc/subgid"
    )
    assert caught.value.hint is not None
    assert caught.value.hint.endswith(
        "sudo usermod --add-subuids 300000-364535 --add-subgids 300000-365535 alice"
    )


def test_own_id_inside_the_range_does_not_count() -> None:
    # 65536 IDs listed, but one is alice's own uid: one short.
    with pytest.raises(HostError, match="65535 subordinate uids"):
        plan_userns(100000, 1000, ONE_RANGE, ONE_RANGE, user="alice")


def test_keep_id_needs_an_id_below_the_user_for_each_uid() -> None:
    with pytest.raises(HostError, match="65536 subordinate uids in /etc/subuid, 70000 are needed"):
        plan_userns(70000, 1000, ONE_RANGE, ONE_RANGE, keep_id=True, user="alice")


def test_too_many_extents_are_refused() -> None:
    scattered = tuple(IDRange(100000 + 2 * i, 1) for i in range(400))
    with pytest.raises(HostError, match="needs 401 lines, the kernel takes 340"):
        plan_userns(1000, 1000, scattered, ONE_RANGE, size=400)


@pytest.mark.parametrize("keep_id", [False, True])
def test_random_plans_are_valid_maps(keep_id: bool) -> None:
    rng = random.Random(20240601)
    for _ in range(300):
        uid = rng.choice([0, 1000, rng.randrange(1, 200000)])
        ranges = tuple(
            IDRange(rng.randrange(0, 400000), rng.randrange(1, 40000))
            for _ in range(rng.randrange(1, 6))
        )
        size = rng.randrange(1, 70000)
        try:
            plan = plan_userns(uid, uid, ranges, ranges, keep_id=keep_id, size=size)
        except HostError:
            continue
        maps = sorted(plan.uid_maps, key=lambda m: m.container_id)
        # container IDs: 0..size without holes (one more when keep-id places uid above size)
        assert maps[0].container_id == 0
        for before, after in itertools.pairwise(maps):
            assert before.container_id + before.size == after.container_id
        assert total(plan.uid_maps) == (max(size, uid) if keep_id else size) + 1
        # host IDs: disjoint, each the user's own or inside a listed range
        hosts = sorted((m.host_id, m.host_id + m.size) for m in maps)
        for (_, end), (start, _) in itertools.pairwise(hosts):
            assert end <= start
        for m in maps:
            if m.host_id == uid and m.size == 1:
                assert plan.to_host(m.container_id) == uid
                continue
            assert any(r.start <= m.host_id and m.host_id + m.size <= r.end for r in ranges)
        assert plan.to_host(uid if keep_id else 0) == uid
