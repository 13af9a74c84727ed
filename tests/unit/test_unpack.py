"""Layer unpacking: every escape class, entry types, ownership, whiteouts, compression, digests.

Layers are crafted in memory. Each test unpacks into ``box/root`` next to ``box/outside``
(holding a sentinel file) and the escape tests check that nothing outside the root changed.
They run twice: with openat2(2) and with the component walk used where openat2 is missing.
The suite runs as root (``make test`` does); tests needing root say so when skipped.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zstandard

from rctlbase import syscalls
from rctlbase.errors import ExternalError, HostError
from rootless.images.manifest import Compression
from rootless.images.unpack import (
    LayerError,
    UnpackResult,
    UnsafeLayerError,
    WhiteoutFormat,
    split_name,
    unpack_layer,
)

MTIME = 1_704_067_200
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown/mknod need root (make test is)")


# ---- building layers ----------------------------------------------------------------------

TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "chr": tarfile.CHRTYPE,
    "blk": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}


@dataclass(frozen=True)
class E:
    """One tar member to write."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int | None = None
    uid: int = os.geteuid()  # root in `make test`; the caller itself elsewhere
    gid: int = os.getegid()
    link: str = ""
    mtime: int = MTIME
    pax: dict[str, str] | None = None
    dev: tuple[int, int] = (0, 0)


def layer(*entries: E) -> bytes:
    """An uncompressed PAX tar of ``entries``, in order, names exactly as given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = TYPES[e.kind]
            info.mode = e.mode if e.mode is not None else (0o755 if e.kind == "dir" else 0o644)
            info.uid, info.gid, info.mtime = e.uid, e.gid, e.mtime
            info.linkname = e.link
            info.devmajor, info.devminor = e.dev
            info.pax_headers = dict(e.pax or {})
            info.size = len(e.data) if e.kind == "file" else 0
            tar.addfile(info, io.BytesIO(e.data) if e.kind == "file" else None)
    return buf.getvalue()


def compress(data: bytes, compression: Compression) -> bytes:
    if compression is Compression.GZIP:
        return gzip.compress(data)
    if compression is Compression.ZSTD:
        return zstandard.ZstdCompressor().compress(data)
    return data


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Box:
    """``top/box/root`` is unpacked into; ``top/box/outside/sentinel`` must never change."""

    top: Path
    root: Path
    outside: Path

    @property
    def sentinel(self) -> Path:
        return self.outside / "sentinel"

    def unpack(self, *entries: E, **kwargs: Any) -> UnpackResult:
        return unpack_layer(io.BytesIO(layer(*entries)), self.root, **kwargs)

    def assert_outside_untouched(self) -> None:
        assert sorted(os.listdir(self.top)) == ["box"]
        assert sorted(os.listdir(self.top / "box")) == ["outside", "root"]
        assert os.listdir(self.outside) == ["sentinel"]
        st = self.sentinel.lstat()
        assert stat.S_ISREG(st.st_mode) and st.st_nlink == 1
        assert (st.st_mode & 0o7777, st.st_uid) == (0o644, os.geteuid())
        assert self.sentinel.read_bytes() == b"keep"
        assert not Path("/tmp/outside").exists()


@pytest.fixture(params=["openat2", "walk"])
def resolver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with openat2, and again as on a kernel without it (ENOSYS)."""
    monkeypatch.setattr(syscalls, "openat2_missing", False)
    if request.param == "walk":

        def enosys(*args: object, **kwargs: object) -> int:
            raise OSError(errno.ENOSYS, "no openat2")

        monkeypatch.setattr(syscalls, "openat2", enosys)
    return str(request.param)


@pytest.fixture
def box(tmp_path: Path, resolver: str) -> Iterator[Box]:
    top = tmp_path / "top"
    (top / "box" / "root").mkdir(parents=True)
    (top / "box" / "outside").mkdir()
    made = Box(top, top / "box" / "root", top / "box" / "outside")
    made.sentinel.write_bytes(b"keep")
    made.sentinel.chmod(0o644)
    yield made
    made.assert_outside_untouched()  # after every test, whatever it checked itself


def user_xattrs_work(path: Path) -> bool:
    try:
        os.setxattr(path, "user.rctl-probe", b"1")
    except OSError:
        return False
    os.removexattr(path, "user.rctl-probe")
    return True


# ---- names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("a/b", ["a", "b"]),
        ("./a/b", ["a", "b"]),
        ("././a//b/./c/", ["a", "b", "c"]),
        (".", []),
        ("./", []),
        ("a..b/..c", ["a..b", "..c"]),
    ],
)
def test_split_name(name: str, parts: list[str]) -> None:
    assert split_name(name) == parts


