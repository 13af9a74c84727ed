"""``--userns keep-id`` in the test host, as uid 1000 (subuid 100000:65536): the user is
themselves inside, the image's files keep their owners, bind mounts are the user's
(rootless/containers/keepid.py).
"""

from __future__ import annotations

import json
import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostkit import Rctl, fetch, free_port, run, wait_for

R = "127.0.0.1:5000/test"
KEEP = ("--userns", "keep-id")


def units() -> set[str]:
    out = run(
        "systemctl", "--user", "list-units", "rctl-*", "--all", "--no-legend", "--plain"
    ).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.fixture(autouse=True)
def no_leftover_units(rctl: Rctl) -> Iterator[None]:
    before = units()
    yield
    for record in json.loads(rctl("ps", "-a", "--format", "json", check=False).stdout or "[]"):
        rctl("rm", "-f", record["id"], check=False)
    assert units() <= before, "a container unit outlived its test"


def test_the_user_is_themselves_and_image_files_keep_their_owners(rctl: Rctl) -> None:
    me = pwd.getpwuid(os.getuid())
    script = (
        "id -u; id -g; stat -c %u:%g /etc/passwd /bin/busybox; "
        'grep "^$(id -un):" /etc/passwd; cat /proc/self/uid_map; echo HOME=$HOME'
    )
    out = rctl("run", "--rm", *KEEP, f"{R}/busybox", "sh", "-c", script).stdout.splitlines()
    assert out[0] == str(os.getuid()) and out[1] == str(os.getgid())
    assert out[2] == "0:0" and out[3] == "0:0", out  # root's files are root's inside
    entry = out[4].split(":")
    assert entry[0] == me.pw_name and entry[2:4] == [str(os.getuid()), str(os.getgid())]
    # uid_map: 0..uid-1 and uid+1.. from the subordinate IDs, uid itself (in the
    # launcher's namespace: 1.., 0, uid+1..).
    maps = [line.split() for line in out[5:-1]]
    assert [str(os.getuid()), "0", "1"] in maps, maps
    assert out[-1] == "HOME=/"


def test_bind_mounts_are_the_user_s_both_ways(rctl: Rctl, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "mine").write_text("x")
    out = rctl(
        "run", "--rm", *KEEP, "-v", f"{shared}:/data", f"{R}/busybox",
        "sh", "-c", "stat -c %u:%g /data/mine; echo hi > /data/made; touch /data/mine",
    ).stdout  # fmt: skip
    assert out.split() == [f"{os.getuid()}:{os.getgid()}"]
    made = (shared / "made").stat()
    assert (made.st_uid, made.st_gid) == (os.getuid(), os.getgid())
    assert (shared / "made").read_text() == "hi\n"


def test_user_0_runs_as_root_and_files_in_the_root_stay_consistent(rctl: Rctl) -> None:
    out = rctl(
        "run", "--rm", *KEEP, "--user", "0", f"{R}/busybox",
        "sh", "-c", "id -u; touch /etc/new; stat -c %u:%g /etc/new",
    ).stdout.split()  # fmt: skip
    assert out == ["0", "0:0"]
    # The user's own files in the r/w layer are theirs again on the next start.
    rctl("create", "--name", "k", *KEEP, f"{R}/busybox",
         "sh", "-c", "touch /tmp/f; stat -c %u:%g /tmp/f /tmp")  # fmt: skip
    out = rctl("start", "-a", "k").stdout.split()
    assert out == [f"{os.getuid()}:{os.getgid()}", "0:0"]
    assert json.loads(rctl("inspect", "k").stdout)[0]["Driver"] == "fuse-overlayfs"
    out = rctl("start", "-a", "k").stdout.split()
    assert out == [f"{os.getuid()}:{os.getgid()}", "0:0"]


def test_exec_is_the_user_and_published_ports_work(rctl: Rctl) -> None:
    port = free_port()
    rctl(
        # The image's own command, as the user, on port 80: ports below 1024 are open to
        # everyone in the container's network namespace.
        "run", "-d", "--name", "web", *KEEP, "-p", f"{port}:80", f"{R}/httpd",
    )  # fmt: skip

    assert (
        wait_for("the page", lambda: fetch(f"http://127.0.0.1:{port}/"))
        == "<h1>rctl test httpd</h1>\n"
    )
    assert rctl("exec", "web", "id", "-u").stdout == f"{os.getuid()}\n"
    assert rctl("exec", "--user", "0", "web", "id", "-u").stdout == "0\n"
    rctl("rm", "-f", "web")


def test_a_volume_filled_from_the_image_keeps_the_image_s_owners(rctl: Rctl) -> None:
    # test/layered's /data holds files of root, 1000 and 65534: a named volume filled from
    # it (copy-up) must show them as the image does, not root's as the user's.
    script = "stat -c '%n %u:%g' /data /data/keep.txt /data/owned-1000 /data/owned-65534"
    image_view = rctl("run", "--rm", *KEEP, f"{R}/layered", "sh", "-c", script).stdout
    try:
        volume_view = rctl(
            "run", "--rm", *KEEP, "-v", "keepvol:/data", f"{R}/layered", "sh", "-c", script
        ).stdout
    finally:
        rctl("volume", "rm", "keepvol", check=False)
    assert image_view.split("\n")[0] == "/data 0:0", image_view
    assert volume_view == image_view


def test_run_rm_leaves_nothing_behind(rctl: Rctl) -> None:
    before = units()
    rctl("run", "--rm", *KEEP, f"{R}/busybox", "true")
    assert rctl("ps", "-aq").stdout == ""
    assert not list((rctl.data / "containers").glob("*"))
    mountinfo = Path("/proc/self/mountinfo").read_text()
    assert str(rctl.data) not in mountinfo
    assert run("pgrep", "-u", str(os.getuid()), "-f", str(rctl.data), check=False).stdout == ""
    assert units() <= before


def test_bad_values_and_bridges_are_refused(rctl: Rctl) -> None:
    bad = rctl("run", "--rm", "--userns", "auto", f"{R}/busybox", "true", check=False)
    assert bad.returncode == 125 and "--userns" in bad.stderr
    rctl("network", "create", "kn")
    bridged = rctl("run", "--rm", *KEEP, "--network", "kn", f"{R}/busybox", "true", check=False)
    assert bridged.returncode == 125 and "bridge" in bridged.stderr
    assert rctl("run", "--rm", "--userns", "host", f"{R}/busybox", "id", "-u").stdout == "0\n"
