"""Volumes in the test host, as uid 1000: bind mounts, named and anonymous volumes,
``--mount``, ``--volumes-from``, ``:U``, the ``rctl volume`` commands.

Host directories live under the ``rctl`` fixture's root, which is removed inside the user
namespace after each test (``:U`` leaves files of mapped IDs there).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hostkit import Rctl, run, wait_for

R = "127.0.0.1:5000/test"
BUSYBOX = f"{R}/busybox"


def units() -> list[str]:
    out = run(
        "systemctl", "--user", "list-units", "rctl-*", "--all", "--no-legend", "--plain"
    ).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def no_leftover_units(rctl: Rctl) -> object:
    before = set(units())
    yield
    for record in json.loads(rctl("ps", "-a", "--format", "json", check=False).stdout or "[]"):
        rctl("rm", "-f", record["id"], check=False)
    assert set(units()) <= before, "a container unit outlived its test"


def host_dir(rctl: Rctl, name: str) -> Path:
    path = rctl.root / "host" / name
    path.mkdir(parents=True)
    return path


def volumes(rctl: Rctl) -> list[str]:
    return rctl("volume", "ls", "-q").stdout.split()


def mounts_of(rctl: Rctl, container: str) -> list[dict[str, Any]]:
    doc = json.loads(rctl("inspect", container).stdout)[0]
    mounts: list[dict[str, Any]] = doc["Mounts"]
    return mounts


def test_bind_mounts_read_write_read_only_and_relative(rctl: Rctl) -> None:
    site = host_dir(rctl, "site")
    rctl("run", "--rm", "-v", f"{site}:/data", BUSYBOX, "sh", "-c", "echo hi > /data/f")
    assert (site / "f").read_text() == "hi\n"
    assert (site / "f").stat().st_uid == os.getuid()  # container root is the user
    ro = rctl(
        "run", "--rm", "-v", f"{site}:/data:ro", BUSYBOX, "sh", "-c",
        "cat /data/f; echo x > /data/g", check=False,
    )  # fmt: skip
    assert ro.returncode != 0 and ro.stdout == "hi\n"
    assert "Read-only file system" in ro.stderr
    assert not (site / "g").exists()
    # ./site resolves against the CLI's working directory.
    relative = subprocess.run(
        ["rctl", "run", "--rm", "-v", "./site:/srv:ro,z", BUSYBOX, "cat", "/srv/f"],
        cwd=site.parent, env=rctl.env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert relative.returncode == 0 and relative.stdout == "hi\n", relative.stderr


def test_named_volume_shared_by_two_running_containers_outlives_them(rctl: Rctl) -> None:
    rctl("run", "-d", "--name", "a", "-v", "shared:/data", BUSYBOX, "sleep", "300")
    rctl("run", "-d", "--name", "b", "-v", "shared:/data:ro", BUSYBOX, "sleep", "300")
    assert volumes(rctl) == ["shared"]  # created on first use, once
    rctl("exec", "a", "sh", "-c", "echo from-a > /data/x")
    assert rctl("exec", "b", "cat", "/data/x").stdout == "from-a\n"
    assert rctl("exec", "b", "sh", "-c", "echo no > /data/y", check=False).returncode != 0
    doc = json.loads(rctl("volume", "inspect", "shared").stdout)[0]
    assert doc["Name"] == "shared" and doc["Driver"] == "local" and doc["Scope"] == "local"
    assert Path(doc["Mountpoint"], "x").read_text() == "from-a\n"
    mounts = mounts_of(rctl, "b")
    assert [(m["Type"], m["Name"], m["Destination"], m["RW"]) for m in mounts] == [
        ("volume", "shared", "/data", False)
    ]
    busy = rctl("volume", "rm", "shared", check=False)
    assert busy.returncode == 125 and "being used" in busy.stderr
    assert len(busy.stderr.strip().splitlines()) == 2  # Error + Hint
    rctl("rm", "-f", "-v", "a", "b")  # -v never removes a named volume
    kept = rctl("run", "--rm", "-v", "shared:/data", BUSYBOX, "cat", "/data/x")
    assert kept.stdout == "from-a\n"
    assert rctl("volume", "ls", "--filter", "dangling=true", "-q").stdout.split() == ["shared"]
    assert rctl("volume", "rm", "shared").stdout.split() == ["shared"]
    assert volumes(rctl) == [] and not Path(doc["Mountpoint"]).exists()


def test_volume_commands(rctl: Rctl) -> None:
    assert rctl("volume", "create", "--label", "app=web", "web-data").stdout == "web-data\n"
    assert rctl("volume", "create", "other").stdout == "other\n"
    again = rctl("volume", "create", "other", check=False)
    assert again.returncode == 125 and "already exists" in again.stderr
    listed = json.loads(rctl("volume", "ls", "--format", "json").stdout)
    assert [v["Name"] for v in listed] == ["other", "web-data"]
    assert listed[1]["Labels"] == {"app": "web"}
    assert rctl("volume", "ls", "-q", "--filter", "label=app=web").stdout == "web-data\n"
    assert rctl("volume", "ls", "-q", "--filter", "name=oth").stdout == "other\n"
    assert "web-data" in rctl("volume", "ls").stdout
    rctl("create", "--name", "user", "-v", "other:/o", BUSYBOX, "true")  # created, not running
    busy = rctl("volume", "rm", "other", check=False)
    assert busy.returncode == 125 and "user" in busy.stderr
    assert rctl("volume", "prune", "-f").stdout.split() == ["web-data"]
    assert rctl("volume", "rm", "-f", "other").stdout.split() == ["other"]
    assert rctl("ps", "-aq").stdout == ""  # -f removed the container using it
    for args in (["inspect", "nosuch"], ["rm", "nosuch"], ["create", "bad/name"]):
        failed = rctl("volume", *args, check=False)
        assert failed.returncode == 125 and failed.stderr.startswith("Error: "), args
    assert volumes(rctl) == []


def test_anonymous_volumes_go_with_rm_v_and_run_rm(rctl: Rctl) -> None:
    rctl("run", "-d", "--name", "c", "-v", "keep:/keep", "-v", "/anon", BUSYBOX, "sleep", "300")
    anon = next(m for m in mounts_of(rctl, "c") if m["Destination"] == "/anon")
    assert len(str(anon["Name"])) == 64 and sorted(volumes(rctl)) == sorted(["keep", anon["Name"]])
    rctl("exec", "c", "sh", "-c", "echo a > /anon/f")
    # --volumes-from takes both, the anonymous one stays c's.
    shared = rctl("run", "--rm", "--volumes-from", "c:ro", BUSYBOX, "sh", "-c",
                  "cat /anon/f; ls /keep; touch /keep/no", check=False)  # fmt: skip
    assert shared.stdout == "a\n" and shared.returncode != 0
    assert sorted(volumes(rctl)) == sorted(["keep", anon["Name"]])
    rctl("rm", "-f", "-v", "c")
    assert volumes(rctl) == ["keep"]
    # run --rm removes its anonymous volumes (attached, and detached through the unit).
    rctl("run", "--rm", "-v", "/scratch", BUSYBOX, "touch", "/scratch/x")
    rctl("run", "--rm", "-d", "--name", "bg", "-v", "/scratch", BUSYBOX, "sleep", "1")
    wait_for("the --rm container to go", lambda: rctl("ps", "-aq").stdout == "", timeout=30)
    wait_for("its anonymous volume to go", lambda: volumes(rctl) == ["keep"], timeout=10)
    # rm without -v keeps them (docker), for volume prune.
    rctl("run", "--name", "d", "-v", "/scratch", BUSYBOX, "true")
    rctl("rm", "d")
    assert len(volumes(rctl)) == 2
    rctl("volume", "prune", "-f")
    assert volumes(rctl) == []


def test_volumes_from_read_write(rctl: Rctl) -> None:
    data = host_dir(rctl, "data")
    rctl("create", "--name", "store", "-v", f"{data}:/data", BUSYBOX, "true")
    rctl("run", "--rm", "--volumes-from", "store", BUSYBOX, "sh", "-c", "echo w > /data/w")
    assert (data / "w").read_text() == "w\n"
    missing = rctl("run", "--rm", "--volumes-from", "nosuch", BUSYBOX, "true", check=False)
    assert missing.returncode == 125 and "no such container" in missing.stderr


def test_chown_option_gives_the_source_to_the_container_user(rctl: Rctl) -> None:
    data = host_dir(rctl, "owned")
    (data / "old").write_text("x")
    out = rctl(
        "run", "--rm", "-u", "33:44", "-v", f"{data}:/data:rw,U", BUSYBOX, "sh", "-c",
        "stat -c %u:%g /data /data/old; touch /data/new && echo wrote",
    ).stdout.split()  # fmt: skip
    assert out == ["33:44", "33:44", "wrote"]
    # uid 33 inside is subuid 100000 + 32 outside.
    assert (data.stat().st_uid, data.stat().st_gid) == (100032, 100043)
    assert (data / "new").stat().st_uid == 100032
    # A named volume too, through --mount's podman key.
    vol = rctl("run", "--rm", "-u", "7", "--mount", "type=volume,src=u7,dst=/v,U", BUSYBOX,
               "stat", "-c", "%u", "/v").stdout  # fmt: skip
    assert vol == "7\n"


def test_mount_flag_forms(rctl: Rctl) -> None:
    site = host_dir(rctl, "m")
    (site / "f").write_text("m\n")
    out = rctl(
        "run", "--rm",
        "--mount", f"type=bind,source={site},target=/b,readonly",
        "--mount", "type=volume,src=mv,dst=/v",
        "--mount", "type=tmpfs,destination=/t,tmpfs-size=1m",
        "--tmpfs", "/t2",
        BUSYBOX, "sh", "-c",
        "cat /b/f; touch /b/x 2>/dev/null || echo ro; touch /v/ok && echo vol;"
        " grep -E ' /t2? ' /proc/mounts | cut -d' ' -f2,3",
    ).stdout.splitlines()  # fmt: skip
    assert out[:3] == ["m", "ro", "vol"]
    assert sorted(out[3:]) == ["/t tmpfs", "/t2 tmpfs"]
    assert volumes(rctl) == ["mv"]
    size = rctl("run", "--rm", "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m", BUSYBOX,
                "sh", "-c", "grep ' /t ' /proc/mounts").stdout  # fmt: skip
    assert "size=1024k" in size


def _as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _image_with_volume(rctl: Rctl) -> str:
    """busybox's files plus /data/seed, with ``VOLUME /data`` (via ``rctl import``)."""
    rctl("pull", BUSYBOX)
    found = sorted(rctl.data.glob("layers/*/*/diff/bin/busybox"))
    assert found, "busybox's layer is not in the store"
    root = found[0].parent.parent
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(root, arcname=".", filter=_as_root)
        seed_dir = tarfile.TarInfo("./data")
        seed_dir.type, seed_dir.mode, seed_dir.uid = tarfile.DIRTYPE, 0o750, 33
        tar.addfile(seed_dir)
        seed = tarfile.TarInfo("./data/seed")
        seed.size, seed.uid = 5, 33
        tar.addfile(seed, io.BytesIO(b"seed\n"))
    rctl("import", "--change", "VOLUME /data", "--change", 'CMD ["sh"]', "-", "withvol",
         input_data=buffer.getvalue())  # fmt: skip
    return "withvol"


