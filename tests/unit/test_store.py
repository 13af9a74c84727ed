"""Store bookkeeping: chain IDs, image lookup, tags moving between images."""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rctlbase.errors import ConflictError, NotFoundError, UsageError
from rootless.images.service import ImageService
from rootless.images.store import (
    CorruptStoreError,
    ImageRecord,
    LayerRecord,
    Store,
    chain_ids,
    digest_hex,
    find_image,
)

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


def good_index() -> dict[str, Any]:
    doc = {"version": 1, "images": [image("sha256:" + "1" * 64, "r/a:1").to_json()]}
    return json.loads(json.dumps(doc))  # type: ignore[no-any-return]


def corrupted(change: Callable[[dict[str, Any]], object]) -> bytes:
    doc = good_index()
    replaced = change(doc)
    return json.dumps(doc if replaced is None else replaced).encode()


def set_in(path: tuple[str | int, ...], value: object) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        node: Any = doc
        for key in path[:-1]:
            node = node[key]
        if value is DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value

    return change


DELETE = object()
IMG = ("images", 0)
LAYER = ("images", 0, "layers", 0)
CORRUPT_INDEXES = {
    "empty": b"",
    "truncated": json.dumps(good_index()).encode()[:-7],
    "not utf-8": b"\xff\xfe{}",
    "deeply nested": b"[" * 100_000,
    "huge integer": b'{"images": [], "n": ' + b"9" * 5000 + b"}",
    "a list": b"[]",
    "images not a list": corrupted(set_in(("images",), {"a": 1})),
    "image not an object": corrupted(set_in(("images", 0), "sha256:00")),
    "no id": corrupted(set_in((*IMG, "id"), DELETE)),
    "id not a string": corrupted(set_in((*IMG, "id"), 7)),
    "id not a digest": corrupted(set_in((*IMG, "id"), "../../etc")),
    "no layers": corrupted(set_in((*IMG, "layers"), DELETE)),
    "layers an object": corrupted(set_in((*IMG, "layers"), {})),
    "layer a string": corrupted(set_in((*IMG, "layers", 0), "x")),
    "layer lacks chain_id": corrupted(set_in((*LAYER, "chain_id"), DELETE)),
    "chain_id escapes": corrupted(set_in((*LAYER, "chain_id"), "sha256:../../../x")),
    "size a string": corrupted(set_in((*LAYER, "size"), "10")),
    "size a boolean": corrupted(set_in((*LAYER, "size"), True)),
    "names a string": corrupted(set_in((*IMG, "names"), "r/a:1")),
    "names hold a number": corrupted(set_in((*IMG, "names"), [1])),
    "pulled a string": corrupted(set_in((*IMG, "pulled"), "now")),
}


@pytest.mark.parametrize("content", CORRUPT_INDEXES.values(), ids=CORRUPT_INDEXES.keys())
def test_a_corrupt_index_is_one_error_and_stays_as_it_was(tmp_path: Path, content: bytes) -> None:
    store = Store(tmp_path / "rctl")
    store.ensure()
    store.index.write_bytes(content)
    with pytest.raises(CorruptStoreError, match=r"image index .* is corrupt") as info:
        store.load_images()
    assert info.value.hint and "move it aside" in info.value.hint
    with pytest.raises(CorruptStoreError):
        store.add_image(image("sha256:" + "2" * 64), "r/b:1", None)
    images = ImageService(store, (), lambda _jobs: None)
    with pytest.raises(CorruptStoreError):
        images.remove(["r/a:1"])
    with pytest.raises(CorruptStoreError):
        images.prune(all_images=True)
    assert store.index.read_bytes() == content


def test_unknown_fields_are_ignored_and_records_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "rctl")
    store.ensure()
    doc = good_index()
    doc["images"][0]["future"] = {"x": 1}
    doc["images"][0]["layers"][0]["future"] = 1
    store.index.write_text(json.dumps(doc))
    [record] = store.load_images().values()
    assert record.names == ("r/a:1",) and record.layers[0].size == 10