@pytest.mark.parametrize("name", ["../x", "a/../../x", "a/../b", "/abs", ".//abs", "a\0b", ".."])
def test_split_name_refuses(name: str) -> None:
    with pytest.raises(UnsafeLayerError):
        split_name(name)


# ---- escapes ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "a/../../x", "../outside/sentinel", "a/../b"])
def test_dotdot_names_are_refused(box: Box, name: str) -> None:
    with pytest.raises(UnsafeLayerError) as info:
        box.unpack(E("a", "dir"), E(name, data=b"evil"))
    assert repr(name) in info.value.message and info.value.hint
    assert not (box.top / "box" / "x").exists()


def test_absolute_names_are_refused(box: Box) -> None:
    name = str(box.outside / "abs")
    with pytest.raises(UnsafeLayerError, match="absolute"):
        box.unpack(E(name, data=b"evil"))
    assert not (box.root / name.lstrip("/")).exists()


def test_nul_in_a_name_is_refused(box: Box) -> None:
    with pytest.raises(UnsafeLayerError, match="NUL"):
        box.unpack(E("innocent", data=b"x", pax={"path": "a\0/../../x"}))


def test_symlink_to_outside_then_write_below_it(box: Box) -> None:
    with pytest.raises(UnsafeLayerError, match="symlink"):
        box.unpack(E("l", "symlink", link=str(box.outside)), E("l/file", data=b"evil"))
    assert os.readlink(box.root / "l") == str(box.outside)  # the link itself is fine


def test_symlink_to_tmp_then_write_below_it(box: Box) -> None:
    with pytest.raises(UnsafeLayerError):
        box.unpack(E("l", "symlink", link="/tmp/outside"), E("l/file", data=b"evil"))


def test_relative_symlink_up_then_write_below_it(box: Box) -> None:
    with pytest.raises(UnsafeLayerError):
        box.unpack(E("l", "symlink", link="../.."), E("l/x", data=b"evil"))


def test_symlink_chain_then_write_below_it(box: Box) -> None:
    with pytest.raises(UnsafeLayerError):
        box.unpack(
            E("a", "dir"),
            E("a/l1", "symlink", link="../l2"),
            E("l2", "symlink", link="../outside"),
            E("a/l1/sentinel", data=b"evil"),
        )


def test_writing_through_an_inside_symlink_is_refused_too(box: Box) -> None:
    # Decision: any symlink in an entry's parent path refuses the layer, even one that
    # stays inside the root; docker-built layers never contain such entries.
    with pytest.raises(UnsafeLayerError, match="symlink"):
        box.unpack(E("sub", "dir"), E("l", "symlink", link="sub"), E("l/file", data=b"x"))
    assert not (box.root / "sub" / "file").exists()


def test_preexisting_symlink_in_the_parent_copy_is_not_followed(box: Box) -> None:
    (box.root / "etc").symlink_to(box.outside)  # a lower layer's link (vfs copies it)
    with pytest.raises(UnsafeLayerError):
        box.unpack(E("etc/sentinel", data=b"evil"), whiteouts=WhiteoutFormat.VFS)


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside/sentinel", "a/../../x"])
def test_hardlinks_to_outside_names_are_refused(box: Box, target: str) -> None:
    with pytest.raises(UnsafeLayerError, match="hard link target"):
        box.unpack(E("a", "dir"), E("x", "hardlink", link=target))
    assert not (box.root / "x").exists()


def test_hardlink_to_the_absolute_sentinel_is_refused(box: Box) -> None:
    with pytest.raises(UnsafeLayerError):
        box.unpack(E("x", "hardlink", link=str(box.sentinel)))


def test_hardlink_through_a_symlinked_parent_is_refused(box: Box) -> None:
    with pytest.raises(UnsafeLayerError, match="symlink"):
        box.unpack(E("l", "symlink", link=str(box.outside)), E("x", "hardlink", link="l/sentinel"))
    assert not (box.root / "x").exists()


def test_hardlink_to_a_symlink_links_the_symlink(box: Box) -> None:
    box.unpack(E("l", "symlink", link=str(box.sentinel)), E("x", "hardlink", link="l"))
    assert (box.root / "x").is_symlink()
    assert (box.root / "x").lstat().st_ino == (box.root / "l").lstat().st_ino


def test_file_replaces_a_symlink_instead_of_writing_through_it(box: Box) -> None:
    box.unpack(E("l", "symlink", link=str(box.sentinel)), E("l", data=b"new"))
    assert not (box.root / "l").is_symlink()
    assert (box.root / "l").read_bytes() == b"new"


