"""COPY's stat cache: a rebuild whose sources did not change reads none of them, and any
edit (or a file never read whole) makes the builder read them again."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from rootless.build import sources, statcache
from rootless.build.ignore import IgnoreRules
from rootless.build.sources import Owner, checksum, plan_copy
from rootless.build.statcache import NotKnown, StatDigests

NONE = IgnoreRules()


def copy(root: Path, known: StatDigests, *, stat_only: bool) -> str:
    entries = plan_copy(root, ["."], "/app/", "/", NONE, chmod=None, is_dir=lambda _p: False,
                        out=None if stat_only else io.BytesIO(), known=known,
                        stat_only=stat_only)  # fmt: skip
    return checksum(entries, Owner())


def test_known_files_are_not_read_and_an_edit_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statcache, "RACY_NS", -(10**12))  # the files are all brand new
    root = tmp_path / "ctx"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.txt").write_text("b")
    digests = StatDigests(tmp_path / "digests.json")
    with pytest.raises(NotKnown):
        copy(root, digests, stat_only=True)  # nothing read yet
    read = copy(root, digests, stat_only=False)
    digests.save()
    again = StatDigests(tmp_path / "digests.json")  # as the next build loads it
    with monkeypatch.context() as patch:
        patch.setattr(sources._Hashing, "read", None)  # a stat-only pass reads no file
        assert copy(root, again, stat_only=True) == read
    (root / "sub" / "b.txt").write_text("bb")
    with pytest.raises(NotKnown):
        copy(root, again, stat_only=True)
    assert copy(root, again, stat_only=False) != read
    assert copy(root, again, stat_only=True) != read


def test_a_damaged_file_is_an_empty_cache(tmp_path: Path) -> None:
    (tmp_path / "digests.json").write_text("{not json")
    assert StatDigests(tmp_path / "digests.json").entries == {}


def test_a_file_changed_just_now_is_not_remembered(tmp_path: Path) -> None:
    (tmp_path / "new.txt").write_text("x")
    digests = StatDigests(None)
    digests.remember((tmp_path / "new.txt").stat(), "0" * 64)
    assert digests.entries == {}
