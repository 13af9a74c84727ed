"""Tar streams for fuzzing: layers built from hypothesis-chosen headers, and docker/OCI
archives (``rctl load``) built around one such layer."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass

from hypothesis import strategies as st

NAMES = st.lists(st.sampled_from(["a", "b", "..", ".", "", "dev", ".wh.a", ".wh..wh..opq",
                                  "x" * 120, "é", "\n"]), min_size=1, max_size=4).map("/".join)  # fmt: skip
TYPES = [tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
         tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE, b"V", b"Z"]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    kind: bytes
    linkname: str = ""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    data: bytes = b""
    mtime: float = 0
    pax: tuple[tuple[str, str], ...] = ()


ENTRIES = st.builds(
    Entry,
    name=NAMES,
    kind=st.sampled_from(TYPES),
    linkname=NAMES | st.just("/etc/passwd"),
    mode=st.integers(0, 0o7777) | st.sampled_from([0o4755, 0o177777]),
    uid=st.integers(0, 70000) | st.sampled_from([2**21 - 1, 65534, 4294967294]),
    gid=st.integers(0, 70000),
    data=st.binary(max_size=40),
    mtime=st.floats(-1e12, 1e12, allow_nan=False) | st.sampled_from([0.0, 2.0**33]),
    pax=st.lists(st.tuples(st.sampled_from(["SCHILY.xattr.user.a", "SCHILY.xattr.security.capability",
                                            "path", "linkpath", "size", "uid", "mtime", "x"]),
                           st.text(max_size=12)), max_size=2).map(tuple),
)  # fmt: skip


def build_tar(entries: Iterable[Entry]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type, info.linkname, info.mode = e.kind, e.linkname, e.mode
            info.uid, info.gid, info.mtime = e.uid, e.gid, e.mtime
            info.pax_headers = dict(e.pax)
            data = e.data if e.kind in (tarfile.REGTYPE, tarfile.AREGTYPE) else b""
            info.size = len(data)
            try:
                tar.addfile(info, io.BytesIO(data) if data else None)
            except (ValueError, OverflowError, UnicodeError):
                continue  # a header tarfile itself can't write: not an input to test
    return out.getvalue()


def sample_layer() -> bytes:
    return build_tar([Entry("etc", tarfile.DIRTYPE, mode=0o755),
                      Entry("etc/hostname", tarfile.REGTYPE, data=b"fuzz\n"),
                      Entry("bin/sh", tarfile.SYMTYPE, linkname="busybox")])  # fmt: skip


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_for(layer: bytes) -> dict[str, object]:
    return {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]}}  # fmt: skip


def docker_members(layer: bytes) -> dict[str, bytes]:
    """``docker save``'s layout: manifest.json, the config and each layer by name."""
    config = json.dumps(config_for(layer)).encode()
    name = sha256(config)[7:]
    manifest = [{"Config": f"{name}.json", "RepoTags": ["fuzz/img:latest"],
                 "Layers": [f"{sha256(layer)[7:]}/layer.tar"]}]  # fmt: skip
    return {"manifest.json": json.dumps(manifest).encode(), f"{name}.json": config,
            f"{sha256(layer)[7:]}/layer.tar": layer}  # fmt: skip


def oci_members(layer: bytes) -> dict[str, bytes]:
    """An OCI image layout: index.json, oci-layout and blobs/sha256/."""
    config = json.dumps(config_for(layer)).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256(layer), "size": len(layer)}],
    }).encode()  # fmt: skip
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": sha256(manifest), "size": len(manifest),
                            "annotations": {"io.containerd.image.name": "fuzz/img:latest"}}]}  # fmt: skip
    blobs = {f"blobs/sha256/{sha256(b)[7:]}": b for b in (config, manifest, layer)}
    return {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}',
            "index.json": json.dumps(index).encode(), **blobs}  # fmt: skip


def pack(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