def test_file_replaces_a_preexisting_symlink(box: Box) -> None:
    (box.root / "l").symlink_to(box.sentinel)
    (box.root / "rel").symlink_to("../outside/sentinel")
    box.unpack(E("l", data=b"new"), E("rel", data=b"new2"), whiteouts=WhiteoutFormat.VFS)
    assert (box.root / "l").read_bytes() == b"new"
    assert (box.root / "rel").read_bytes() == b"new2"


def test_directory_replaces_a_symlink(box: Box) -> None:
    box.unpack(
        E("d", "symlink", link=str(box.outside)),
        E("d", "dir", mode=0o750),
        E("d/f", data=b"inside"),
    )
    d = box.root / "d"
    assert not d.is_symlink() and d.is_dir()
    assert (d / "f").read_bytes() == b"inside"
    assert stat.S_IMODE(d.stat().st_mode) == 0o750


def test_symlink_entry_over_a_directory_replaces_it(box: Box) -> None:
    box.unpack(E("d", "dir"), E("d/f", data=b"x"), E("d", "symlink", link=str(box.outside)))
    assert os.readlink(box.root / "d") == str(box.outside)


def test_hardlink_replaces_an_existing_symlink(box: Box) -> None:
    box.unpack(
        E("f", data=b"data"),
        E("l", "symlink", link=str(box.sentinel)),
        E("l", "hardlink", link="f"),
    )
    assert (box.root / "l").read_bytes() == b"data"
    assert (box.root / "l").stat().st_ino == (box.root / "f").stat().st_ino


def test_symlink_targets_are_stored_verbatim(box: Box) -> None:
    box.unpack(
        E("abs", "symlink", link="/etc/passwd"),
        E("up", "symlink", link="../../../../outside/sentinel"),
        E("dangling", "symlink", link="nowhere"),
    )
    assert os.readlink(box.root / "abs") == "/etc/passwd"
    assert os.readlink(box.root / "up") == "../../../../outside/sentinel"
    assert os.readlink(box.root / "dangling") == "nowhere"


@pytest.mark.parametrize("name", [".wh..", ".wh...", "a/.wh.."])
def test_whiteouts_of_dot_names_are_refused(box: Box, name: str) -> None:
    (box.root / "a").mkdir()
    (box.root / "a" / "keep").write_bytes(b"k")
    with pytest.raises(UnsafeLayerError, match="whiteout"):
        box.unpack(E(name), whiteouts=WhiteoutFormat.VFS)
    assert (box.root / "a" / "keep").exists()


def test_whiteout_below_a_symlink_is_refused(box: Box) -> None:
    (box.root / "l").symlink_to(box.outside)
    with pytest.raises(UnsafeLayerError):
        box.unpack(E("l/.wh.sentinel"), whiteouts=WhiteoutFormat.VFS)


def test_vfs_whiteout_of_a_symlink_removes_the_link_only(box: Box) -> None:
    (box.root / "l").symlink_to(box.outside)
    box.unpack(E(".wh.l"), whiteouts=WhiteoutFormat.VFS)
    assert not os.path.lexists(box.root / "l")


def test_vfs_opaque_does_not_follow_symlinks(box: Box) -> None:
    (box.root / "d").mkdir()
    (box.root / "d" / "l").symlink_to(box.outside)
    (box.root / "d" / "sub").mkdir()
    (box.root / "d" / "sub" / "l2").symlink_to(box.outside)
    box.unpack(E("d", "dir"), E("d/.wh..wh..opq"), whiteouts=WhiteoutFormat.VFS)
    assert os.listdir(box.root / "d") == []


# ---- entry types and metadata -------------------------------------------------------------


