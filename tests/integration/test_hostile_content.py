"""Images and containers that try to reach the user's files through rctl, in the test host
as uid 1000: rctl reads an image's /etc/passwd and /etc/group on the host (to resolve
users, to add the ``--userns keep-id`` user), resolved in the image's own root, as regular
files only (rootless/containers/untrusted.py); ``rctl cp`` out of a container never gives
an existing host directory the container's mode (rootless/containers/copy.py).
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostkit import Rctl

BUSYBOX = "127.0.0.1:5000/test/busybox"
KEEP = ("--userns", "keep-id")
SECRET = "not-for-containers-3f9a"


@pytest.fixture(autouse=True)
def no_leftover_containers(rctl: Rctl) -> Iterator[None]:
    yield
    for record in json.loads(rctl("ps", "-a", "--format", "json", check=False).stdout or "[]"):
        rctl("rm", "-f", record["id"], check=False)


def _as_root(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    if info.name in ("./etc/passwd", "./etc/group"):
        return None  # the test puts its own there
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def image_with(rctl: Rctl, name: str, *entries: tarfile.TarInfo) -> str:
    """busybox's files with ``entries`` (bodiless: links, FIFOs) as /etc/passwd and
    /etc/group, imported as ``name`` (``rctl import``, as the registry would send it)."""
    rctl("pull", "-q", BUSYBOX)
    found = sorted(rctl.data.glob("layers/*/*/diff/bin/busybox"))
    assert found, "busybox's layer is not in the store"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(found[0].parent.parent, arcname=".", filter=_as_root)
        for entry in entries:
            tar.addfile(entry)
    rctl("import", "--change", 'CMD ["sh"]', "-", name, input_data=buffer.getvalue())
    return name


def link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def test_links_to_a_host_file_do_not_put_it_in_the_container(rctl: Rctl, tmp_path: Path) -> None:
    secret = tmp_path / "id_ed25519"
    secret.write_text(f"{SECRET}\n")
    # From the layer's etc/, enough .. reach the host's /; in the image, its own /.
    image = image_with(
        rctl, "leaky",
        link("./etc/passwd", "../" * 30 + str(secret).lstrip("/")),
        link("./etc/group", str(secret)),
    )  # fmt: skip
    out = rctl("run", "--rm", *KEEP, image, "sh", "-c",
               "cat /etc/passwd /etc/group; id -u", timeout=120)  # fmt: skip
    assert SECRET not in out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[-1] == str(os.getuid())
    # The image had no passwd and group of its own: the files hold the user's entries only.
    assert len(lines) == 3 and lines[0].split(":")[2] == lines[-1], lines
    plain = rctl("run", "--rm", image, "sh", "-c", "cat /etc/passwd /etc/group", check=False)
    assert SECRET not in plain.stdout + plain.stderr


def test_a_fifo_as_passwd_is_refused_at_once(rctl: Rctl) -> None:
    fifo = tarfile.TarInfo("./etc/passwd")
    fifo.type = tarfile.FIFOTYPE
    image = image_with(rctl, "fifo", fifo)
    for options in (KEEP, ()):
        # A blocking read would hang here until the timeout fails the test.
        out = rctl("run", "--rm", *options, image, "true", check=False, timeout=60)
        assert out.returncode == 125, out
        assert "the image's /etc/passwd is a FIFO, not a regular file" in out.stderr
    assert json.loads(rctl("ps", "-a", "--format", "json").stdout) == []


def test_cp_of_a_world_writable_directory_leaves_the_host_directory_private(
    rctl: Rctl, tmp_path: Path
) -> None:
    rctl("run", "-d", "--name", "box", BUSYBOX, "sleep", "300")
    rctl("exec", "box", "sh", "-c", "mkdir -p /shared/sub && chmod 0777 /shared /shared/sub"
         " && echo data > /shared/file && touch -d 2001-01-01 /shared")  # fmt: skip
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (tmp_path / "shared").mkdir(mode=0o700)
    rctl("cp", "box:/shared/.", str(private))
    rctl("cp", "box:/shared", str(tmp_path))  # into the existing tmp_path/shared
    rctl("stop", "-t", "0", "box")
    rctl("cp", "box:/shared/.", str(private))  # a stopped container's root, mounted
    for mine in (private, tmp_path / "shared"):
        assert (mine / "file").read_text() == "data\n"
        st = mine.stat()
        assert stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
        assert st.st_uid == os.getuid() and st.st_mtime > 1e9 + 1e8
    assert stat.S_IMODE((private / "sub").stat().st_mode) == 0o777  # the copy's own: docker's
