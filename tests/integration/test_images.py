"""Images in the test host, as uid 1000, against the local registry.

Every test has a store of its own (the ``rctl`` fixture). The registry was seeded by the
harness with skopeo, so a bug in rctl's push can't hide a bug in its pull.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import stat
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from hostkit import Rctl, run, wait_for

REG = "127.0.0.1:5000"
ROOT = Path(__file__).resolve().parents[2]


def expected_layered() -> dict[str, tuple[str, int, int, int, str]]:
    spec = importlib.util.spec_from_file_location("images", ROOT / "tests/host/recipe/images.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected: dict[str, tuple[str, int, int, int, str]] = module.EXPECTED_LAYERED
    return expected


def chain_ids(diff_ids: list[str]) -> list[str]:
    chains: list[str] = []
    for diff in diff_ids:
        chains.append(
            diff
            if not chains
            else "sha256:" + hashlib.sha256(f"{chains[-1]} {diff}".encode()).hexdigest()
        )
    return chains


def inspect(rctl: Rctl, name: str) -> dict[str, Any]:
    data = json.loads(rctl("image", "inspect", name).stdout)
    assert len(data) == 1
    result: dict[str, Any] = data[0]
    return result


def layer_dirs(rctl: Rctl, name: str) -> list[Path]:
    info = inspect(rctl, name)
    chains = chain_ids(info["RootFS"]["Layers"])
    return [rctl.data / "layers/overlay" / c.removeprefix("sha256:") / "diff" for c in chains]


MERGED_WALK = r"""
import json, os, stat, subprocess, sys
lowers, merged = sys.argv[1], sys.argv[2]
subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lowers},userxattr", merged], check=True)
seen, tree = {}, {}
for dirpath, dirs, files in os.walk(os.path.join(merged, "data")):
    for name in sorted(dirs + files) + ([""] if dirpath.endswith("/data") else []):
        path = os.path.join(dirpath, name) if name else dirpath
        st = os.lstat(path)
        rel = "/" + os.path.relpath(path, merged)
        if stat.S_ISLNK(st.st_mode):
            entry = ["symlink", 0o777, st.st_uid, st.st_gid, os.readlink(path)]
        elif stat.S_ISDIR(st.st_mode):
            entry = ["dir", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, ""]
        elif (st.st_dev, st.st_ino) in seen:
            entry = ["hardlink", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, seen[(st.st_dev, st.st_ino)]]
        else:
            seen[(st.st_dev, st.st_ino)] = rel
            entry = ["file", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, open(path).read()]
        tree[rel] = entry