@needs_root
def test_files_dirs_links_with_owner_mode_and_mtime(box: Box) -> None:
    result = box.unpack(
        E("./", "dir", mode=0o755, mtime=MTIME - 10),
        E("usr", "dir", mode=0o755, mtime=MTIME - 1),
        E("usr/bin", "dir", mode=0o711, uid=3, gid=4, mtime=MTIME - 2),
        E("usr/bin/tool", data=b"#!/bin/sh\n", mode=0o750, uid=1000, gid=1001),
        E("usr/bin/alias", "symlink", link="tool", uid=1000, gid=1001, mtime=MTIME - 3),
        E("usr/bin/hard", "hardlink", link="usr/bin/tool"),
        E("srv/www/index.html", data=b"<html>", uid=33, gid=33),  # parents implied
    )
    tool = (box.root / "usr/bin/tool").stat()
    assert (stat.S_IMODE(tool.st_mode), tool.st_uid, tool.st_gid) == (0o750, 1000, 1001)
    assert tool.st_mtime_ns == MTIME * 10**9 and tool.st_nlink == 2
    assert (box.root / "usr/bin/hard").stat().st_ino == tool.st_ino
    alias = (box.root / "usr/bin/alias").lstat()
    assert (alias.st_uid, alias.st_gid, alias.st_mtime_ns) == (1000, 1001, (MTIME - 3) * 10**9)
    bindir = (box.root / "usr/bin").stat()
    # Set after the directory's contents were written, so the tar's mtime survives.
    assert (stat.S_IMODE(bindir.st_mode), bindir.st_uid, bindir.st_gid) == (0o711, 3, 4)
    assert bindir.st_mtime_ns == (MTIME - 2) * 10**9
    assert (box.root / "usr").stat().st_mtime_ns == (MTIME - 1) * 10**9
    assert box.root.stat().st_mtime_ns == (MTIME - 10) * 10**9
    www = (box.root / "srv/www").stat()
    assert stat.S_ISDIR(www.st_mode) and stat.S_IMODE(www.st_mode) == 0o755
    assert (box.root / "srv/www/index.html").read_bytes() == b"<html>"
    assert result.entries == 7
    assert result.bytes_written == len(b"#!/bin/sh\n") + len(b"<html>")
    assert result.warnings == ()


@needs_root
def test_special_bits_survive_chown(box: Box) -> None:
    box.unpack(
        E("suid", data=b"x", mode=0o4755, uid=1000, gid=1000),
        E("sgid", data=b"x", mode=0o2711, uid=0, gid=50),
        E("tmp", "dir", mode=0o1777, uid=0, gid=0),
        E("shared", "dir", mode=0o2775, uid=1000, gid=50),
    )
    modes = {n: stat.S_IMODE((box.root / n).stat().st_mode) for n in ("suid", "sgid", "tmp")}
    assert modes == {"suid": 0o4755, "sgid": 0o2711, "tmp": 0o1777}
    shared = (box.root / "shared").stat()
    assert (stat.S_IMODE(shared.st_mode), shared.st_uid, shared.st_gid) == (0o2775, 1000, 50)


def test_read_only_directory_still_gets_its_contents(box: Box) -> None:
    box.unpack(E("ro", "dir", mode=0o555), E("ro/f", data=b"x", mode=0o444))
    assert (box.root / "ro/f").read_bytes() == b"x"
    assert stat.S_IMODE((box.root / "ro").stat().st_mode) == 0o555


def test_existing_directory_is_kept_and_updated(box: Box) -> None:
    (box.root / "d").mkdir(mode=0o700)
    (box.root / "d" / "old").write_bytes(b"lower")
    box.unpack(E("d", "dir", mode=0o751), E("d/new", data=b"upper"), whiteouts=WhiteoutFormat.VFS)
    assert (box.root / "d/old").read_bytes() == b"lower"
    assert (box.root / "d/new").read_bytes() == b"upper"
    assert stat.S_IMODE((box.root / "d").stat().st_mode) == 0o751


def test_later_entry_for_a_directory_updates_its_metadata(box: Box) -> None:
    box.unpack(E("d", "dir", mode=0o700), E("d/f", data=b"x"), E("d", "dir", mode=0o705))
    assert stat.S_IMODE((box.root / "d").stat().st_mode) == 0o705
    assert (box.root / "d/f").exists()


def test_file_replaces_a_directory_tree(box: Box) -> None:
    box.unpack(E("d/sub/f", data=b"x"), E("d", data=b"file now"))
    assert (box.root / "d").read_bytes() == b"file now"


def test_file_content_is_streamed_exactly(box: Box) -> None:
    data = os.urandom(3 << 20) + b"tail"
    result = box.unpack(E("big", data=data), E("empty"))
    assert (box.root / "big").read_bytes() == data
    assert (box.root / "empty").read_bytes() == b""
    assert result.bytes_written == len(data)


def test_long_names_and_links(box: Box) -> None:
    deep = "/".join(["d" * 60] * 5)
    box.unpack(E(f"{deep}/file", data=b"x"), E("link", "symlink", link=f"{deep}/file"))
    assert (box.root / deep / "file").read_bytes() == b"x"
    assert (box.root / "link").read_bytes() == b"x"


