"""``rctl build``'s ADD (local archives, URLs) and ``--chown`` by name, as uid 1000."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostkit import Rctl

BUSYBOX = "127.0.0.1:5000/test/busybox"


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over http on the loopback address (the test host has no internet)."""
    root = tmp_path / "www"
    root.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(root),
         str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            with socket.socket() as conn:
                if conn.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield root, f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def app_archive() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data, mode in (("app/run.sh", b"echo from the archive\n", 0o755),):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), mode, 5, 6
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_add_extracts_archives_downloads_urls_and_chowns_by_name(
    rctl: Rctl, tmp_path: Path, web: tuple[Path, str]
) -> None:
    root, url = web
    body = b"a downloaded tool\n"
    (root / "tool.txt").write_bytes(body)
    os.utime(root / "tool.txt", (1_000_000_000, 1_000_000_000))
    digest = hashlib.sha256(body).hexdigest()
    context = tmp_path / "context"
    context.mkdir()
    (context / "app.tar.gz").write_bytes(app_archive())
    (context / "notes.txt").write_text("notes\n")
    (context / "Dockerfile").write_text(f"""\
FROM {BUSYBOX}
ADD app.tar.gz /opt/
ADD --checksum=sha256:{digest} {url}/tool.txt /usr/local/
ADD --chown=nobody:nogroup notes.txt /notes
""")
    rctl("build", "-t", "localhost/added", str(context))
    out = rctl("run", "--rm", "localhost/added", "sh", "-c",
               "sh /opt/app/run.sh; stat -c '%n %u:%g %a %Y' /opt/app/run.sh "
               "/usr/local/tool.txt; stat -c '%n %u:%g %a' /notes")  # fmt: skip
    assert out.stdout.splitlines() == [
        "from the archive",
        "/opt/app/run.sh 5:6 755 0",
        "/usr/local/tool.txt 0:0 600 1000000000",  # docker's mode; Last-Modified's time
        "/notes 65534:65534 644",
    ]
    again = rctl("build", str(context)).stdout
    assert again.count("--> Using cache") == 3  # the download is the same bytes
    (context / "Dockerfile").write_text(f"FROM {BUSYBOX}\nADD --checksum=sha256:{'0' * 64} "
                                        f"{url}/tool.txt /t\n")  # fmt: skip
    wrong = rctl("build", str(context), check=False)
    assert wrong.returncode != 0 and "not sha256:000" in wrong.stderr


def test_add_refuses_a_hostile_archive(rctl: Rctl, tmp_path: Path) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        link = tarfile.TarInfo("etc")
        link.type, link.linkname = tarfile.SYMTYPE, "/home/rctltest"
        tar.addfile(link)
        tar.addfile(tarfile.TarInfo("etc/planted"), io.BytesIO(b""))
    (tmp_path / "evil.tar").write_bytes(out.getvalue())
    (tmp_path / "Dockerfile").write_text(f"FROM {BUSYBOX}\nADD evil.tar /\n")
    refused = rctl("build", str(tmp_path), check=False)
    assert refused.returncode == 125
    assert "below a symbolic link of the archive" in refused.stderr
    assert not Path("/home/rctltest/planted").exists()
