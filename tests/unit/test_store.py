"""Store bookkeeping: chain IDs, image lookup, tags moving between images."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from rctlbase.errors import ConflictError, NotFoundError, UsageError
from rootless.images.store import ImageRecord, LayerRecord, Store, chain_ids, digest_hex, find_image

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def test_chain_ids_follow_the_image_spec() -> None:
    second = "sha256:" + hashlib.sha256(f"{A} {B}".encode()).hexdigest()
    assert chain_ids([A, B]) == [A, second]
    assert chain_ids([]) == []


def test_digest_hex_refuses_other_algorithms() -> None:
    assert digest_hex(A) == "a" * 64
    with pytest.raises(UsageError):
        digest_hex("md5:abc")


def image(image_id: str, *names: str) -> ImageRecord:
    layer = LayerRecord(A, A, A, 10, "application/vnd.oci.image.layer.v1.tar")
    return ImageRecord(
        id=image_id, manifest_digest=B, manifest_media_type="m", layers=(layer,), names=names
    )


def test_a_tag_moves_and_the_old_image_dangles(tmp_path: Path) -> None:
    store = Store(tmp_path / "rctl")
    first = "sha256:" + "1" * 64
    second = "sha256:" + "2" * 64
    store.add_image(image(first), "docker.io/library/x:latest", None)
    store.add_image(image(second), "docker.io/library/x:latest", None)
    images = store.load_images()
    assert images[first].names == ()
    assert images[second].names == ("docker.io/library/x:latest",)
    assert stat.S_IMODE((tmp_path / "rctl/images.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "rctl/blobs").stat().st_mode) == 0o700


def test_find_by_id_prefix_name_or_candidate() -> None:
    one = "sha256:123" + "0" * 61
    two = "sha256:123" + "1" * 61
    images = {one: image(one, "r/a:1"), two: image(two, "r/b:1")}
    assert find_image(images, "1230", []).id == one
    assert find_image(images, "r/b:1", []).id == two
    assert find_image(images, "b", ["r/b:1"]).id == two
    with pytest.raises(ConflictError, match="ambiguous"):
        find_image(images, "123", [])
    with pytest.raises(NotFoundError):
        find_image(images, "12", [])  # too short to be an ID prefix, and not a name