@needs_root
def test_device_nodes_are_created_as_root(box: Box) -> None:
    result = box.unpack(
        E("dev/null", "chr", mode=0o666, dev=(1, 3)),
        E("dev/loop9", "blk", mode=0o660, gid=6, dev=(7, 9)),
        E("dev/pipe", "fifo", mode=0o620, uid=5),
    )
    null = (box.root / "dev/null").lstat()
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    loop = (box.root / "dev/loop9").lstat()
    assert stat.S_ISBLK(loop.st_mode) and loop.st_rdev == os.makedev(7, 9) and loop.st_gid == 6
    pipe = (box.root / "dev/pipe").lstat()
    assert stat.S_ISFIFO(pipe.st_mode) and pipe.st_uid == 5 and stat.S_IMODE(pipe.st_mode) == 0o620
    assert result.warnings == ()


def test_device_nodes_skipped_when_creation_is_off(box: Box) -> None:
    result = box.unpack(
        E("dev/null", "chr", dev=(1, 3)), E("dev/pipe", "fifo"), create_devices=False
    )
    assert not (box.root / "dev/null").exists()
    assert stat.S_ISFIFO((box.root / "dev/pipe").lstat().st_mode)  # fifos need no privilege
    assert len(result.warnings) == 1 and "dev/null" in result.warnings[0]


