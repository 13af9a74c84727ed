"""A build step's layer unpacked without a user-namespace process of its own: the tree
is used only when it is the stored blob's."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

from rootless.build import staging
from rootless.images.store import ImageRecord, LayerRecord, Store, chain_ids


def layer_tar(path: Path, uid: int = 0) -> str:
    """A one-file layer at ``path``; its digest."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("app/hello.txt")
        info.size, info.mode, info.uid, info.gid, info.mtime = 6, 0o644, uid, 0, 1_700_000_000
        tar.addfile(info, io.BytesIO(b"hello\n"))
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def parent_image() -> ImageRecord:
    diff = "sha256:" + "1" * 64
    return ImageRecord(id="sha256:" + "2" * 64, manifest_digest="", manifest_media_type="",
                       layers=(LayerRecord(diff, diff, diff, 1, "tar"),))  # fmt: skip


def test_unpack_here_stores_the_user_s_own_layer(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.ensure()
    digest = layer_tar(tmp_path / "l.tar")
    staging.unpack_here(store, tmp_path / "l.tar", digest, parent_image())
    chain = chain_ids(["sha256:" + "1" * 64, digest])[-1]
    made = store.layer_dir(chain) / "diff" / "app" / "hello.txt"
    assert made.read_bytes() == b"hello\n"
    assert (made.stat().st_uid, made.stat().st_mtime) == (os.geteuid(), 1_700_000_000)
    assert store.stale_layer_dirs() == []


def test_unpack_here_leaves_other_owners_to_the_namespace(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.ensure()
    digest = layer_tar(tmp_path / "l.tar", uid=1000)
    staging.unpack_here(store, tmp_path / "l.tar", digest, None)
    assert not store.has_layer(digest)
    assert store.stale_layer_dirs() == []  # the partial tree is gone too


def test_unpack_here_refuses_a_tar_that_is_not_the_digest(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.ensure()
    layer_tar(tmp_path / "l.tar")
    staging.unpack_here(store, tmp_path / "l.tar", "sha256:" + "3" * 64, None)
    assert not store.has_layer("sha256:" + "3" * 64)
    assert store.stale_layer_dirs() == []


def staged_tree(store: Store, tmp_path: Path, reported: str | None) -> staging.StagedLayer:
    job = staging.stage_job(store, tmp_path / "l.tar", parent_image(), tmp_path / "report")
    Path(job.dest).mkdir()
    (Path(job.dest) / "f").write_text("unpacked")
    if reported is not None:
        (tmp_path / "report").write_text(json.dumps({"diff_id": reported}))
    return staging.staged(job)


def test_adopt_renames_the_staged_tree_of_the_blob(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    digest = "sha256:" + "4" * 64
    staged = staged_tree(store, tmp_path, digest)
    staging.adopt(store, staged, digest, parent_image())
    chain = chain_ids(["sha256:" + "1" * 64, digest])[-1]
    assert (store.layer_dir(chain) / "diff" / "f").read_text() == "unpacked"
    assert store.stale_layer_dirs() == []


def test_adopt_never_uses_a_tree_of_other_content(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    digest = "sha256:" + "4" * 64
    for reported in ("sha256:" + "5" * 64, None):  # another diff ID, or the job died
        staged = staged_tree(store, tmp_path, reported)
        staging.adopt(store, staged, digest, parent_image())
        assert not store.has_layer(chain_ids(["sha256:" + "1" * 64, digest])[-1])
        # Left as a stale unpack, for the next unpack's sweep in the namespace.
        assert staged.tree in store.stale_layer_dirs()
        (tmp_path / "report").unlink(missing_ok=True)
