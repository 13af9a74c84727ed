"""Pods, hermetic parts: names, ``--share``, the store, the filters, members' config.json
and unit dependencies, and ``ps --filter pod=``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rctlbase.errors import ConflictError, NotFoundError, UsageError
from rootless.containers.ocispec import plan_oci_config
from rootless.containers.spec import ContainerSpec, ImageDefaults
from rootless.filters import PS_KEYS, ContainerFacts, container_matcher, parse_filters
from rootless.pods.record import PodRecord, PodStore, check_pod_name, parse_share, pod_unit
from rootless.pods.service import matches, parse_pod_filters
from rootless.reports.pods import PodListRow
from units.properties import ServiceSpec, plan_properties
from units.unitfile import UnitSection, render_unit_file
from units.unitrender import render_service

ID = "a" * 64


@pytest.mark.parametrize("name", ["web", "a.b-c_d", "0", "x" * 128])
def test_valid_pod_names(name: str) -> None:
    assert check_pod_name(name) == name


@pytest.mark.parametrize("name", ["", "../x", "a/b", "-a", "a b", "x" * 129, "é", "a\n"])
def test_hostile_pod_names_are_refused(name: str) -> None:
    with pytest.raises(UsageError, match="invalid pod name"):
        check_pod_name(name)


def test_share_always_has_net_and_refuses_others() -> None:
    assert parse_share("ipc") == ("net", "ipc")
    assert parse_share("uts,net") == ("net", "uts")
    assert parse_share("") == ("net",)
    with pytest.raises(UsageError, match="'pid' can't be shared"):
        parse_share("net,pid")


def test_store_round_trip_and_lookup(tmp_path: Path) -> None:
    store = PodStore(tmp_path / "pods", tmp_path / "run")
    record = PodRecord(ID, "web", 1.0, labels={"a": "b"}, hostname="h")
    other = PodRecord("ab" + "c" * 62, "db", 2.0, infra=False, share=())
    store.save(record)
    store.save(other)
    assert store.get("web") == record
    assert store.get(ID) == record
    assert store.get("aaa") == record
    with pytest.raises(NotFoundError):
        store.get("a")  # too short for a prefix
    store.save(replace(record, id="aaab" + "0" * 60, name="web2"))
    with pytest.raises(ConflictError, match="ambiguous"):
        store.get("aaa")
    with pytest.raises(ConflictError, match="already in use"):
        store.check_free("db")
    with pytest.raises(NotFoundError, match="no such pod"):
        store.get("nope")
    assert sorted(r.name for r in store.all()) == ["db", "web", "web2"]
    assert store.all()[0].name == "db"  # the newest first
    assert other.shared == ()
    store.remove(ID)
    assert store.find("web") is None


def test_store_ignores_what_is_not_a_pod(tmp_path: Path) -> None:
    store = PodStore(tmp_path / "pods", tmp_path / "run")
    (tmp_path / "pods" / "..evil").mkdir(parents=True)
    (tmp_path / "pods" / "notanid").mkdir()
    (tmp_path / "pods" / "notanid" / "pod.json").write_text("{}")
    assert store.all() == []


def test_the_pod_unit_is_named_by_id() -> None:
    assert pod_unit(ID) == f"rctl-pod-{ID}.service"
    assert PodRecord(ID, "x", 0).unit == pod_unit(ID)
    assert PodRecord(ID, "x", 0, unit_name="rctl-pod-x.service").unit == "rctl-pod-x.service"


def test_pod_filters() -> None:
    row = PodListRow(ID, "web", 0.0, "Running", labels={"tier": "front"})
    wanted = parse_pod_filters(["name=we", "label=tier=front", "status=running", "id=aaa"])
    assert all(matches(row, key, values) for key, values in wanted.items())
    assert not matches(row, "label", ["tier=back"])
    assert not matches(row, "status", ["exited"])
    with pytest.raises(UsageError, match="invalid pod filter"):
        parse_pod_filters(["volume=x"])


def test_ps_filter_pod_by_name_or_id() -> None:
    member = ContainerFacts("c1", "m", "running", 1.0, {}, "i", None, "none", pod=(ID, "web"))
    alone = ContainerFacts("c2", "n", "running", 1.0, {}, "i", None, "none")

    def keep(text: str) -> list[str]:
        matcher = container_matcher(
            parse_filters([text], PS_KEYS), created_of=lambda _: 0.0, image_ids_of=lambda _: set()
        )
        return [c.id for c in (member, alone) if matcher(c)]

    assert keep("pod=web") == ["c1"]
    assert keep("pod=aaaa") == ["c1"]
    assert keep("pod=other") == []


def member_config(joined: tuple[str, ...]) -> dict[str, Any]:
    spec = ContainerSpec(
        name="c1", image_ref="busybox", image_id="sha256:" + "b" * 64,
        image=ImageDefaults(), command=("true",),
    )  # fmt: skip
    return plan_oci_config(
        spec, rootfs_path="/r", hostname="pod", netns_path="/proc/self/ns/net", joined=joined
    )


def test_a_member_shares_the_pods_ipc_and_uts() -> None:
    kinds = [ns["type"] for ns in member_config(("net", "ipc", "uts"))["linux"]["namespaces"]]
    assert "ipc" not in kinds
    assert "uts" not in kinds
    assert "hostname" not in member_config(("net", "uts"))
    alone = member_config(())
    assert {"ipc", "uts"} <= {ns["type"] for ns in alone["linux"]["namespaces"]}
    assert alone["hostname"] == "pod"
    # The network namespace is the launcher's, which joined the pod's.
    (net,) = [ns for ns in alone["linux"]["namespaces"] if ns["type"] == "network"]
    assert net["path"] == "/proc/self/ns/net"


def test_member_units_bind_to_the_pod_unit() -> None:
    spec = ServiceSpec(
        name="rctl-c.service",
        exec_start=("/bin/true",),
        binds_to=(pod_unit(ID),),
        after=(pod_unit(ID),),
    )
    props = dict(plan_properties(spec))
    assert props["BindsTo"] == ("as", [pod_unit(ID)])
    assert props["After"] == ("as", [pod_unit(ID)])
    lines = render_service(spec)
    text = render_unit_file(
        [UnitSection("Unit", lines.unit), UnitSection("Service", lines.service)]
    )
    assert f"[Unit]\nBindsTo={pod_unit(ID)}\nAfter={pod_unit(ID)}\n" in text
    with pytest.raises(UsageError, match="binds_to"):
        replace(spec, binds_to=("rctl-pod-x\n.service",))
    with pytest.raises(UsageError, match="after"):
        replace(spec, after=("no-suffix",))
