"""The test host itself: every real part rctl is built on works here, as uid 1000.

These tests prove the ground the product's integration tests stand on: the user's systemd
manager and journal, newuidmap's 65537-ID mapping, overlay mounts inside a user namespace,
the user-mode network helpers and the seeded registry. In tier vm, cgroup limits are enforced.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import subprocess
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from hostkit import UserNamespace, free_port, run, wait_for

REGISTRY = "http://127.0.0.1:5000"
TEST_IMAGES = ("busybox", "layered", "httpd", "debian", "big", "multiarch")
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


def unit_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_runs_as_the_unprivileged_user() -> None:
    assert os.getuid() == 1000
    assert os.environ.get("XDG_RUNTIME_DIR") == "/run/user/1000"
    assert Path("/run/user/1000/bus").is_socket()


def test_systemd_run_user_wait_returns_the_exit_status() -> None:
    assert run("systemd-run", "--user", "--wait", "--quiet", "true").returncode == 0
    failed = run("systemd-run", "--user", "--wait", "--quiet", "sh", "-c", "exit 3", check=False)
    assert failed.returncode == 3


def test_transient_unit_output_reaches_the_user_journal() -> None:
    unit = unit_name("rctl-hosttest-journal")
    marker = f"marker-{uuid.uuid4().hex}"
    run("systemd-run", "--user", "--wait", "--quiet", f"--unit={unit}", "echo", marker)

    def logged() -> bool:
        out = run("journalctl", "--user", "-u", unit, "-o", "cat", "--no-pager", check=False)
        return marker in out.stdout

    wait_for(f"{marker} in journalctl --user -u {unit}", logged)


def test_newuidmap_maps_65537_ids(userns: Callable[..., UserNamespace]) -> None:
    ns = userns("cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; id -u")
    ns.map_ids()
    result = ns.go()
    assert result.returncode == 0, result.stderr
    uid_map, gid_map, whoami = result.stdout.split("--\n")
    for mapping in (uid_map, gid_map):
        rows = [tuple(map(int, line.split())) for line in mapping.splitlines()]
        assert rows == [(0, 1000, 1), (1, 100000, 65536)]
        assert sum(count for _, _, count in rows) == 65537
    assert whoami.strip() == "0"


def make_layers(root: Path) -> dict[str, Path]:
    dirs = {name: root / name for name in ("lower", "upper", "work", "merged")}
    for path in dirs.values():
        path.mkdir()
    (dirs["lower"] / "gone").write_text("lower\n")
    (dirs["lower"] / "kept").write_text("lower\n")
    return dirs


def overlay_script(mount: str, d: dict[str, Path]) -> str:
    m = d["merged"]
    return (
        f"set -e; {mount}; echo new > {m}/new; rm {m}/gone; touch {m}/child; chown 1:1 {m}/child;"
        f" cat {m}/kept; ls {m}"
    )


def assert_upper_layer(d: dict[str, Path]) -> None:
    upper = d["upper"]
    # Created by uid 0 in the namespace: owned by the user outside.
    assert (upper / "new").stat().st_uid == 1000
    # Chowned to uid 1 inside: the first subordinate ID outside.
    assert (upper / "child").stat().st_uid == 100000
    # The deletion is a whiteout in the upper layer; the lower layer is untouched.
    whiteout = upper / "gone"
    assert (whiteout.exists() and stat.S_ISCHR(whiteout.lstat().st_mode)) or (
        upper / ".wh.gone"
    ).exists()
    assert (d["lower"] / "gone").read_text() == "lower\n"


def test_kernel_overlay_mounts_in_a_user_namespace(
    userns: Callable[..., UserNamespace], tmp_path: Path
) -> None:
    d = make_layers(tmp_path)
    opts = f"lowerdir={d['lower']},upperdir={d['upper']},workdir={d['work']}"
    ns = userns(overlay_script(f"mount -t overlay overlay -o {opts} {d['merged']}", d))
    ns.map_ids()
    result = ns.go()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["lower", "child", "kept", "new"]
    assert_upper_layer(d)


def test_fuse_overlayfs_mounts_in_a_user_namespace(
    userns: Callable[..., UserNamespace], tmp_path: Path
) -> None:
    d = make_layers(tmp_path)
    opts = f"lowerdir={d['lower']},upperdir={d['upper']},workdir={d['work']}"
    mount = f"fuse-overlayfs -o {opts} {d['merged']}"
    ns = userns(
        overlay_script(mount, d)
        + f"; grep -c fuse-overlayfs /proc/self/mounts; fusermount3 -u {d['merged']}"
    )
    ns.map_ids()
    result = ns.go()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["lower", "child", "kept", "new", "1"]
    assert_upper_layer(d)


def serve_in_netns(
    userns: Callable[..., UserNamespace], tmp_path: Path
) -> tuple[UserNamespace, str]:
    """busybox httpd on port 8080 in a new network namespace; returns it and the page text."""
    page = f"served from a netns {uuid.uuid4().hex}\n"
    (tmp_path / "index.html").write_text(page)
    ns = userns(f"ip link set lo up; exec busybox httpd -f -p 8080 -h {tmp_path}", net=True)
    ns.map_ids()
    return ns, page


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def fetch_eventually(url: str) -> str:
    def attempt() -> str | None:
        try:
            return fetch(url)
        except OSError:
            return None

    return str(wait_for(url, attempt))


def test_pasta_forwards_a_port_into_a_namespace(
    userns: Callable[..., UserNamespace], tmp_path: Path
) -> None:
    ns, page = serve_in_netns(userns, tmp_path)
    port = free_port()
    pasta = subprocess.Popen(
        ["pasta", "--foreground", "--quiet", "--config-net", "-t", f"{port}:8080", "-u", "none",
         "-T", "none", "-U", "none", str(ns.pid)],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        ns.release()
        assert fetch_eventually(f"http://127.0.0.1:{port}/") == page
    finally:
        pasta.kill()
        pasta.wait()


def test_slirp4netns_forwards_a_port_into_a_namespace(
    userns: Callable[..., UserNamespace], tmp_path: Path
) -> None:
    ns, page = serve_in_netns(userns, tmp_path)
    api = tmp_path / "slirp.sock"
    slirp = subprocess.Popen(
        ["slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback",
         f"--api-socket={api}", str(ns.pid), "tap0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for("slirp4netns's API socket", api.is_socket)
        port = free_port()
        request = {
            "execute": "add_hostfwd",
            "arguments": {
                "proto": "tcp",
                "host_addr": "127.0.0.1",
                "host_port": port,
                "guest_port": 8080,
            },
        }
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(api))
            s.sendall(json.dumps(request).encode())
            s.shutdown(socket.SHUT_WR)
            reply = json.loads(s.recv(4096))
        assert "return" in reply, reply
        ns.release()
        assert fetch_eventually(f"http://127.0.0.1:{port}/") == page
    finally:
        slirp.kill()
        slirp.wait()


def registry_get(path: str, accept: str = MANIFEST_TYPES) -> tuple[bytes, str]:
    request = urllib.request.Request(REGISTRY + path, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read(), response.headers.get("Content-Type", "")


def test_registry_serves_the_seeded_images() -> None:
    catalog = json.loads(registry_get("/v2/_catalog", "application/json")[0])
    # Other tests push more repositories; the seeded ones must all be there.
    assert {f"test/{name}" for name in TEST_IMAGES} <= set(catalog["repositories"])
    for name in TEST_IMAGES:
        tags = json.loads(registry_get(f"/v2/test/{name}/tags/list", "application/json")[0])
        assert tags["tags"] == ["latest"]

    body, media_type = registry_get("/v2/test/busybox/manifests/latest")
    assert media_type == "application/vnd.docker.distribution.manifest.v2+json"
    manifest = json.loads(body)
    assert len(manifest["layers"]) == 1
    config_digest = manifest["config"]["digest"]
    config = registry_get(f"/v2/test/busybox/blobs/{config_digest}", "*/*")[0]
    assert "sha256:" + hashlib.sha256(config).hexdigest() == config_digest

    index = json.loads(registry_get("/v2/test/multiarch/manifests/latest")[0])
    arches = sorted(m["platform"]["architecture"] for m in index["manifests"])
    assert arches == ["amd64", "arm64"]

    layered = json.loads(registry_get("/v2/test/layered/manifests/latest")[0])
    assert len(layered["layers"]) >= 4


@pytest.mark.vm
def test_cgroup_controllers_are_delegated_to_the_user() -> None:
    manager = Path("/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service")
    controllers = (manager / "cgroup.controllers").read_text().split()
    assert {"cpu", "cpuset", "io", "memory", "pids"} <= set(controllers)


@pytest.mark.vm
def test_memory_max_oom_kills_a_unit_that_exceeds_it() -> None:
    hog = "python3 -c 'b = bytearray(256 * 1024 * 1024); print(len(b))'"
    within = unit_name("rctl-hosttest-mem-ok")
    ok = run("systemd-run", "--user", "--wait", "--quiet", f"--unit={within}",
             "-p", "MemoryMax=512M", "sh", "-c", hog, check=False)  # fmt: skip
    assert ok.returncode == 0, ok.stderr

    over = unit_name("rctl-hosttest-mem-oom")
    limits = ["-p", "MemoryMax=64M", "-p", "MemorySwapMax=0"]
    killed = run("systemd-run", "--user", "--wait", "--quiet", f"--unit={over}", *limits,
                 "sh", "-c", hog, check=False)  # fmt: skip
    assert killed.returncode != 0
    result = run("systemctl", "--user", "show", "-p", "Result", "--value", over).stdout.strip()
    run("systemctl", "--user", "reset-failed", over, check=False)
    assert result == "oom-kill"
