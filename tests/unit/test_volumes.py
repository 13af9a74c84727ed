"""Volumes: the -v/--mount/--volumes-from parsers, mount planning, the volume store, the
filters, the copy-up merge and the --rm stop hook (rootless.volumes)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from rctlbase.errors import ConflictError, NotFoundError, UsageError
from rootless.containers.reporting import mounts_of
from rootless.containers.spec import BindMount, TmpfsMount
from rootless.filters import VOLUME_KEYS, parse_filters
from rootless.volumes.cleanup import doomed_volumes
from rootless.volumes.model import MountPoint, VolumeRecord
from rootless.volumes.parse import (
    MountKind,
    VolumeRequest,
    VolumesFrom,
    parse_mount,
    parse_volume,
    parse_volumes_from,
)
from rootless.volumes.plan import NewVolume, bind_mounts, inherit_mounts, plan_mounts
from rootless.volumes.service import (
    VolumeService,
    filter_volumes,
    parse_volume_options,
    volume_report,
)
from rootless.volumes.store import VolumeStore
from rootless.volumes.userjob import VolumeJob, copyup_job, encode_jobs, map_id

VOLS = "/home/u/.local/share/rctl/volumes"


def usage_error(func: Any, value: str) -> str:
    with pytest.raises(UsageError) as info:
        func(value)
    return info.value.message


# ---- -v -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/srv/site:/srv", VolumeRequest(MountKind.BIND, "/srv/site", "/srv")),
        ("./site:/srv:ro", VolumeRequest(MountKind.BIND, "./site", "/srv", True, mode="ro")),
        ("../x:/x/:rw", VolumeRequest(MountKind.BIND, "../x", "/x", False, mode="rw")),
        ("data:/var/lib/db", VolumeRequest(MountKind.VOLUME, "data", "/var/lib/db")),
        ("/cache", VolumeRequest(MountKind.VOLUME, "", "/cache")),
        (
            "/h:/c:ro,U,z",
            VolumeRequest(MountKind.BIND, "/h", "/c", True, chown=True, mode="ro,U,z"),
        ),
        ("d:/d:U,Z", VolumeRequest(MountKind.VOLUME, "d", "/d", chown=True, mode="U,Z")),
        (
            "/h:/c:rslave,nosuid",
            VolumeRequest(
                MountKind.BIND, "/h", "/c", options=("rslave", "nosuid"), mode="rslave,nosuid"
            ),
        ),
        ("d:/d:nocopy", VolumeRequest(MountKind.VOLUME, "d", "/d", nocopy=True, mode="nocopy")),
        ("my.vol_1-x:/d", VolumeRequest(MountKind.VOLUME, "my.vol_1-x", "/d")),
    ],
)
def test_parse_volume(value: str, expected: VolumeRequest) -> None:
    assert parse_volume(value) == expected


def test_parse_volume_anonymous_property() -> None:
    assert parse_volume("/cache").anonymous
    assert not parse_volume("data:/cache").anonymous
    assert not parse_volume("/h:/cache").anonymous


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("/a:/b:bogus", "unknown option 'bogus'"),
        ("/a:/b:ro,rw", "ro/rw given twice"),
        ("/a:/b:ro,", "an empty option"),
        ("/a:b", "not absolute"),
        ("relative", "not absolute"),
        ("", "an empty part"),
        (":/x", "an empty part"),
        ("/a::ro", "an empty part"),
        ("/a:/b:ro:x", "too many ':'"),
        ("/a:/", "over the container's /"),
        ("/a:/b/..", "over the container's /"),
        ("bad%name:/x", "not a volume name"),
        ("-x:/x", "not a volume name"),
        ("/a:/b:shared,rslave", "more than one propagation"),
        ("/a:/b:nosuid,suid", "contradicts"),
        ("/a:/b:nocopy", "nocopy applies to volumes"),
    ],
)
def test_parse_volume_refuses(value: str, why: str) -> None:
    message = usage_error(parse_volume, value)
    assert why in message and "--volume" in message


# ---- --mount --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "type=bind,src=/h,dst=/c,readonly",
            VolumeRequest(MountKind.BIND, "/h", "/c", read_only=True),
        ),
        (
            "type=bind,source=./h,target=/c,ro=false,bind-propagation=rshared",
            VolumeRequest(MountKind.BIND, "./h", "/c", options=("rshared",)),
        ),
        ("type=volume,source=v,destination=/c", VolumeRequest(MountKind.VOLUME, "v", "/c")),
        ("dst=/c", VolumeRequest(MountKind.VOLUME, "", "/c")),  # docker's default type
        (
            "type=volume,src=v,dst=/c,volume-nocopy,volume-label=a=b,volume-driver=local,U",
            VolumeRequest(
                MountKind.VOLUME, "v", "/c", chown=True, nocopy=True, labels=(("a", "b"),)
            ),
        ),
        ('"type=bind","src=/a,b",dst=/c', VolumeRequest(MountKind.BIND, "/a,b", "/c")),
        ("type=bind,src=/h,dst=/c,z,consistency=cached", VolumeRequest(MountKind.BIND, "/h", "/c")),
        ("type=tmpfs,dst=/t", TmpfsMount("/t", ("rw", "noexec", "nosuid", "nodev"))),
        (
            "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770,readonly",
            TmpfsMount("/t", ("ro", "noexec", "nosuid", "nodev", "size=1048576", "mode=1770")),
        ),
    ],
)
def test_parse_mount(value: str, expected: VolumeRequest | TmpfsMount) -> None:
    assert parse_mount(value) == expected


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("type=bind,dst=/x", "needs a source"),
        ("type=bind,src=/x", "container path is empty"),
        ("type=bind,src=x,dst=/x", "is not a path"),
        ("type=nfs,src=a,dst=/x", "unknown type"),
        ("type=volume,src=v,dst=/x,bogus=1", "unknown key 'bogus'"),
        ("type=volume,src=/h,dst=/x", "a volume's source is a name"),
        ("type=volume,src=v%,dst=/x", "not a volume name"),
        ("type=volume,src=v,dst=/x,volume-driver=nfs", "volume driver"),
        ("type=volume,src=v,dst=/x,bind-propagation=rshared", "applies to type=bind"),
        ("type=bind,src=/h,dst=/x,volume-nocopy", "don't apply to type=bind"),
        ("type=tmpfs,src=/h,dst=/x", "a tmpfs has no source"),
        ("type=tmpfs,dst=/x,U", "don't apply to a tmpfs"),
        ("type=bind,src=/h,dst=/x,tmpfs-size=1m", "apply to type=tmpfs"),
        ("type=tmpfs,dst=/x,tmpfs-mode=999", "not octal"),
        ("type=bind,src=/h,dst=/x,readonly=maybe", "not true or false"),
        ("type=bind,src=/h,src=/i,dst=/x", "given twice"),
        ("type=bind,,src=/h,dst=/x", "an empty field"),
        ("type,src=/h,dst=/x", "type needs a value"),
    ],
)
def test_parse_mount_refuses(value: str, why: str) -> None:
    message = usage_error(parse_mount, value)
    assert why in message and "--mount" in message


def test_parse_volumes_from() -> None:
    assert parse_volumes_from("db") == VolumesFrom("db", None)
    assert parse_volumes_from("db:ro") == VolumesFrom("db", True)
    assert parse_volumes_from("db:rw,z") == VolumesFrom("db", False)
    for bad in ("", ":ro", "db:", "db:bogus", "db:ro,rw"):
        assert "--volumes-from" in usage_error(parse_volumes_from, bad)


# ---- planning -------------------------------------------------------------------------------


def names() -> Any:
    counter = iter(range(100))
    return lambda: f"anon{next(counter)}"


def test_plan_mounts_binds_named_and_anonymous() -> None:
    requests = [
        parse_volume("./site:/srv:ro"),
        parse_volume("data:/var/lib/db:U"),
        parse_volume("old:/old:nocopy"),
        parse_volume("/cache"),
    ]
    plan = plan_mounts(
        requests, cwd="/home/u/proj", volumes_root=VOLS, existing={"old"}, new_name=names()
    )
    assert [
        (m.type, m.source, m.destination, m.name, m.read_only, m.anonymous) for m in plan.mounts
    ] == [
        ("bind", "/home/u/proj/site", "/srv", "", True, False),
        ("volume", f"{VOLS}/data/_data", "/var/lib/db", "data", False, False),
        ("volume", f"{VOLS}/old/_data", "/old", "old", False, False),
        ("volume", f"{VOLS}/anon0/_data", "/cache", "anon0", False, True),
    ]
    assert plan.create == (NewVolume("data"), NewVolume("anon0", anonymous=True))
    assert plan.copy_up == (("/var/lib/db", "data"), ("/cache", "anon0"))
    assert plan.chown == (f"{VOLS}/data/_data",)
    assert plan.binds == ("/home/u/proj/site",)
    assert bind_mounts(plan)[0] == BindMount("/home/u/proj/site", "/srv", read_only=True)


def test_plan_mounts_one_new_volume_used_twice_is_created_once() -> None:
    plan = plan_mounts(
        [parse_volume("v:/a"), parse_mount("type=volume,src=v,dst=/b,volume-label=x=1")],  # type: ignore[list-item]
        cwd="/",
        volumes_root=VOLS,
        existing=(),
        new_name=names(),
    )
    assert plan.create == (NewVolume("v"),)
    assert [m.destination for m in plan.mounts] == ["/a", "/b"]


def test_plan_mounts_precedence_user_then_volumes_from_then_image() -> None:
    inherited = inherit_mounts(
        [
            MountPoint("volume", f"{VOLS}/a/_data", "/data", name="a", anonymous=True),
            MountPoint("bind", "/h", "/conf", read_only=False),
        ],
        read_only=True,
    )
    assert all(m.read_only and not m.anonymous for m in inherited)
    plan = plan_mounts(
        [parse_volume("/mine:/conf")],
        cwd="/",
        volumes_root=VOLS,
        existing={"a"},
        new_name=names(),
        inherited=inherited,
        image_volumes=["/data", "/var/log", "var/cache/", "/tmp"],
        other_destinations=["/tmp"],
    )
    assert [(m.destination, m.source) for m in plan.mounts] == [
        ("/conf", "/mine"),
        ("/data", f"{VOLS}/a/_data"),
        ("/var/log", f"{VOLS}/anon0/_data"),
        ("/var/cache", f"{VOLS}/anon1/_data"),
    ]
    assert plan.create == (NewVolume("anon0", True), NewVolume("anon1", True))
    assert plan.copy_up == (("/var/log", "anon0"), ("/var/cache", "anon1"))


def test_inherit_mounts_keeps_modes_without_ro_or_rw() -> None:
    mounts = [MountPoint("bind", "/h", "/a", read_only=True), MountPoint("bind", "/i", "/b")]
    assert [m.read_only for m in inherit_mounts(mounts, None)] == [True, False]
    assert [m.read_only for m in inherit_mounts(mounts, False)] == [False, False]


def test_plan_mounts_refuses_duplicate_destinations() -> None:
    for requests, others in (
        ([parse_volume("/a:/x"), parse_volume("b:/x/")], ()),
        ([parse_volume("/a:/run")], ("/run",)),
    ):
        with pytest.raises(UsageError, match="duplicate mount point"):
            plan_mounts(
                requests,
                cwd="/",
                volumes_root=VOLS,
                existing=(),
                new_name=names(),
                other_destinations=others,
            )


# ---- records, filters, options --------------------------------------------------------------


def test_mount_point_inspect_and_json_round_trip() -> None:
    mount = MountPoint(
        "volume", "/v/d/_data", "/d", name="d", read_only=True, options=("rslave",), mode="ro"
    )
    assert mounts_of((mount,))[0].to_docker() == {
        "Type": "volume",
        "Name": "d",
        "Driver": "local",
        "Source": "/v/d/_data",
        "Destination": "/d",
        "Mode": "ro",
        "RW": False,
        "Propagation": "rslave",
    }
    from dataclasses import asdict  # noqa: PLC0415

    assert MountPoint.from_json(json.loads(json.dumps(asdict(mount)))) == mount
    (bind,) = mounts_of((MountPoint("bind", "/h", "/c"),))
    assert bind.to_docker()["Propagation"] == "rprivate"
    assert "Name" not in bind.to_docker() and "Driver" not in bind.to_docker()


def test_filters() -> None:
    records = [
        VolumeRecord("web-data", "t", "/m", labels={"app": "web"}),
        VolumeRecord("db", "t", "/m", labels={"app": "db", "tier": "1"}),
        VolumeRecord("cache", "t", "/m"),
    ]

    def kept(*texts: str) -> list[str]:
        filters = parse_filters(texts, VOLUME_KEYS)
        return [r.name for r in filter_volumes(records, filters, used={"db"})]

    assert kept() == ["web-data", "db", "cache"]
    assert kept("name=a") == ["web-data", "cache"]
    assert kept("name=^d") == ["db"]  # docker's names are regular expressions
    assert kept("label=app") == ["web-data", "db"]
    assert kept("label=app=db") == ["db"]
    assert kept("label=app", "label=tier") == ["db"]  # docker: every label filter matches
    assert kept("label=app=web", "label=tier") == []
    assert kept("dangling=true") == ["web-data", "cache"]
    assert kept("dangling=false", "name=d") == ["db"]
    assert kept("driver=local", "name=web", "name=cache") == ["web-data", "cache"]
    for bad in ("color=red", "name", "dangling=maybe"):
        with pytest.raises(UsageError):
            kept(bad)


def test_volume_options() -> None:
    assert parse_volume_options(["o=uid=1000,gid=1000"]) == {"o": "uid=1000,gid=1000"}
    assert parse_volume_options([]) == {}
    for bad in (["type=tmpfs"], ["device=/dev/sda"], ["o=size=1m"], ["o"]):
        with pytest.raises(UsageError):
            parse_volume_options(bad)


# ---- the store ------------------------------------------------------------------------------


def test_store_create_get_list_forget(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path / "volumes")
    assert store.all() == [] and store.names() == set()
    record = store.create("data", labels={"a": "b"}, options={"o": "uid=1"})
    assert record.mountpoint == str(tmp_path / "volumes" / "data" / "_data")
    assert store.data("data").is_dir() and (store.dir("data").stat().st_mode & 0o777) == 0o700
    assert store.get("data") == record
    document = volume_report(record).to_docker()
    assert document["Labels"] == {"a": "b"} and document["Scope"] == "local"
    with pytest.raises(ConflictError):
        store.create("data")
    store.create("anon", anonymous=True)
    assert [r.name for r in store.all()] == ["anon", "data"]
    (store.dir("half")).mkdir()  # being created: no record yet
    assert store.names() == {"anon", "data"}
    store.forget("data")
    assert not store.dir("data").exists()
    with pytest.raises(NotFoundError):
        store.get("data")


# ---- copy-up and jobs -----------------------------------------------------------------------


def test_copyup_merges_layers_top_first(tmp_path: Path) -> None:
    lower, upper, dest = tmp_path / "lower", tmp_path / "upper", tmp_path / "dest"
    for path in (
        lower / "data/sub",
        upper / "data/sub",
        upper / "data/opq",
        lower / "data/opq",
        dest,
    ):
        path.mkdir(parents=True)
    (lower / "data/a").write_text("lower a")
    (lower / "data/b").write_text("lower b")
    (upper / "data/a").write_text("upper a")
    (lower / "data/sub/deep").write_text("deep")
    (lower / "data/opq/hidden").write_text("hidden")
    (upper / "data/opq/shown").write_text("shown")
    os.setxattr(upper / "data/opq", "user.overlay.opaque", b"y")
    os.symlink("a", upper / "data/link")
    os.mknod(upper / "data/b", 0o020000 | 0o600, os.makedev(0, 0))  # whiteout of b
    os.chmod(upper / "data", 0o750)
    report = copyup_job([str(upper), str(lower)], "/data", str(dest))
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
    assert files == ["a", "link", "opq", "opq/shown", "sub", "sub/deep"]
    assert (dest / "a").read_text() == "upper a" and os.readlink(dest / "link") == "a"
    assert (dest.stat().st_mode & 0o777) == 0o750  # the volume takes the directory's mode
    assert report["copied"] == 6
    # A volume with files is left alone; a path the image lacks copies nothing.
    assert copyup_job([str(upper)], "/data", str(dest))["skipped"] == "not empty"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert copyup_job([str(upper), str(lower)], "/nope", str(empty))["copied"] == 0


def test_jobs_encode() -> None:
    jobs = [
        VolumeJob("chown", "/p", uid=33, gid=44),
        VolumeJob("copyup", "/d", layers=("/l",), dest="/v", uid_map=((0, 1, 1000),)),
    ]
    assert json.loads(encode_jobs(jobs))[1] == {
        "op": "copyup",
        "path": "/d",
        "uid": 0,
        "gid": 0,
        "layers": ["/l"],
        "dest": "/v",
        "uid_map": [[0, 1, 1000]],
        "gid_map": [],
    }


def test_map_id_moves_ids_through_a_nested_namespace_s_maps() -> None:
    # keep-id for uid 1000 in a namespace of 65537 IDs: nested 0..999 -> 1..1000,
    # 1000 -> 0, 1001.. -> 1001.. (uidmap.mapping.nest_keep_id).
    keep_id = ((0, 1, 1000), (1000, 0, 1), (1001, 1001, 64536))
    assert [map_id(keep_id, n) for n in (0, 33, 999, 1000, 1001, 65536)] == [
        1,
        34,
        1000,
        0,
        1001,
        65536,
    ]
    assert map_id(keep_id, 70000) == 70000  # not covered: left as it is
    assert map_id((), 5) == 5  # no maps: the same namespace


# ---- the --rm stop hook -----------------------------------------------------------------------


def _container(root: Path, cid: str, *, auto_remove: bool, mounts: list[dict[str, Any]]) -> Path:
    directory = root / cid
    directory.mkdir(parents=True)
    (directory / "container.json").write_text(
        json.dumps({"id": cid, "auto_remove": auto_remove, "mounts": mounts})
    )
    return directory


def test_doomed_volumes_of_an_rm_container(tmp_path: Path) -> None:
    anon = {
        "type": "volume",
        "source": f"{VOLS}/x/_data",
        "destination": "/a",
        "name": "x",
        "anonymous": True,
    }
    shared = {**anon, "source": f"{VOLS}/y/_data", "name": "y"}
    named = {**anon, "source": f"{VOLS}/n/_data", "name": "n", "anonymous": False}
    one = _container(tmp_path, "one", auto_remove=True, mounts=[anon, shared, named])
    _container(tmp_path, "two", auto_remove=False, mounts=[{**shared, "anonymous": False}])
    kept = _container(tmp_path, "three", auto_remove=False, mounts=[anon])
    assert doomed_volumes(one) == []  # x is also three's, y two's, n is named
    (kept / "container.json").unlink()
    assert doomed_volumes(one) == [f"{VOLS}/x"]
    assert doomed_volumes(tmp_path / "two") == []  # not --rm
    assert doomed_volumes(tmp_path / "gone") == []


def test_the_rm_unit_removes_anonymous_volumes_before_the_record_goes() -> None:
    from rootless.containers.record import ContainerRecord  # noqa: PLC0415
    from rootless.containers.spec import ContainerSpec  # noqa: PLC0415
    from rootless.containers.unitspec import service_spec  # noqa: PLC0415

    anon = MountPoint("volume", f"{VOLS}/x/_data", "/a", name="x", anonymous=True)
    record = ContainerRecord("c" * 64, "c", "sha256:i", "img", ("true",), 0.0, "overlay")
    spec = ContainerSpec(name="c", image_ref="img", image_id="sha256:i", command=("true",))
    launch = Path("/data/containers/c/bundle/launch.json")

    def hooks(rec: ContainerRecord) -> list[str]:
        unit = service_spec(rec, spec, launch, stdio=None)
        return [cmd.argv[cmd.argv.index("-m") + 1] for cmd in unit.exec_stop_post]

    assert hooks(record) == ["rootless.containers.exited"]
    with_volume = ContainerRecord(**{**asdict_record(record), "mounts": (anon,)})
    assert hooks(with_volume) == ["rootless.containers.exited"]  # not --rm: rm -v decides
    doomed = ContainerRecord(**{**asdict_record(with_volume), "auto_remove": True})
    assert hooks(doomed) == ["rootless.volumes.cleanup", "rootless.containers.exited"]


def asdict_record(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


def test_copyup_follows_links_to_the_path_in_the_image_s_root_only(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "srv/data").mkdir(parents=True)
    (lower / "srv/data/seed").write_text("seed")
    (upper / "var/lib").mkdir(parents=True)
    (upper / "var/lib/data").symlink_to("/srv/data")  # VOLUME /var/lib/data, a link
    (upper / "var/run").symlink_to("../srv")  # a link in the middle
    host = tmp_path / "host-secret"
    host.mkdir()
    (host / "key").write_text("secret")
    (upper / "escape").symlink_to(host)  # the host's directory: not the image's
    (upper / "up").symlink_to("../../../" + str(host).lstrip("/"))
    layers = [str(upper), str(lower)]
    for path in ("/var/lib/data", "/var/run/data"):
        dest = tmp_path / f"dest{path.replace('/', '-')}"
        dest.mkdir()
        assert copyup_job(layers, path, str(dest))["copied"] == 1
        assert (dest / "seed").read_text() == "seed"
    for path in ("/escape", "/up"):
        dest = tmp_path / f"dest{path.replace('/', '-')}"
        dest.mkdir()
        assert copyup_job(layers, path, str(dest))["skipped"] == "not in the image"
        assert list(dest.iterdir()) == []


class NoRemovals:
    """A ContainerRemover for tests that remove no container."""

    def remove_container(self, ref: str) -> None:
        raise AssertionError(f"removed {ref}")


def test_prune_filters(tmp_path: Path) -> None:
    jobs: list[VolumeJob] = []
    service = VolumeService(tmp_path, jobs.extend, contextlib.nullcontext, NoRemovals())
    service.create("keep", {"keep": "1"})
    service.create("web", {"app": "web"})
    service.create("plain")
    with pytest.raises(UsageError, match="invalid filter 'until'"):
        service.prune(["until=1h"])
    assert service.prune(["label!=keep"]) == ["plain", "web"]
    assert service.prune(["label=keep=2"]) == []
    assert service.prune() == ["keep"]
