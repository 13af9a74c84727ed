"""Images when things go wrong: wrong credentials, a registry that dies mid-pull, a TTY.

A second registry process (the same docker-registry binary, read-only over the seeded
storage, optionally with htpasswd auth) runs as the test user on a free port, so a test can
require a password or kill it halfway through a download.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import select
import socket
import subprocess
import tarfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostkit import Rctl, free_port, wait_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    # deprecated, but the only stdlib bcrypt; docker-registry's htpasswd needs bcrypt
    import crypt

USER, PASSWORD = "tester", "s3cret"


class SideRegistry:
    def __init__(self, root: Path, *, auth: bool) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        config = [
            "version: 0.1",
            "log: {level: error}",
            "storage:",
            "  filesystem: {rootdirectory: /var/lib/docker-registry}",
            "  maintenance: {readonly: {enabled: true}}",
            f"http: {{addr: '{self.address}'}}",
        ]
        if auth:
            htpasswd = root / "htpasswd"
            htpasswd.write_text(
                f"{USER}:{crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n"
            )
            config += ["auth:", f"  htpasswd: {{realm: test, path: {htpasswd}}}"]
        self.config = root / f"registry-{self.port}.yml"
        self.config.write_text("\n".join(config) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(f"the side registry on {self.address}", listening)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def side_registry(tmp_path: Path) -> Iterator[SideRegistry]:
    registry = SideRegistry(tmp_path, auth=False)
    registry.start()
    yield registry
    registry.kill()


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[SideRegistry]:
    registry = SideRegistry(tmp_path, auth=True)
    registry.start()
    yield registry
    registry.kill()


def one_line_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 125, proc
    lines = proc.stderr.strip().splitlines()
    assert lines[-2].startswith("Error: ") and needle in lines[-2], proc.stderr
    assert lines[-1].startswith("Hint: "), proc.stderr
    assert "Traceback" not in proc.stderr


def test_wrong_credentials_are_refused_and_right_ones_pull(
    rctl: Rctl, auth_registry: SideRegistry
) -> None:
    image = f"{auth_registry.address}/test/busybox"
    anonymous = rctl("pull", image, check=False)
    one_line_error(anonymous, "")
    assert "rctl login" in anonymous.stderr
    wrong = rctl(
        "login",
        "-u",
        USER,
        "--password-stdin",
        auth_registry.address,
        input_data=b"wrong\n",
        check=False,
    )
    assert wrong.returncode == 125
    assert b"Error: " in wrong.stderr and b"Traceback" not in wrong.stderr
    assert (
        not Path(rctl.env["REGISTRY_AUTH_FILE"]).exists()
        or auth_registry.address not in Path(rctl.env["REGISTRY_AUTH_FILE"]).read_text()
    )
    rctl(
        "login",
        "-u",
        USER,
        "--password-stdin",
        auth_registry.address,
        input_data=f"{PASSWORD}\n".encode(),
    )
    assert rctl("pull", "-q", image).stdout.startswith("sha256:")


def test_registry_dying_mid_pull_leaves_the_store_as_it_was(
    rctl: Rctl, side_registry: SideRegistry
) -> None:
    rctl("pull", "-q", f"{side_registry.address}/test/busybox")
    before = rctl("images", "--format", "json").stdout
    proc = rctl.popen("pull", f"{side_registry.address}/test/big")
    partial = rctl.data / "blobs/partial"
    try:
        wait_for(
            "part of test/big",
            lambda: any(p.stat().st_size > 1 << 20 for p in partial.iterdir()),
            timeout=60,
        )
    finally:
        side_registry.kill()
    _, err = proc.communicate(timeout=120)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, "", err)
    one_line_error(result, "")
    assert rctl("images", "--format", "json").stdout == before
    # The next pull, once the registry is back, resumes and completes.
    side_registry.start()
    image_id = rctl("pull", "-q", f"{side_registry.address}/test/big").stdout.strip()
    ids = [row["id"] for row in json.loads(rctl("images", "--format", "json").stdout)]
    assert image_id in ids and len(ids) == 2


def test_progress_bars_on_a_tty_and_plain_lines_off_it(rctl: Rctl) -> None:
    plain = rctl("pull", "127.0.0.1:5000/test/httpd")
    assert "downloading" in plain.stderr and "\x1b[" not in plain.stderr
    rctl("rmi", "127.0.0.1:5000/test/httpd")
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(rctl.env)
        os.environ["COLUMNS"] = "120"
        os.execvp("rctl", ["rctl", "pull", "127.0.0.1:5000/test/httpd"])
    output = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    text = output.decode(errors="replace")
    assert "━" in text  # rich's bar
    assert "Resolved 127.0.0.1:5000/test/httpd:latest" in text


def waiting_for_flock(path: Path) -> bool:
    """Whether some process is blocked in flock(2) on ``path`` (``->`` lines of /proc/locks)."""
    inode = path.stat().st_ino
    return any(
        line.split()[1] == "->" and line.split()[6].endswith(f":{inode}")
        for line in Path("/proc/locks").read_text().splitlines()
    )


def test_an_image_removed_while_create_waits_for_the_lock_fails_it_cleanly(rctl: Rctl) -> None:
    rctl("pull", "-q", "127.0.0.1:5000/test/busybox")
    lock_path = rctl.data / "store.lock"
    lock = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = rctl.popen("create", "--name", "racer", "127.0.0.1:5000/test/busybox", "true")
        wait_for("create waiting for the store's lock", lambda: waiting_for_flock(lock_path))
        # Meanwhile an rmi: the image's record goes, then its layer directories.
        index = rctl.data / "images.json"
        index.write_text(json.dumps({**json.loads(index.read_text()), "images": []}))
        for n, layer in enumerate(p for p in (rctl.data / "layers/overlay").iterdir()):
            layer.rename(layer.parent / f".tmp-removed-{n}")
    finally:
        os.close(lock)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 125, err
    assert "was removed while the container was being created" in err
    assert "Traceback" not in err
    assert rctl("ps", "-a", "-q").stdout.strip() == ""


def test_loading_a_malformed_archive_is_one_error_and_changes_nothing(
    rctl: Rctl, tmp_path: Path
) -> None:
    rctl("pull", "-q", "127.0.0.1:5000/test/busybox")
    before = rctl("images", "--format", "json").stdout
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as tar:
        data = json.dumps([{"Config": "../../etc/passwd", "Layers": ["/x"]}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    failed = rctl("load", "-i", str(archive), check=False)
    assert failed.returncode == 125, failed
    lines = failed.stderr.strip().splitlines()
    assert lines[-2].startswith("Error: ") and lines[-1].startswith("Hint: "), failed.stderr
    assert "Traceback" not in failed.stderr
    assert rctl("images", "--format", "json").stdout == before