def test_device_nodes_skipped_when_mknod_is_not_permitted(
    box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_mknod = os.mknod

    def userns_mknod(path: str, mode: int = 0o600, device: int = 0, **kw: Any) -> None:
        # Like a user namespace: only 0:0 (whiteout) character devices are allowed.
        if (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) and device != 0:
            raise PermissionError(errno.EPERM, "Operation not permitted")
        real_mknod(path, mode, device, **kw)

    monkeypatch.setattr(os, "mknod", userns_mknod)
    result = box.unpack(
        E("dev/null", "chr", dev=(1, 3)), E("dev/sda", "blk", dev=(8, 0)), E("after", data=b"x")
    )
    assert os.listdir(box.root / "dev") == []
    assert (box.root / "after").read_bytes() == b"x"
    assert [("dev/null" in w, "mknod" in w) for w in result.warnings[:1]] == [(True, True)]
    assert len(result.warnings) == 2


def test_unmapped_owner_is_an_error_with_a_subuid_hint(
    box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unmapped(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "chown", unmapped)
    with pytest.raises(LayerError) as info:
        box.unpack(E("f", data=b"x", uid=4000))
    assert "4000" in info.value.message
    assert info.value.hint is not None and "/etc/subuid" in info.value.hint


@pytest.mark.parametrize(("uid", "gid"), [(65537, 0), (0, 70000), (2**21, 2**21)])
def test_owner_ids_beyond_max_id_are_refused(box: Box, uid: int, gid: int) -> None:
    with pytest.raises(LayerError) as info:
        box.unpack(E("f", data=b"x", uid=uid, gid=gid))
    assert str(max(uid, gid) if uid > 65536 else gid) in info.value.message
    assert info.value.hint is not None and "/etc/subuid" in info.value.hint
    assert not (box.root / "f").exists()


@needs_root
def test_max_id_is_configurable_and_inclusive(box: Box) -> None:
    box.unpack(E("edge", data=b"x", uid=1000, gid=1000), max_id=1000)
    assert (box.root / "edge").stat().st_uid == 1000
    with pytest.raises(LayerError):
        box.unpack(E("over", data=b"x", uid=1001), max_id=1000)


def test_xattrs_from_pax_records(box: Box) -> None:
    if not user_xattrs_work(box.root):
        pytest.skip("the test filesystem has no user extended attributes")
    result = box.unpack(
        E("d", "dir", pax={"SCHILY.xattr.user.color": "blue"}),
        E("f", data=b"x", pax={"SCHILY.xattr.user.bin": "\udcff\udc80ok"}),  # raw bytes
        E("g", data=b"x", pax={"SCHILY.xattr.user.overlay.redirect": "/etc"}),
    )
    assert os.getxattr(box.root / "d", "user.color") == b"blue"
    assert os.getxattr(box.root / "f", "user.bin") == b"\xff\x80ok"
    assert "user.overlay.redirect" not in os.listxattr(box.root / "g")
    assert any("user.overlay.redirect" in w for w in result.warnings)


def test_refused_xattrs_become_warnings(box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "setxattr", refuse)
    result = box.unpack(E("f", data=b"x", pax={"SCHILY.xattr.trusted.x": "1"}))
    assert (box.root / "f").read_bytes() == b"x"
    assert len(result.warnings) == 1 and "trusted.x" in result.warnings[0]


def test_hardlink_to_a_missing_target_is_an_error(box: Box) -> None:
    with pytest.raises(LayerError, match="does not exist"):
        box.unpack(E("x", "hardlink", link="nothing"))
    with pytest.raises(LayerError, match="does not exist"):
        box.unpack(E("y", "hardlink", link="no/dir/here"))


def test_hardlink_to_a_directory_is_an_error(box: Box) -> None:
    with pytest.raises(LayerError, match="directory"):
        box.unpack(E("d", "dir"), E("x", "hardlink", link="d"))


def test_entry_below_a_file_is_an_error(box: Box) -> None:
    with pytest.raises(LayerError, match="not a directory") as info:
        box.unpack(E("f", data=b"x"), E("f/g", data=b"y"))
    assert not isinstance(info.value, UnsafeLayerError)


def test_unknown_entry_types_are_skipped_with_a_warning(box: Box) -> None:
    odd = tarfile.TarInfo("odd")
    odd.type = b"Z"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(odd)
    result = unpack_layer(io.BytesIO(buf.getvalue()), box.root)
    assert os.listdir(box.root) == []
    assert len(result.warnings) == 1 and "'odd'" in result.warnings[0]


def test_warnings_are_capped(box: Box) -> None:
    nodes = [E(f"dev/n{i}", "chr", dev=(1, 3)) for i in range(60)]
    result = box.unpack(*nodes, create_devices=False)
    assert len(result.warnings) == 51
    assert result.warnings[-1] == "... and 10 more warnings"
    assert result.entries == 60


def test_aufs_metadata_is_skipped(box: Box) -> None:
    result = box.unpack(E(".wh..wh.plnk", "dir"), E(".wh..wh.plnk/1.2", data=b"x"), E("a"))
    assert os.listdir(box.root) == ["a"]
    assert len(result.warnings) == 2


# ---- whiteouts ----------------------------------------------------------------------------


@needs_root
def test_overlay_whiteouts_are_0_0_character_devices(box: Box) -> None:
    box.unpack(E("etc", "dir"), E("etc/.wh.motd"), E(".wh.gone-dir"))
    for path in (box.root / "etc/motd", box.root / "gone-dir"):
        st = path.lstat()
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert not (box.root / "etc/.wh.motd").exists()


@needs_root
def test_overlay_whiteout_replaces_an_entry_of_the_same_layer(box: Box) -> None:
    box.unpack(E("d/f", data=b"x"), E(".wh.d"))
    assert stat.S_ISCHR((box.root / "d").lstat().st_mode)


def test_overlay_opaque_directory_gets_user_xattrs(box: Box) -> None:
    if not user_xattrs_work(box.root):
        pytest.skip("the test filesystem has no user extended attributes")
    box.unpack(E("d", "dir"), E("d/.wh..wh..opq"), E("d/new", data=b"x"), E("e/.wh..wh..opq"))
    for d in (box.root / "d", box.root / "e"):
        assert os.getxattr(d, "user.overlay.opaque") == b"y"
        assert os.getxattr(d, "user.fuseoverlayfs.opaque") == b"y"
        assert "trusted.overlay.opaque" not in os.listxattr(d)  # not even as real root
    assert sorted(os.listdir(box.root / "d")) == ["new"]


def test_overlay_whiteout_needs_mknod(box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "mknod", refuse)
    with pytest.raises(LayerError) as info:
        box.unpack(E(".wh.x"))
    assert info.value.hint is not None and "5.8" in info.value.hint


def test_overlay_opaque_needs_xattrs(box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "setxattr", refuse)
    with pytest.raises(LayerError, match="opaque"):
        box.unpack(E("d/.wh..wh..opq"))


def test_vfs_whiteouts_delete_recursively(box: Box) -> None:
    (box.root / "etc").mkdir()
    (box.root / "etc/motd").write_bytes(b"lower")
    (box.root / "etc/keep").write_bytes(b"lower")
    (box.root / "var/lib/x").mkdir(parents=True)
    (box.root / "var/lib/x/f").write_bytes(b"lower")
    box.unpack(
        E("etc/.wh.motd"), E("var/.wh.lib"), E(".wh.never-existed"), whiteouts=WhiteoutFormat.VFS
    )
    assert os.listdir(box.root / "etc") == ["keep"]
    assert os.listdir(box.root / "var") == []
    assert not (box.root / "etc/.wh.motd").exists()


def test_vfs_opaque_keeps_only_this_layers_entries(box: Box) -> None:
    for lower in ("d/old", "d/sub/old", "d/kept/old", "other/old"):
        (box.root / lower).parent.mkdir(parents=True, exist_ok=True)
        (box.root / lower).write_bytes(b"lower")
    box.unpack(
        E("d", "dir"),
        E("d/new", data=b"upper"),
        E("d/kept", "dir"),  # listed in this layer: kept, but its lower contents go
        E("d/.wh..wh..opq"),
        E("d/after", data=b"upper"),
        whiteouts=WhiteoutFormat.VFS,
    )
    assert sorted(os.listdir(box.root / "d")) == ["after", "kept", "new"]
    assert os.listdir(box.root / "d/kept") == []
    assert (box.root / "other/old").exists()


def test_vfs_whiteout_then_recreate(box: Box) -> None:
    (box.root / "d").mkdir()
    (box.root / "d/old").write_bytes(b"lower")
    box.unpack(E(".wh.d"), E("d", "dir", mode=0o700), E("d/new"), whiteouts=WhiteoutFormat.VFS)
    assert os.listdir(box.root / "d") == ["new"]
    assert stat.S_IMODE((box.root / "d").stat().st_mode) == 0o700


# ---- compression, digests, corruption -----------------------------------------------------

SAMPLE = (E("etc", "dir"), E("etc/hostname", data=b"box\n"), E("bin/sh", "symlink", link="x"))


@pytest.mark.parametrize("compression", list(Compression))
def test_compressions_and_digests(box: Box, compression: Compression) -> None:
    tar = layer(*SAMPLE)
    blob = compress(tar, compression)
    result = unpack_layer(
        io.BytesIO(blob),
        box.root,
        compression=compression,
        expected_diff_id=sha(tar),
        expected_digest=sha(blob),
    )
    assert result.diff_id == sha(tar)  # of the whole uncompressed stream, padding included
    assert result.digest == sha(blob)
    assert (result.uncompressed_size, result.compressed_size) == (len(tar), len(blob))
    assert (box.root / "etc/hostname").read_bytes() == b"box\n"
    assert result.entries == 3


def test_zstd_with_several_frames(box: Box) -> None:
    tar = layer(*SAMPLE)
    cut = len(tar) // 3
    blob = b"".join(zstandard.ZstdCompressor().compress(p) for p in (tar[:cut], tar[cut:]))
    result = unpack_layer(io.BytesIO(blob), box.root, compression=Compression.ZSTD)
    assert result.diff_id == sha(tar)
    assert (box.root / "etc/hostname").read_bytes() == b"box\n"


def test_trailing_data_after_the_archive_is_hashed(box: Box) -> None:
    tar = layer(*SAMPLE) + b"\0" * 4096
    result = unpack_layer(io.BytesIO(gzip.compress(tar)), box.root, compression=Compression.GZIP)
    assert result.diff_id == sha(tar)


def test_diff_id_mismatch_is_an_error(box: Box) -> None:
    tar = layer(*SAMPLE)
    wrong = sha(tar + b"x")
    with pytest.raises(LayerError) as info:
        unpack_layer(io.BytesIO(tar), box.root, expected_diff_id=wrong)
    assert wrong in info.value.message and sha(tar) in info.value.message
    assert isinstance(info.value, ExternalError) and info.value.hint


def test_digest_mismatch_is_an_error(box: Box) -> None:
    blob = gzip.compress(layer(*SAMPLE))
    with pytest.raises(LayerError, match="digest mismatch"):
        unpack_layer(
            io.BytesIO(blob), box.root, compression=Compression.GZIP, expected_digest=sha(b"")
        )


@pytest.mark.parametrize("compression", [Compression.GZIP, Compression.ZSTD])
def test_truncated_blob_is_corrupt(box: Box, compression: Compression) -> None:
    blob = compress(layer(E("f", data=os.urandom(100_000))), compression)
    with pytest.raises(LayerError, match="corrupt"):
        unpack_layer(io.BytesIO(blob[: len(blob) // 2]), box.root, compression=compression)


def test_wrong_compression_is_corrupt(box: Box) -> None:
    with pytest.raises(LayerError, match="corrupt"):
        unpack_layer(io.BytesIO(layer(*SAMPLE)), box.root, compression=Compression.GZIP)


def test_truncated_file_data_is_corrupt(box: Box) -> None:
    tar = layer(E("f", data=b"y" * 5000))
    with pytest.raises(LayerError, match="corrupt"):
        unpack_layer(io.BytesIO(tar[:2048]), box.root)


def test_empty_stream_is_corrupt(box: Box) -> None:
    with pytest.raises(LayerError):
        unpack_layer(io.BytesIO(b""), box.root)


def test_missing_destination_is_a_host_error(tmp_path: Path) -> None:
    with pytest.raises(HostError, match="cannot open the layer directory"):
        unpack_layer(io.BytesIO(layer(*SAMPLE)), tmp_path / "missing")


# ---- the syscall layer --------------------------------------------------------------------


def test_open_beneath(tmp_path: Path, resolver: str) -> None:
    (tmp_path / "a/b").mkdir(parents=True)
    (tmp_path / "link").symlink_to("a")
    (tmp_path / "a/up").symlink_to("..")
    root = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = syscalls.open_beneath(root, "a/b")
        assert os.path.samestat(os.fstat(fd), (tmp_path / "a/b").stat())
        os.close(fd)
        os.close(syscalls.open_beneath(root, ""))
        cases = {
            "link/b": errno.ELOOP,
            "a/up/a": errno.ELOOP,
            "../x": errno.EXDEV,
            "a/../../x": errno.EXDEV,
            "/etc": errno.EXDEV,
            "a/missing": errno.ENOENT,
        }
        for path, code in cases.items():
            with pytest.raises(OSError) as info:
                syscalls.open_beneath(root, path)
            assert info.value.errno == code, path
        for flags in (os.O_RDONLY, os.O_RDONLY | os.O_DIRECTORY):
            with pytest.raises(OSError) as info:
                syscalls.open_beneath(root, "link", flags)  # a final symlink is refused too
            assert info.value.errno == errno.ELOOP
    finally:
        os.close(root)
    assert syscalls.openat2_missing is (resolver == "walk")


def test_openat2_is_the_real_syscall(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    root = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fd = syscalls.openat2(root, "d", os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            if exc.errno == errno.ENOSYS:
                pytest.skip("this kernel has no openat2 (Linux < 5.6)")
            raise
        os.close(fd)
        with pytest.raises(OSError) as info:
            syscalls.openat2(root, "..", os.O_RDONLY, resolve=syscalls.RESOLVE_BENEATH)
        assert info.value.errno == errno.EXDEV
    finally:
        os.close(root)


@pytest.mark.parametrize(
    ("code", "needle"),
    [(errno.EPERM, "user namespace"), (errno.ENOSYS, "seccomp"), (errno.ENOSPC, "full")],
)
def test_syscall_error_hints(code: int, needle: str) -> None:
    error = syscalls.syscall_error(OSError(code, os.strerror(code)), "create x")
    assert error.message == f"cannot create x: {os.strerror(code)}"
    assert error.hint is not None and needle in error.hint


def test_own_files_get_their_mode_whatever_the_umask(box: Box) -> None:
    old = os.umask(0o077)
    try:
        box.unpack(
            E("open", data=b"x", mode=0o666),
            E("own", data=b"x", mode=0o4711),
            E("none", data=b"x", mode=0o000),
        )
    finally:
        os.umask(old)
    modes = {n: stat.S_IMODE((box.root / n).stat().st_mode) for n in ("open", "own", "none")}
    assert modes == {"open": 0o666, "own": 0o4711, "none": 0o000}


def test_own_files_in_a_set_gid_directory_still_get_the_entry_s_group(box: Box) -> None:
    box.root.chmod(0o2755)
    groups = [g for g in os.getgroups() if g != os.getegid()]
    if groups:
        os.chown(box.root, -1, groups[0])
    box.unpack(E("file", data=b"x", mode=0o640))
    st = (box.root / "file").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (os.geteuid(), os.getegid(), 0o640)


def test_a_file_over_an_existing_file_replaces_it(box: Box) -> None:
    (box.root / "f").write_bytes(b"old")
    (box.root / "f").chmod(0o600)
    box.unpack(E("f", data=b"new", mode=0o644))
    assert (box.root / "f").read_bytes() == b"new"
    assert stat.S_IMODE((box.root / "f").stat().st_mode) == 0o644


def test_as_caller_makes_root_owned_entries_the_caller_s(box: Box) -> None:
    result = box.unpack(
        E("d", "dir", uid=0, gid=0), E("d/f", data=b"x", uid=0, gid=0, mode=0o640),
        E("d/l", "symlink", link="f", uid=0, gid=0), as_caller=True,
    )  # fmt: skip
    st = (box.root / "d/f").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (os.geteuid(), os.getegid(), 0o640)
    assert result.entries == 3


@pytest.mark.parametrize(
    "entry",
    [E("f", data=b"x", uid=1000, gid=0), E("f", data=b"x", uid=0, gid=5),
     E("dev", "chr", dev=(1, 3), uid=0, gid=0), E("d/.wh.gone", uid=0, gid=0)],
    ids=["uid", "gid", "device", "whiteout"],
)  # fmt: skip
def test_as_caller_leaves_what_needs_the_namespace(box: Box, entry: E) -> None:
    with pytest.raises(LayerError, match="needs the user namespace"):
        box.unpack(entry, as_caller=True)
