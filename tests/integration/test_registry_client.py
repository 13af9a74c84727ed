"""The registry client against the test host's real registry (distribution, plain http).

The images are the ones tests/host/recipe/images.py writes and seed.sh pushes with skopeo:
busybox and httpd as Docker schema 2, the others as OCI, multiarch as an OCI index.
127.0.0.1 is loopback, so the client is insecure by default and falls back to http after
its TLS probe fails, which these tests go through too.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rctlbase.errors import NotFoundError
from rootless.images.registry import (
    MEDIA_DOCKER_MANIFEST,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
    RegistryClient,
)

REGISTRY = "127.0.0.1:5000"


@pytest.fixture(scope="module")
def client() -> Iterator[RegistryClient]:
    with RegistryClient(REGISTRY) as c:
        yield c


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def fetch(client: RegistryClient, repo: str, descriptor: dict[str, object]) -> bytes:
    out = io.BytesIO()
    client.fetch_blob(repo, str(descriptor["digest"]), int(str(descriptor["size"])), out)
    return out.getvalue()


def test_busybox_is_docker_schema_2(client: RegistryClient, tmp_path: Path) -> None:
    got = client.get_manifest("test/busybox", "latest")
    assert got.media_type == MEDIA_DOCKER_MANIFEST
    assert got.digest == sha256(got.data)
    manifest = json.loads(got.data)
    assert manifest["mediaType"] == MEDIA_DOCKER_MANIFEST

    config = json.loads(fetch(client, "test/busybox", manifest["config"]))
    assert config["architecture"] == "amd64"
    assert config["config"]["Cmd"] == ["sh"]

    layer = manifest["layers"][0]
    seen: list[int] = []
    path = tmp_path / "layer"
    with path.open("wb") as out:
        client.fetch_blob("test/busybox", layer["digest"], layer["size"], out, progress=seen.append)
    data = path.read_bytes()
    assert len(data) == layer["size"] == seen[-1]
    assert sha256(data) == layer["digest"]
    with tarfile.open(path, "r:gz") as tar:
        assert "bin/busybox" in tar.getnames()

    head = client.head_manifest("test/busybox", "latest")
    assert (head.digest, head.media_type, head.size) == (got.digest, got.media_type, len(got.data))


def test_layered_is_oci_and_fetchable_by_digest(client: RegistryClient) -> None:
    got = client.get_manifest("test/layered", "latest")
    assert got.media_type == MEDIA_OCI_MANIFEST
    manifest = json.loads(got.data)
    assert len(manifest["layers"]) == 4
    config = json.loads(fetch(client, "test/layered", manifest["config"]))
    assert config["config"]["Labels"] == {"rctl.test": "layered"}
    assert len(config["rootfs"]["diff_ids"]) == 4
    top = fetch(client, "test/layered", manifest["layers"][-1])
    assert (
        "sha256:" + hashlib.sha256(gzip.decompress(top)).hexdigest()
        == config["rootfs"]["diff_ids"][-1]
    )
    assert client.get_manifest("test/layered", got.digest) == got


def test_resume_uses_a_range_request(client: RegistryClient, tmp_path: Path) -> None:
    layer = json.loads(client.get_manifest("test/busybox", "latest").data)["layers"][0]
    whole = fetch(client, "test/busybox", layer)
    half = len(whole) // 2
    path = tmp_path / "partial"
    path.write_bytes(whole[:half])
    seen: list[int] = []
    with path.open("a+b") as out:
        client.fetch_blob(
            "test/busybox", layer["digest"], layer["size"], out, offset=half, progress=seen.append
        )
    assert path.read_bytes() == whole
    assert seen[0] == half  # a 200 would have started over from 0


def test_multiarch_index(client: RegistryClient) -> None:
    got = client.get_manifest("test/multiarch", "latest")
    assert got.media_type == MEDIA_OCI_INDEX
    entries = json.loads(got.data)["manifests"]
    platforms = {(e["platform"]["architecture"], e["platform"].get("variant", "")) for e in entries}
    assert platforms == {("amd64", ""), ("arm64", "v8")}
    arm = next(e for e in entries if e["platform"]["architecture"] == "arm64")
    image = client.get_manifest("test/multiarch", arm["digest"])
    assert image.digest == arm["digest"]
    assert image.media_type == MEDIA_OCI_MANIFEST
    marker = fetch(client, "test/multiarch", json.loads(image.data)["layers"][-1])
    with tarfile.open(fileobj=io.BytesIO(marker), mode="r:gz") as tar:
        member = tar.extractfile("arch")
        assert member is not None
        assert member.read() == b"arm64\n"


def test_tags(client: RegistryClient) -> None:
    assert client.list_tags("test/busybox") == ["latest"]


def test_missing_image(client: RegistryClient) -> None:
    with pytest.raises(NotFoundError) as info:
        client.get_manifest("test/nope", "latest")
    assert info.value.message == "image not found: 127.0.0.1:5000/test/nope:latest"


def test_push_then_pull_back(client: RegistryClient) -> None:
    repo = f"test/pushed-{uuid.uuid4().hex[:12]}"
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"hello\n"))
    layer = gzip.compress(tar_bytes.getvalue(), mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["cat", "/hello.txt"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256(tar_bytes.getvalue())]},
        }
    ).encode()
    for blob in (config, layer):
        assert not client.blob_exists(repo, sha256(blob))
        client.upload_blob(repo, sha256(blob), len(blob), io.BytesIO(blob))
        assert client.blob_exists(repo, sha256(blob))
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    assert client.put_manifest(repo, "latest", manifest, MEDIA_OCI_MANIFEST) == sha256(manifest)

    with RegistryClient(REGISTRY) as fresh:  # nothing cached from the push
        got = fresh.get_manifest(repo, "latest")
        assert (got.data, got.media_type, got.digest) == (
            manifest,
            MEDIA_OCI_MANIFEST,
            sha256(manifest),
        )
        assert fresh.list_tags(repo) == ["latest"]
        pulled = json.loads(got.data)
        assert fetch(fresh, repo, pulled["layers"][0]) == layer
        assert fetch(fresh, repo, pulled["config"]) == config