def test_image_volumes_get_anonymous_volumes_filled_from_the_image(rctl: Rctl) -> None:
    image = _image_with_volume(rctl)
    out = rctl("run", "--name", "v", image, "sh", "-c",
               "cat /data/seed; stat -c %u /data; echo more > /data/more")  # fmt: skip
    assert out.stdout.splitlines() == ["seed", "33"]
    (anon,) = mounts_of(rctl, "v")
    assert anon["Destination"] == "/data" and anon["Type"] == "volume"
    assert volumes(rctl) == [anon["Name"]]
    # A named volume over the image's VOLUME is filled when a container is made with it
    # empty (docker), and only then; nocopy opts out.
    rctl("run", "--rm", "-v", "filled:/data", image, "sh", "-c", "echo mine > /data/seed")
    kept = rctl("run", "--rm", "-v", "filled:/data", image, "cat", "/data/seed").stdout
    assert kept == "mine\n"
    bare = rctl("run", "--rm", "-v", "bare:/data:nocopy", image, "ls", "-A", "/data").stdout
    assert bare == ""
    rctl("volume", "rm", "bare")
    rctl("rm", "-v", "v")
    assert volumes(rctl) == ["filled"]


def test_bad_volume_input_fails_in_one_line_and_creates_nothing(rctl: Rctl) -> None:
    missing = rctl.root / "host" / "missing"
    for flags in (
        ["-v", "/tmp:/b:bogus"],
        ["-v", "/tmp:relative"],
        ["-v", ":/x"],
        ["-v", "/tmp::ro"],
        ["-v", f"{missing}:/x"],
        ["-v", "bad%name:/x"],
        ["-v", "/tmp:/"],
        ["--mount", "type=bind,dst=/x"],
        ["--mount", "type=bind,src=/tmp"],
        ["--mount", "type=nfs,src=a,dst=/x"],
        ["--mount", "type=volume,src=v,dst=/x,bogus=1"],
        ["-v", "fresh:/x", "-v", "/tmp:/x"],
        ["--volumes-from", "nosuch"],
        ["-v", "fresh:/x", "-u", "nosuchuser"],  # fails after the volume was made
    ):
        failed = rctl("run", "--rm", *flags, BUSYBOX, "true", check=False)
        assert failed.returncode == 125, (flags, failed)
        lines = failed.stderr.strip().splitlines()
        assert lines[0].startswith("Error: ") and lines[1].startswith("Hint: "), failed.stderr
        assert len(lines) == 2, failed.stderr
    assert "mkdir -p" in rctl("run", "-v", f"{missing}:/x", BUSYBOX, "true", check=False).stderr
    assert rctl("ps", "-aq").stdout == ""
    assert volumes(rctl) == []
    leftovers = list((rctl.data / "volumes").iterdir()) if (rctl.data / "volumes").exists() else []
    assert leftovers == []
