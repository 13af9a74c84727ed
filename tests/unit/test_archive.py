"""``rctl load`` of docker-archives and oci-archives: good ones load, and a corpus of hostile
or broken ones each fails with one rctl error (a line and a hint) and leaves the store as
it was."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rctlbase.errors import RctlError
from rootless.images.archive import ArchiveError, import_rootfs
from rootless.images.archiveload import load
from rootless.images.store import Store

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_TAR = "application/vnd.oci.image.layer.v1.tar"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(name: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    return buf.getvalue()


LAYERS = [layer_tar("a"), layer_tar("b")]


def config_of(diff_ids: list[str]) -> bytes:
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    return json.dumps(doc).encode()


@dataclass
class Member:
    data: bytes = b""
    link: str | None = None  # a symbolic link to this
    hardlink: str | None = None
    size: int | None = None  # declared size, when it lies


@dataclass
class Archive:
    members: dict[str, Member] = field(default_factory=dict)

    def put(self, name: str, data: bytes | dict[str, Any] | list[Any]) -> None:
        raw = data if isinstance(data, bytes) else json.dumps(data).encode()
        self.members[name] = Member(raw)

    def tar(self) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, member in self.members.items():
                info = tarfile.TarInfo(name)
                if member.link is not None:
                    info.type, info.linkname = tarfile.SYMTYPE, member.link
                    tar.addfile(info)
                elif member.hardlink is not None:
                    info.type, info.linkname = tarfile.LNKTYPE, member.hardlink
                    tar.addfile(info)
                else:
                    info.size = len(member.data)
                    tar.addfile(info, io.BytesIO(member.data))
        data = buf.getvalue()
        for name, member in self.members.items():
            if member.size is not None:  # a header that claims more than what follows
                honest = data.rstrip(b"\0")
                honest += bytes(-len(honest) % 512)
                header = tarfile.TarInfo(name)
                header.size = member.size
                data = honest + header.tobuf(tarfile.GNU_FORMAT) + member.data
        return data


def docker_archive() -> Archive:
    diff_ids = [sha256(layer) for layer in LAYERS]
    config = config_of(diff_ids)
    archive = Archive()
    archive.put(f"{sha256(config)[7:]}.json", config)
    for i, layer in enumerate(LAYERS):
        archive.put(f"l{i}/layer.tar", layer)
    archive.put(
        "manifest.json",
        [
            {
                "Config": f"{sha256(config)[7:]}.json",
                "RepoTags": ["r/x:1"],
                "Layers": ["l0/layer.tar", "l1/layer.tar"],
            }
        ],
    )
    return archive


def docker_manifest(archive: Archive) -> list[dict[str, Any]]:
    return json.loads(archive.members["manifest.json"].data)  # type: ignore[no-any-return]


def oci_archive() -> Archive:
    diff_ids = [sha256(layer) for layer in LAYERS]
    config = config_of(diff_ids)
    archive = Archive()
    archive.put("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    for blob in [config, *LAYERS]:
        archive.put(f"blobs/sha256/{sha256(blob)[7:]}", blob)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [
                {"mediaType": OCI_TAR, "digest": sha256(layer), "size": len(layer)}
                for layer in LAYERS
            ],
        }
    ).encode()
    archive.put(f"blobs/sha256/{sha256(manifest)[7:]}", manifest)
    archive.put(
        "index.json",
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": sha256(manifest),
                    "size": len(manifest),
                    "annotations": {"io.containerd.image.name": "r/x:1"},
                }
            ],
        },
    )
    return archive


def oci_doc(archive: Archive, kind: str) -> tuple[str, dict[str, Any]]:
    """The name and JSON of the index, the manifest or the config of an oci archive."""
    index = json.loads(archive.members["index.json"].data)
    if kind == "index":
        return "index.json", index
    name = f"blobs/sha256/{index['manifests'][0]['digest'][7:]}"
    manifest = json.loads(archive.members[name].data)
    if kind == "manifest":
        return name, manifest
    name = f"blobs/sha256/{manifest['config']['digest'][7:]}"
    return name, json.loads(archive.members[name].data)


def snapshot(store: Store) -> dict[str, bytes]:
    return {
        str(p.relative_to(store.root)): p.read_bytes()
        for p in sorted(store.root.rglob("*"))
        if p.is_file() and p.name != "store.lock"
    }


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "rctl")
    store.ensure()
    return store


def test_a_docker_archive_loads_with_a_linked_repeated_layer(store: Store) -> None:
    archive = docker_archive()
    entry = docker_manifest(archive)
    entry[0]["Layers"] = ["l0/layer.tar", "l1/layer.tar", "l2/layer.tar"]
    archive.put("manifest.json", entry)
    archive.members["l2/layer.tar"] = Member(link="../l0/layer.tar")
    diff_ids = [sha256(LAYERS[0]), sha256(LAYERS[1]), sha256(LAYERS[0])]
    config = config_of(diff_ids)
    archive.put(entry[0]["Config"], config)
    [image] = load(store, io.BytesIO(archive.tar()))
    assert image.names == ("r/x:1",)
    assert all(store.has_blob(d) for d in diff_ids)
    assert list(store.partial.iterdir()) == []


def test_an_oci_archive_loads(store: Store) -> None:
    [image] = load(store, io.BytesIO(oci_archive().tar()))
    assert image.names == ("r/x:1",)
    assert all(store.has_blob(sha256(layer)) for layer in LAYERS)


# A docker archive's change: edits the archive or manifest.json's entries in place and returns
# None, or returns what replaces manifest.json (a change returning anything else would write
# that as the manifest and test the wrong refusal).
DockerChange = Callable[[Archive, list[dict[str, Any]]], bytes | dict[str, Any] | list[Any] | None]


def mutate_docker(change: DockerChange) -> Callable[[], bytes]:
    def make() -> bytes:
        archive = docker_archive()
        entries = docker_manifest(archive)
        replaced = change(archive, entries)
        if "manifest.json" in archive.members and archive.members["manifest.json"].link is None:
            archive.put("manifest.json", entries if replaced is None else replaced)
        return archive.tar()

    return make


def mutate_oci(kind: str, change: Callable[[dict[str, Any]], object]) -> Callable[[], bytes]:
    """An oci archive whose index, manifest or config is changed (the manifest's and the
    index's digests follow, so only the change is wrong)."""

    def make() -> bytes:
        archive = oci_archive()
        name, doc = oci_doc(archive, kind)
        replaced = change(doc)
        raw = (
            replaced
            if isinstance(replaced, bytes)
            else json.dumps(doc if replaced is None else replaced).encode()
        )
        if kind == "index":
            archive.put(name, raw)
            return archive.tar()
        del archive.members[name]
        archive.put(f"blobs/sha256/{sha256(raw)[7:]}", raw)
        index_name, index = oci_doc(archive, "index")
        manifest_name, manifest = oci_doc(archive, "manifest") if kind == "config" else (name, {})
        if kind == "config":
            manifest["config"]["digest"], manifest["config"]["size"] = sha256(raw), len(raw)
            del archive.members[manifest_name]
            raw = json.dumps(manifest).encode()
            archive.put(f"blobs/sha256/{sha256(raw)[7:]}", raw)
        index["manifests"][0]["digest"], index["manifests"][0]["size"] = sha256(raw), len(raw)
        archive.put(index_name, index)
        return archive.tar()

    return make


def put(key: str, value: object) -> Callable[[Any, list[dict[str, Any]]], None]:
    def change(_archive: Any, entries: list[dict[str, Any]]) -> None:
        entries[0][key] = value

    return change


def drop(key: str) -> Callable[[Any, list[dict[str, Any]]], None]:
    def change(_archive: Any, entries: list[dict[str, Any]]) -> None:
        del entries[0][key]

    return change


def links(*members: tuple[str, str]) -> Callable[[Archive, Any], None]:
    def change(archive: Archive, _entries: Any) -> None:
        for name, target in members:
            archive.members[name] = Member(link=target)

    return change


def member(name: str, value: Member | None) -> Callable[[Archive, Any], None]:
    def change(archive: Archive, _entries: Any) -> None:
        if value is None:
            del archive.members[name]
        else:
            archive.members[name] = value

    return change


def setdoc(path: tuple[str | int, ...], value: object) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        node: Any = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def tampered_manifest() -> bytes:
    archive = oci_archive()
    name, manifest = oci_doc(archive, "manifest")
    manifest["annotations"] = {"x": "y"}
    archive.put(name, manifest)
    return archive.tar()


DOCKER = docker_archive
HOSTILE: dict[str, Callable[[], bytes]] = {
    "not a tar": lambda: b"\x00garbage" * 1000,
    "gzip garbage": lambda: b"\x1f\x8b\x08\x00" + b"\xff" * 100,
    "truncated": lambda: DOCKER().tar()[:1500],
    "empty tar": lambda: Archive().tar(),
    "manifest.json not JSON": mutate_docker(lambda a, e: b"[{"),
    "manifest.json deeply nested": mutate_docker(lambda a, e: b"[" * 100_000),
    "manifest.json an object": mutate_docker(lambda a, e: {"Config": "x"}),
    "manifest.json entry a number": mutate_docker(lambda a, e: [1]),
    "no Config": mutate_docker(drop("Config")),
    "Config a number": mutate_docker(put("Config", 7)),
    "Config missing from the archive": mutate_docker(put("Config", "nope.json")),
    "Config escapes": mutate_docker(put("Config", "../../etc/passwd")),
    "Config absolute": mutate_docker(put("Config", "/etc/passwd")),
    "no Layers": mutate_docker(drop("Layers")),
    "Layers a string": mutate_docker(put("Layers", "l0/layer.tar")),
    "Layers hold a number": mutate_docker(put("Layers", [0, 1])),
    "a layer path with ..": mutate_docker(put("Layers", ["l0/layer.tar", "l0/../l1/layer.tar"])),
    "an absolute layer path": mutate_docker(put("Layers", ["/l0/layer.tar", "l1/layer.tar"])),
    "a layer missing": mutate_docker(member("l1/layer.tar", None)),
    "fewer layers than diff_ids": mutate_docker(put("Layers", ["l0/layer.tar"])),
    "a layer that does not verify": mutate_docker(member("l1/layer.tar", Member(LAYERS[0]))),
    "RepoTags a string": mutate_docker(put("RepoTags", "r/x:1")),
    "RepoTags hold an invalid name": mutate_docker(put("RepoTags", ["UPPER/Case:1"])),
    "config not JSON": mutate_docker(lambda a, e: a.put(e[0]["Config"], b"{")),
    "config with wrong types": mutate_docker(lambda a, e: a.put(e[0]["Config"], {"rootfs": []})),
    "config over 4 MiB": mutate_docker(lambda a, e: a.put(e[0]["Config"], b" " * (5 << 20))),
    "manifest.json over 4 MiB": mutate_docker(lambda a, e: b" " * (5 << 20)),
    "a member with an absolute name": mutate_docker(member("/etc/x", Member(b"x"))),
    "a member with a .. name": mutate_docker(member("../x", Member(b"x"))),
    "a symlink escaping": mutate_docker(member("l1/layer.tar", Member(link="../../../etc/passwd"))),
    "an absolute symlink": mutate_docker(member("l1/layer.tar", Member(link="/etc/passwd"))),
    "a symlink loop": mutate_docker(links(("l1/layer.tar", "x"), ("l1/x", "layer.tar"))),
    "a hard link to nothing": mutate_docker(member("l1/layer.tar", Member(hardlink="nothing"))),
    "a member larger than the archive": mutate_docker(
        member("zz", Member(b"x" * 10, size=1 << 60))
    ),
    "index.json not JSON": mutate_oci("index", lambda d: b"{"),
    "index.json a manifest": mutate_oci("index", setdoc(("mediaType",), OCI_MANIFEST)),
    "index entries not a list": mutate_oci("index", setdoc(("manifests",), {"a": 1})),
    "index entry size a string": mutate_oci("index", setdoc(("manifests", 0, "size"), "1")),
    "index entry digest not a digest": mutate_oci(
        "index", setdoc(("manifests", 0, "digest"), "../x")
    ),
    "index entry with a sha512 digest": mutate_oci(
        "index", setdoc(("manifests", 0, "digest"), "sha512:" + "0" * 128)
    ),
    "index entry names an invalid image": mutate_oci(
        "index", setdoc(("manifests", 0, "annotations"), {"io.containerd.image.name": "a/B C:1"})
    ),
    "index entry digest of a missing manifest": mutate_oci(
        "index", setdoc(("manifests", 0, "digest"), "sha256:" + "0" * 64)
    ),
    "index entry size wrong": mutate_oci("index", setdoc(("manifests", 0, "size"), 3)),
    "manifest not matching its digest": tampered_manifest,
    "manifest layers not a list": mutate_oci("manifest", setdoc(("layers",), "x")),
    "manifest layer size huge": mutate_oci("manifest", setdoc(("layers", 0, "size"), 1 << 62)),
    "manifest layer size beyond any integer": mutate_oci(
        "manifest",
        lambda d: json.dumps(d).replace('"size": 10240', '"size": ' + "9" * 5000, 1).encode(),
    ),
    "manifest layer missing": mutate_oci(
        "manifest", setdoc(("layers", 1, "digest"), "sha256:" + "1" * 64)
    ),
    "manifest an index": mutate_oci(
        "manifest", lambda d: {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    ),
    "config with one diff_id too few": mutate_oci("config", setdoc(("rootfs", "diff_ids"), [])),
    "config diff_ids not digests": mutate_oci("config", setdoc(("rootfs", "diff_ids"), ["x", "y"])),
}


@pytest.mark.parametrize("make", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_archive_is_one_error_and_changes_nothing(
    store: Store, make: Callable[[], bytes]
) -> None:
    before = snapshot(store)
    with pytest.raises(RctlError) as info:
        load(store, io.BytesIO(make()))
    assert "\n" not in info.value.message and info.value.hint
    assert snapshot(store) == before
    assert list(store.partial.iterdir()) == []


def test_a_layer_that_does_not_unpack_leaves_the_store_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pullkit import run_jobs_here  # noqa: PLC0415

    from rootless.config import Paths, Settings  # noqa: PLC0415
    from rootless.engine import Engine  # noqa: PLC0415

    engine = Engine(Paths(tmp_path / "data", tmp_path / "run", tmp_path / "config"), Settings())
    monkeypatch.setattr(engine, "run_layer_jobs", run_jobs_here)
    monkeypatch.setattr(engine.images, "run_jobs", run_jobs_here)
    good = docker_archive()
    engine.load(io.BytesIO(good.tar()))  # an image already there, which stays
    before = snapshot(engine.store)
    # Two images: the first is fine, the second's layer writes outside its directory.
    archive = oci_archive()
    evil = layer_tar("../escape")
    diff_ids = [sha256(LAYERS[0]), sha256(evil)]
    config = config_of(diff_ids)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [
                {"mediaType": OCI_TAR, "digest": d, "size": len(b)}
                for d, b in zip(diff_ids, [LAYERS[0], evil], strict=True)
            ],
        }
    ).encode()
    for blob in (evil, config, manifest):
        archive.put(f"blobs/sha256/{sha256(blob)[7:]}", blob)
    _, index = oci_doc(archive, "index")
    index["manifests"].append(
        {"mediaType": OCI_MANIFEST, "digest": sha256(manifest), "size": len(manifest)}
    )
    index["manifests"][0]["annotations"] = {"io.containerd.image.name": "r/other:1"}
    archive.put("index.json", index)
    with pytest.raises(RctlError, match="unsafe layer"):
        engine.load(io.BytesIO(archive.tar()))
    assert snapshot(engine.store) == before
    assert [p.name for p in engine.store.layers.iterdir() if p.name.startswith(".tmp-")] == []


@pytest.mark.parametrize(
    "data",
    [
        b"\x1f\x8b\x08\x00garbage" * 10,
        gzip.compress(layer_tar("a"))[:-20],
        b"\x28\xb5\x2f\xfd" + b"\xff" * 100,
        b"",
        b"not a tar at all" * 100,
    ],
)
def test_import_of_a_damaged_tarball_is_one_error(store: Store, data: bytes) -> None:
    before = snapshot(store)
    with pytest.raises(ArchiveError):
        import_rootfs(store, io.BytesIO(data), [], "amd64", "2026-01-01T00:00:00Z")
    assert snapshot(store) == before


@pytest.mark.parametrize(
    ("case", "refusal"),
    [
        ("no Config", "manifest.json entry 0 names no 'Config'"),
        ("no Layers", "'Layers' and 'RepoTags' must be lists of strings"),
        ("a symlink loop", "too many links"),
    ],
)
def test_a_hostile_docker_archive_reaches_the_refusal_it_names(
    store: Store, case: str, refusal: str
) -> None:
    # Each case must break what its name says, not manifest.json as a whole.
    with pytest.raises(RctlError, match=re.escape(refusal)):
        load(store, io.BytesIO(HOSTILE[case]()))
