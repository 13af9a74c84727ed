"""Pulls end to end against the in-process fake registry (helpers in pullkit.py): bounded
memory for compression bombs, blobs listed twice, torn blobs, and the store's lock held only
while committing, not while downloading."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
import zstandard
from fakeregistry import FakeRegistry
from pullkit import OCI_GZIP, OCI_ZSTD, Layer, add_image, gzip_layer, pull, run_jobs_here

from rootless.images.registry import TruncatedBlobError
from rootless.images.service import ImageService
from rootless.images.store import Store

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
GIB = 1 << 30
MAX_RSS = 100 << 20


@pytest.fixture
def reg() -> Iterator[FakeRegistry]:
    with FakeRegistry() as registry:
        yield registry


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "no-auth.json"))
    return Store(tmp_path / "rctl")


@functools.cache
def zeros_layer(compression: str) -> Layer:
    """1 GiB of zeros (an empty tar: zero blocks end it), compressed about 1000-fold."""
    zero = bytes(1 << 20)
    digest = hashlib.sha256()
    if compression == "gzip":
        # Run-length matching finds deflate's longest matches as fast as level 1.
        deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS, 9, zlib.Z_RLE)
        parts = []
        for _ in range(GIB // len(zero)):
            digest.update(zero)
            parts.append(deflate.compress(zero))
        parts.append(deflate.flush())
        return Layer(b"".join(parts), "sha256:" + digest.hexdigest(), OCI_GZIP)
    chunker = zstandard.ZstdCompressor(level=3).chunker(size=GIB)
    parts = []
    for _ in range(GIB // len(zero)):
        digest.update(zero)
        parts.extend(chunker.compress(zero))
    # zstandard's stub declares finish() without annotations.
    parts.extend(chunker.finish())  # type: ignore[no-untyped-call]
    return Layer(b"".join(parts), "sha256:" + digest.hexdigest(), OCI_ZSTD)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_a_compression_bomb_pulls_in_bounded_memory(
    reg: FakeRegistry, tmp_path: Path, compression: str
) -> None:
    layer = zeros_layer(compression)
    assert len(layer.blob) < 2 << 20
    image_id = add_image(reg, "test/bomb", [layer])
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{HERE}",
        "REGISTRY_AUTH_FILE": str(tmp_path / "no-auth.json"),
    }
    child = subprocess.run(
        [sys.executable, str(HERE / "pullkit.py"), str(tmp_path / "rctl"), f"{reg.host}/test/bomb"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    assert report["id"] == image_id
    assert report["maxrss_kib"] * 1024 < MAX_RSS, report


def test_a_blob_listed_twice_is_downloaded_once(reg: FakeRegistry, store: Store) -> None:
    twice = gzip_layer({"big": os.urandom(3 << 20)})
    other = gzip_layer({"other": b"x"})
    add_image(reg, "test/twice", [twice, other, twice, twice])
    record = pull(store, f"{reg.host}/test/twice")
    digest = hashlib.sha256(twice.blob).hexdigest()
    assert len(reg.seen("GET", f"blobs/sha256:{digest}")) == 1
    assert len({layer.chain_id for layer in record.layers}) == 4
    assert all(store.has_layer(layer.chain_id) for layer in record.layers)
    assert (store.layer_dir(record.layers[2].chain_id) / "diff/big").stat().st_size == 3 << 20
    assert list(store.partial.iterdir()) == [] and list(store.verified.iterdir()) == []


@pytest.mark.parametrize("damage", ["truncate", "zero-fill"])
def test_a_torn_blob_is_fetched_again(reg: FakeRegistry, store: Store, damage: str) -> None:
    layer = gzip_layer({"file": os.urandom(200_000)})
    add_image(reg, "test/torn", [layer])
    record = pull(store, f"{reg.host}/test/torn")
    # As after a crash: the layer was not unpacked yet and the blob was not fsynced.
    run_jobs_here([])
    os.rename(store.layer_dir(record.layers[0].chain_id), store.layers / ".tmp-crashed")
    blob = store.blob_path(record.layers[0].digest)
    size = blob.stat().st_size
    with open(blob, "r+b") as fh:
        if damage == "truncate":
            fh.truncate(size // 2)
        else:
            fh.seek(size // 2)
            fh.write(bytes(size - size // 2))
    pull(store, f"{reg.host}/test/torn")
    assert blob.read_bytes() == layer.blob
    assert store.has_layer(record.layers[0].chain_id)
    assert not (store.layers / ".tmp-crashed").exists()


def test_a_slow_download_does_not_hold_the_store_lock(reg: FakeRegistry, store: Store) -> None:
    add_image(reg, "test/local", [gzip_layer({"a": b"a"})])
    pull(store, f"{reg.host}/test/local")
    slow = gzip_layer({"b": b"b"})
    add_image(reg, "test/slow", [slow])
    digest = "sha256:" + hashlib.sha256(slow.blob).hexdigest()
    gate = reg.held[digest] = threading.Event()
    failures: list[BaseException] = []

    def slow_pull() -> None:
        try:
            pull(store, f"{reg.host}/test/slow")
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    puller = threading.Thread(target=slow_pull)
    puller.start()
    try:
        deadline = time.monotonic() + 10
        while not reg.seen("GET", digest) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reg.seen("GET", digest), "the slow pull never asked for its layer"
        # Another command that changes the store: tagging a local image.
        tagged: list[str] = []
        images = ImageService(store, (), run_jobs_here)
        tagger = threading.Thread(
            target=lambda: tagged.append(images.tag(f"{reg.host}/test/local", "x/y:z"))
        )
        tagger.start()
        tagger.join(30)  # the download is held until the end: a wait for it never ends
        assert tagged == ["docker.io/x/y:z"], "tagging waited for the download"
        fd = os.open(store.root / "store.lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    finally:
        gate.set()
        puller.join(30)
    assert not failures
    assert {f"{reg.host}/test/slow:latest", "docker.io/x/y:z"} <= {
        name for image in store.load_images().values() for name in image.names
    }


def test_concurrent_pulls_of_one_image_share_its_blobs(reg: FakeRegistry, store: Store) -> None:
    layers = [gzip_layer({f"f{i}": os.urandom(1 << 20)}) for i in range(3)]
    image_id = add_image(reg, "test/same", layers)
    results: list[str] = []

    def one() -> None:
        results.append(pull(store, f"{reg.host}/test/same").id)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [image_id] * 3
    assert list(store.partial.iterdir()) == [] and list(store.verified.iterdir()) == []
    for layer in layers:
        digest = "sha256:" + hashlib.sha256(layer.blob).hexdigest()
        assert store.blob_path(digest).is_file()
        assert len(reg.seen("GET", f"blobs/{digest}")) == 1  # the others waited for it


def test_a_download_committed_by_another_pull_meanwhile_is_not_fetched_again(
    reg: FakeRegistry, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another pull's download waits in blobs/verified and that pull commits it (moves it
    into the blob store) just after this one, holding the download's lock, asked whether
    the blob store has it: the download must still be seen, wherever it went."""
    layer = gzip_layer({"f": os.urandom(100_000)})
    add_image(reg, "test/moved", [layer])
    digest = "sha256:" + hashlib.sha256(layer.blob).hexdigest()
    store.ensure()
    store.verified_path(digest).write_bytes(layer.blob)
    claim_partial, has_blob = store.claim_partial, store.has_blob
    claimed = threading.Event()

    @contextlib.contextmanager
    def claim(wanted: str) -> Iterator[tuple[Path, BinaryIO]]:
        with claim_partial(wanted) as held:
            claimed.set()
            yield held

    def has_blob_then_the_other_commits(wanted: str) -> bool:
        present = has_blob(wanted)
        if claimed.is_set() and wanted == digest and store.verified_path(digest).exists():
            store.commit_blob(digest, store.verified_path(digest))
        return present

    monkeypatch.setattr(store, "claim_partial", claim)
    monkeypatch.setattr(store, "has_blob", has_blob_then_the_other_commits)
    pull(store, f"{reg.host}/test/moved")
    assert reg.seen("GET", f"blobs/{digest}") == []
    assert store.blob_path(digest).read_bytes() == layer.blob


def test_an_interrupted_download_resumes_from_its_partial_file(
    reg: FakeRegistry, store: Store
) -> None:
    layer = gzip_layer({"big": os.urandom(2 << 20)})
    add_image(reg, "test/resume", [layer])
    digest = "sha256:" + hashlib.sha256(layer.blob).hexdigest()
    reg.truncate, reg.truncate_only = 100, digest  # every body of the layer stops halfway
    with pytest.raises(TruncatedBlobError):
        pull(store, f"{reg.host}/test/resume")
    partial = store.partial_path(digest)
    assert 0 < partial.stat().st_size < len(layer.blob)
    assert store.load_images() == {}
    reg.truncate = 0
    pull(store, f"{reg.host}/test/resume")
    assert reg.seen("GET", f"blobs/{digest}")[-1].headers.get("Range", "").startswith("bytes=")
    assert store.blob_path(digest).read_bytes() == layer.blob
    assert not partial.exists()