print(json.dumps(tree))
"""


def test_pull_by_full_name_prints_the_id_and_lists_the_image(rctl: Rctl) -> None:
    out = rctl("pull", f"{REG}/test/busybox")
    image_id = out.stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    assert f"Resolved {REG}/test/busybox:latest" in out.stderr
    rows = json.loads(rctl("images", "--format", "json").stdout)
    assert [(r["repository"], r["tag"], r["id"]) for r in rows] == [
        (f"{REG}/test/busybox", "latest", image_id)
    ]
    info = inspect(rctl, f"{REG}/test/busybox")
    assert info["Id"] == image_id
    assert info["Config"]["Cmd"] == ["sh"]
    assert info["Architecture"] == "amd64"
    assert (
        info["Rctl"]["Manifest"]["MediaType"]
        == "application/vnd.docker.distribution.manifest.v2+json"
    )
    assert rctl("images", "-q").stdout.split() == [image_id.removeprefix("sha256:")[:12]]


def test_store_is_owner_only(rctl: Rctl) -> None:
    rctl("pull", "-q", f"{REG}/test/busybox")
    for path in (rctl.data, rctl.data / "blobs", rctl.data / "layers"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    assert stat.S_IMODE((rctl.data / "images.json").stat().st_mode) == 0o600


def test_layered_image_unpacks_file_by_file(rctl: Rctl, tmp_path: Path) -> None:
    rctl("pull", "-q", f"{REG}/test/layered")
    dirs = layer_dirs(rctl, f"{REG}/test/layered")
    assert len(dirs) >= 4 and all(d.is_dir() for d in dirs)
    # Outside the namespace, owners are mapped: uid 1000 in the image is 100000 + 999 here.
    owned = [d / "data/owned-1000" for d in dirs if (d / "data/owned-1000").exists()]
    assert owned and owned[0].stat().st_uid == 100999
    # A deletion is a whiteout device in its layer, an opaque directory carries the xattr.
    whiteouts = [d / "data/delete-me.txt" for d in dirs[2:] if (d / "data/delete-me.txt").exists()]
    assert whiteouts and stat.S_ISCHR(whiteouts[0].lstat().st_mode)
    # Merged with kernel overlay in the user namespace, the tree is exactly what was pushed.
    script = tmp_path / "walk.py"
    script.write_text(MERGED_WALK)
    merged = tmp_path / "merged"
    merged.mkdir()
    lowers = ":".join(str(d) for d in reversed(dirs))
    out = rctl("unshare", "python3", str(script), lowers, str(merged))
    tree = {path: tuple(entry) for path, entry in json.loads(out.stdout).items()}
    assert tree == expected_layered()


def test_multiarch_picks_the_host_platform_or_the_asked_one(rctl: Rctl) -> None:
    amd = rctl("pull", "-q", f"{REG}/test/multiarch").stdout.strip()
    assert inspect(rctl, amd)["Architecture"] == "amd64"
    top = layer_dirs(rctl, amd)[-1]
    assert (top / "arch").read_text() == "amd64\n"
    arm = rctl("pull", "-q", "--platform", "linux/arm64", f"{REG}/test/multiarch").stdout.strip()
    assert arm != amd
    assert inspect(rctl, arm)["Architecture"] == "arm64"
    # The tag moved to the arm64 image; the amd64 one is now dangling.
    dangling = json.loads(rctl("images", "--filter", "dangling=true", "--format", "json").stdout)
    assert [row["id"] for row in dangling] == [amd]


def test_debian_image_with_thousands_of_files(rctl: Rctl) -> None:
    rctl("pull", "-q", f"{REG}/test/debian")
    (diff,) = layer_dirs(rctl, f"{REG}/test/debian")
    assert (diff / "usr/bin").is_dir()
    assert os.readlink(diff / "bin") in ("usr/bin", "/usr/bin")
    assert any((diff / "usr/bin").glob("python3*"))
    count = sum(len(files) for _, _, files in os.walk(diff))
    assert count > 3000


def test_unknown_image_fails_in_one_line_with_125_and_changes_nothing(rctl: Rctl) -> None:
    rctl("pull", "-q", f"{REG}/test/busybox")
    before = rctl("images", "--format", "json").stdout
    for name in (
        f"{REG}/test/nope",
        f"{REG}/test/busybox:nope",
        "127.0.0.1:5999/test/busybox",
        "UPPER/case",
    ):
        failed = rctl("pull", name, check=False)
        assert failed.returncode == 125, failed
        lines = failed.stderr.strip().splitlines()
        assert lines[-2].startswith("Error: ") and lines[-1].startswith("Hint: "), failed.stderr
        assert "Traceback" not in failed.stderr
    assert rctl("images", "--format", "json").stdout == before


def test_interrupted_pull_is_never_listed_and_completes_next_time(rctl: Rctl) -> None:
    proc = rctl.popen("pull", f"{REG}/test/big")
    partial = rctl.data / "blobs/partial"

    def some_bytes() -> bool:
        return partial.is_dir() and any(p.stat().st_size > 1 << 20 for p in partial.iterdir())

    try:
        wait_for("a partial download of test/big", some_bytes, timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert json.loads(rctl("images", "--format", "json").stdout) == []
    image_id = rctl("pull", "-q", f"{REG}/test/big").stdout.strip()
    (_, big) = layer_dirs(rctl, image_id)
    assert (big / "big/random.bin").stat().st_size == 200 * 1024 * 1024
    assert list(partial.iterdir()) == []


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_save_then_load_round_trip(rctl: Rctl, tmp_path: Path, fmt: str) -> None:
    image_id = rctl("pull", "-q", f"{REG}/test/layered").stdout.strip()
    archive = tmp_path / "image.tar"
    rctl("save", "--format", fmt, "-o", str(archive), f"{REG}/test/layered")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert ("manifest.json" if fmt == "docker-archive" else "index.json") in names
    rctl("rmi", f"{REG}/test/layered")
    assert rctl("images", "-q").stdout.strip() == ""
    loaded = rctl("load", "-i", str(archive))
    assert f"Loaded image: {REG}/test/layered:latest" in loaded.stdout
    assert inspect(rctl, f"{REG}/test/layered")["Id"] == image_id
    assert all(d.is_dir() for d in layer_dirs(rctl, image_id))


def test_push_then_pull_round_trip(rctl: Rctl) -> None:
    image_id = rctl("pull", "-q", f"{REG}/test/httpd").stdout.strip()
    target = f"{REG}/test/pushed-{uuid.uuid4().hex[:8]}:v1"
    rctl("tag", f"{REG}/test/httpd", target)
    digest = rctl("push", target).stdout.strip()
    assert digest.startswith("sha256:")
    # A tool that is not rctl sees the pushed image.
    seen = json.loads(run("skopeo", "inspect", "--tls-verify=false", f"docker://{target}").stdout)
    assert seen["Digest"] == digest
    rctl("rmi", "-f", image_id)
    assert rctl("pull", "-q", target).stdout.strip() == image_id


def test_tag_and_rmi(rctl: Rctl) -> None:
    image_id = rctl("pull", "-q", f"{REG}/test/busybox").stdout.strip()
    rctl("tag", f"{REG}/test/busybox", "localhost/mine:1")
    assert inspect(rctl, "localhost/mine:1")["Id"] == image_id
    out = rctl("rmi", "localhost/mine:1").stdout
    assert out.strip() == "Untagged: localhost/mine:1"
    layers = rctl.data / "layers/overlay"
    assert len(list(layers.iterdir())) == 1
    out = rctl("rmi", f"{REG}/test/busybox").stdout
    assert f"Deleted: {image_id}" in out
    assert list(layers.iterdir()) == []
    assert list((rctl.data / "blobs/sha256").iterdir()) == []
    failed = rctl("rmi", "localhost/mine:1", check=False)
    assert failed.returncode == 125 and "Error: image not known" in failed.stderr


def test_import_a_rootfs_tarball_with_changes(rctl: Rctl, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc/greeting").write_text("hello\n")
    tarball = tmp_path / "rootfs.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.add(rootfs, arcname=".")
    image_id = rctl("import", "--change", 'CMD ["/bin/cat", "/etc/greeting"]', "--change", "ENV A=b",
                    str(tarball), "localhost/imported").stdout.strip()  # fmt: skip
    info = inspect(rctl, "localhost/imported")
    assert info["Id"] == image_id
    assert info["Config"]["Cmd"] == ["/bin/cat", "/etc/greeting"]
    assert "A=b" in info["Config"]["Env"]
    (diff,) = layer_dirs(rctl, "localhost/imported")
    assert (diff / "etc/greeting").read_text() == "hello\n"


def test_login_and_logout_keep_credentials_owner_only(rctl: Rctl) -> None:
    out = rctl("login", "-u", "someone", "--password-stdin", REG, input_data=b"secret\n")
    assert out.returncode == 0
    auth = Path(rctl.env["REGISTRY_AUTH_FILE"])
    assert stat.S_IMODE(auth.stat().st_mode) == 0o600
    assert REG in json.loads(auth.read_text())["auths"]
    rctl("logout", REG)
    assert REG not in json.loads(auth.read_text()).get("auths", {})


def test_system_df_counts_images(rctl: Rctl) -> None:
    rctl("pull", "-q", f"{REG}/test/busybox")
    usage = json.loads(rctl("system", "df", "--format", "json").stdout)
    assert len(usage["Images"]) == 1 and usage["Rctl"]["Layers"] == 1
    assert usage["LayersSize"] > 1_000_000 and usage["Images"][0]["Containers"] == 0
    row = rctl("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}").stdout
    assert row.splitlines()[0] == "Images 1 0"


def test_history_lists_each_layer(rctl: Rctl) -> None:
    rctl("pull", "-q", f"{REG}/test/layered")
    rows = json.loads(rctl("history", "--format", "json", f"{REG}/test/layered").stdout)
    assert len(rows) == 4
    assert "changed.txt v3" in rows[0]["created_by"]
    assert rows[-1]["created_by"].startswith("busybox")
