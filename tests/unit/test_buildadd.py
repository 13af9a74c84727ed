"""ADD: local archives extracted into the layer (hostile entries refused), URLs downloaded
(bounded, checked), and ``--chown`` by name from the stage's files."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import http.server
import io
import lzma
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zstandard

from rctlbase.errors import UsageError
from rootless.build import addarchive, fetch
from rootless.build.ignore import IgnoreRules
from rootless.build.sources import IdFiles, Owner, checksum, parse_chown, plan_copy

NONE = IgnoreRules()


def no_dir(_path: str) -> bool:
    return False


def make_tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def entry(
    name: str, data: bytes | None = b"x", **fields: object
) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    for key, value in fields.items():
        setattr(info, key, value)
    if info.type != tarfile.REGTYPE:
        data = None
    return info, data


APP = make_tar(
    entry("app", None, type=tarfile.DIRTYPE, mode=0o750, uid=5, gid=6),
    entry("app/run.sh", b"#!/bin/sh\n", mode=0o755, uid=5, gid=6),
    entry("app/link", type=tarfile.SYMTYPE, linkname="/etc/hostname"),
    entry("app/hard", type=tarfile.LNKTYPE, linkname="app/run.sh"),
)
COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "plain": lambda data: data,
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


def add(
    tmp_path: Path, name: str, data: bytes, dest: str = "/opt/", **kw: object
) -> tuple[list[tarfile.TarInfo], dict[str, bytes], str]:
    root = tmp_path / "ctx"
    root.mkdir(exist_ok=True)
    (root / name).write_bytes(data)
    out = io.BytesIO()
    entries = plan_copy(root, [name], dest, "/", NONE, chmod=None, is_dir=no_dir, out=out,
                        extract=True, **kw)  # type: ignore[arg-type]  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        members = tar.getmembers()
        contents = {}
        for member in members:
            handle = tar.extractfile(member) if member.isreg() else None
            if handle is not None:
                contents[member.name] = handle.read()
    return members, contents, checksum(entries, Owner())


@pytest.mark.parametrize("kind", sorted(COMPRESS))
def test_a_local_archive_is_extracted_into_the_destination(tmp_path: Path, kind: str) -> None:
    members, contents, _ = add(tmp_path, "app.bin", COMPRESS[kind](APP))
    by_name = {m.name: m for m in members}
    assert sorted(by_name) == ["opt", "opt/app", "opt/app/hard", "opt/app/link", "opt/app/run.sh"]
    run = by_name["opt/app/run.sh"]
    assert (run.uid, run.gid, run.mode) == (5, 6, 0o755)
    assert contents["opt/app/run.sh"] == b"#!/bin/sh\n"
    assert by_name["opt/app/link"].linkname == "/etc/hostname"
    assert by_name["opt/app/hard"].islnk() and by_name["opt/app/hard"].linkname == "opt/app/run.sh"


def test_chown_replaces_the_archive_owners_and_the_checksum_is_the_archive(tmp_path: Path) -> None:
    members, _, first = add(tmp_path, "a.tar", APP, owner=Owner(9, 9))
    assert {(m.uid, m.gid) for m in members} == {(9, 9)}
    _, _, again = add(tmp_path, "a.tar", APP)
    assert again == first  # the same bytes: the same cache key
    _, _, changed = add(tmp_path, "a.tar", make_tar(entry("app/run.sh", b"changed")))
    assert changed != first


def test_a_compressed_file_that_is_no_tar_is_copied_as_it_is(tmp_path: Path) -> None:
    data = gzip.compress(b"just text\n")
    members, contents, _ = add(tmp_path, "notes.gz", data)
    assert [m.name for m in members] == ["opt/notes.gz"]
    assert contents["opt/notes.gz"] == data


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ([entry("../escape")], "'..'"),
        ([entry("/etc/passwd")], "absolute"),
        ([entry("dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3)], "device"),
        ([entry("fifo", type=tarfile.FIFOTYPE)], "device or a FIFO"),
        ([entry("a", type=tarfile.SYMTYPE, linkname="/etc"), entry("a/passwd")], "symbolic link"),
        ([entry("h", type=tarfile.LNKTYPE, linkname="etc/shadow")], "hard link"),
        ([entry("h", type=tarfile.LNKTYPE, linkname="../../x")], "'..'"),
        ([entry("big", uid=1 << 20)], "mapped IDs"),
    ],
)
def test_hostile_archive_entries_are_refused(
    tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], why: str
) -> None:
    with pytest.raises(UsageError, match=why):
        add(tmp_path, "evil.tar", make_tar(*members))


def test_a_decompression_bomb_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(addarchive, "FREE_BYTES", 1 << 20)
    bomb = gzip.compress(make_tar(entry("zeros", bytes(8 << 20))))
    assert len(bomb) * addarchive.MAX_RATIO < 8 << 20
    with pytest.raises(UsageError, match="decompression bomb"):
        add(tmp_path, "bomb.tar.gz", bomb)


PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\nbin:x:2:2::/:/x\n"
GROUP = "root:x:0:\nstaff:x:50:app\nbin:x:3:\n"


@pytest.mark.parametrize(
    ("value", "owner"),
    [
        ("app", Owner(1001, 1001)),  # no group named app: the same number
        ("bin", Owner(2, 3)),  # the group named as the user
        ("app:staff", Owner(1001, 50)),
        ("7:staff", Owner(7, 50)),
        ("app:9", Owner(1001, 9)),
        ("10", Owner(10, 10)),
        ("root", Owner(0, 0)),
    ],
)
def test_chown_by_name_reads_the_stage_files(value: str, owner: Owner) -> None:
    assert parse_chown(value, IdFiles(PASSWD, GROUP)) == owner


@pytest.mark.parametrize("value", ["nobody", "app:wheel", "x:y:z"])
def test_chown_of_unknown_names_is_an_error(value: str) -> None:
    with pytest.raises(UsageError, match="--chown"):
        parse_chown(value, IdFiles(PASSWD, GROUP))


# -- URLs -------------------------------------------------------------------------------

BODY = b"downloaded content\n" * 100


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/files/tool.sh")
            self.end_headers()
            return
        if not self.path.startswith("/files/"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.send_header("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_url_is_downloaded_with_its_time_and_digest(tmp_path: Path, server: str) -> None:
    got = fetch.download(f"{server}/redirect", tmp_path / "f")
    assert got.path.read_bytes() == BODY
    assert got.digest == "sha256:" + hashlib.sha256(BODY).hexdigest()
    assert got.mtime == 1445412480
    assert got.name == "redirect"


def test_a_wrong_checksum_or_a_large_body_is_refused(tmp_path: Path, server: str) -> None:
    url = f"{server}/files/tool.sh"
    good = "sha256:" + hashlib.sha256(BODY).hexdigest()
    assert fetch.download(url, tmp_path / "a", checksum=good).size == len(BODY)
    with pytest.raises(fetch.DownloadError, match="digest"):
        fetch.download(url, tmp_path / "b", checksum="sha256:" + "0" * 64)
    with pytest.raises(fetch.DownloadError, match="more than"):
        fetch.download(url, tmp_path / "c", max_bytes=100)
    with pytest.raises(fetch.DownloadError, match="404"):
        fetch.download(f"{server}/missing", tmp_path / "d")


def test_url_checks() -> None:
    assert fetch.is_url("https://example.org/x") and not fetch.is_url("ftp://x/y")
    with pytest.raises(UsageError):
        fetch.url_name("http://host/")
    with pytest.raises(UsageError):
        fetch.check_checksum("md5:abc")


def test_only_the_host_platform_is_built() -> None:
    from rootless.build.service import check_platform  # noqa: PLC0415
    from rootless.images.manifest import host_platform  # noqa: PLC0415

    host = host_platform()
    check_platform(str(host))
    other = "arm64" if host.architecture != "arm64" else "amd64"
    with pytest.raises(UsageError, match="only for this host's platform"):
        check_platform(f"linux/{other}")
    with pytest.raises(UsageError, match="invalid platform"):
        check_platform("amd64")
