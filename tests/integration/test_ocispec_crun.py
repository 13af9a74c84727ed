"""crun runs the config.json rctl plans (rootless.containers.ocispec), as uid 1000.

The rootfs is the host's static busybox with a few applet links; crun runs either as root of
a user namespace made with newuidmap (as rctl's launcher does, ``new_userns=False``) or as the user,
making the namespace itself (``new_userns=True``). Each container prints what it sees and the
test compares that with what the spec asked for.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hostkit import UserNamespace, run

from rootless.containers.ocispec import DEFAULT_CAPABILITIES, plan_oci_config, render_oci_config
from rootless.containers.spec import (
    ALL_CAPABILITIES,
    BindMount,
    ContainerSpec,
    ImageDefaults,
    UserSpec,
    parse_tmpfs,
)

APPLETS = ("sh", "id", "cat", "grep", "hostname", "touch", "echo", "pwd", "readlink", "stat")
PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
GROUP = "root:x:0:\ntty:x:5:\napp:x:1000:\n"
SUBORDINATE = ((0, os.getuid(), 1), (1, 100000, 65536))
IMAGE = ImageDefaults(env=("PATH=/bin",), cmd=("sh",))
PROBE = (
    "id -u; id -g; hostname; pwd; echo HOME=$HOME; echo GREETING=$GREETING; "
    "grep -E '^(CapBnd|CapEff|Seccomp|NoNewPrivs):' /proc/self/status; "
    "grep -E ' /(sys|dev/pts) ' /proc/self/mounts; readlink /proc/self/ns/net"
)


def make_bundle(tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle"
    rootfs = bundle / "rootfs"
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "run", "root", "home/app", "srv"):
        (rootfs / d).mkdir(parents=True)
    busybox = shutil.which("busybox")
    assert busybox, "busybox-static is part of the test host"
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    for applet in APPLETS:
        (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text(PASSWD)
    (rootfs / "etc" / "group").write_text(GROUP)
    return bundle


def write_config(bundle: Path, spec: ContainerSpec, **kwargs: Any) -> dict[str, Any]:
    config = plan_oci_config(
        spec.with_resolved_user(PASSWD, GROUP),
        rootfs_path=str(bundle / "rootfs"),
        hostname="ctr",
        nofile_hard=4096,
        machine=os.uname().machine,
        **kwargs,
    )
    (bundle / "config.json").write_text(render_oci_config(config))
    return config


def crun_argv(tmp_path: Path, bundle: Path) -> list[str]:
    state = tmp_path / "crun-state"
    state.mkdir(exist_ok=True)
    name = f"rctl-ocispec-{uuid.uuid4().hex[:8]}"
    return ["crun", "--cgroup-manager=disabled", f"--root={state}", "run", f"--bundle={bundle}",
            name]  # fmt: skip


def run_inside_userns(
    userns: Callable[..., UserNamespace], tmp_path: Path, bundle: Path
) -> list[str]:
    """crun as root of a newuidmap namespace, as the unit's main process will run it."""
    ns = userns(" ".join(crun_argv(tmp_path, bundle)))
    ns.map_ids()
    proc = ns.go()
    assert proc.returncode == 0, f"crun failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout.splitlines()


def cap_mask(caps: tuple[str, ...]) -> str:
    return f"{sum(1 << ALL_CAPABILITIES.index(c) for c in caps):016x}"


def field(lines: list[str], name: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in lines if line.startswith(f"{name}:"))


def test_default_container_runs_inside_a_newuidmap_namespace(
    tmp_path: Path, userns: Callable[..., UserNamespace]
) -> None:
    bundle = make_bundle(tmp_path)
    spec = ContainerSpec(
        name="c1", image_ref="busybox", image_id="x", image=IMAGE,
        command=("sh", "-c", PROBE), env=("GREETING=hi",),
    )  # fmt: skip
    write_config(bundle, spec, uid_maps=SUBORDINATE, gid_maps=SUBORDINATE)
    lines = run_inside_userns(userns, tmp_path, bundle)
    assert lines[:6] == ["0", "0", "ctr", "/", "HOME=/root", "GREETING=hi"]
    assert field(lines, "CapBnd") == cap_mask(DEFAULT_CAPABILITIES)
    assert field(lines, "CapEff") == cap_mask(DEFAULT_CAPABILITIES)
    assert field(lines, "Seccomp") == "2"
    assert field(lines, "NoNewPrivs") == "0"
    assert any(line.startswith("sysfs /sys sysfs ro,") for line in lines)
    devpts = next(line for line in lines if " /dev/pts " in line).split()[3].split(",")
    # devpts shows its gid in the initial namespace's terms: container gid 5 is 100004.
    assert "gid=100004" in devpts
    assert lines[-1] != os.readlink("/proc/self/ns/net")  # a network namespace of its own


def test_options_container_sees_its_mounts_user_and_limits(
    tmp_path: Path, userns: Callable[..., UserNamespace]
) -> None:
    bundle = make_bundle(tmp_path)
    data, site = tmp_path / "data", tmp_path / "site"
    data.mkdir()
    site.mkdir()
    data.chmod(0o777)  # container uid 1000 is host uid 100999
    (site / "index.html").write_text("hello\n")
    script = (
        "id -u; id -g; pwd; echo HOME=$HOME; "
        "touch /rootfile 2>/dev/null && echo root-writable || echo root-ro; "
        "touch /cache/x && echo cache-ok; touch /tmp/x && echo tmp-ok; "
        "touch /srv/x 2>/dev/null && echo srv-writable || echo srv-ro; cat /srv/index.html; "
        "touch /data/made && echo data-ok; "
        "grep -E '^(CapBnd|CapEff|NoNewPrivs):' /proc/self/status"
    )
    spec = ContainerSpec(
        name="c2",
        image_ref="busybox",
        image_id="x",
        image=IMAGE,
        command=("sh", "-c", script),
        user=UserSpec("app"),
        workdir="/srv",
        read_only=True,
        tmpfs=(parse_tmpfs("/cache:size=1m"),),
        mounts=(BindMount(str(site), "/srv", read_only=True), BindMount(str(data), "/data")),
        cap_drop=("CAP_CHOWN",),
        no_new_privileges=True,
    )
    write_config(bundle, spec, uid_maps=SUBORDINATE, gid_maps=SUBORDINATE)
    lines = run_inside_userns(userns, tmp_path, bundle)
    assert lines[:10] == [
        "1000", "1000", "/srv", "HOME=/home/app", "root-ro", "cache-ok", "tmp-ok", "srv-ro",
        "hello", "data-ok",
    ]  # fmt: skip
    assert field(lines, "CapBnd") == cap_mask(
        tuple(c for c in DEFAULT_CAPABILITIES if c != "CAP_CHOWN")
    )
    assert field(lines, "CapEff") == "0" * 16  # execve as uid 1000 clears them
    assert field(lines, "NoNewPrivs") == "1"
    assert (data / "made").stat().st_uid == 100000 + 1000 - 1


def test_host_network_binds_the_hosts_sys(
    tmp_path: Path, userns: Callable[..., UserNamespace]
) -> None:
    bundle = make_bundle(tmp_path)
    spec = ContainerSpec(
        name="c3", image_ref="busybox", image_id="x", image=IMAGE, network="host",
        command=("sh", "-c", "readlink /proc/self/ns/net; grep ' /sys ' /proc/self/mounts"),
    )  # fmt: skip
    config = write_config(bundle, spec, uid_maps=SUBORDINATE, gid_maps=SUBORDINATE)
    assert next(m for m in config["mounts"] if m["destination"] == "/sys")["type"] == "bind"
    lines = run_inside_userns(userns, tmp_path, bundle)
    assert lines[0] == os.readlink("/proc/self/ns/net")
    # The host's own /sys, whatever it is (nspawn gives its guest a tmpfs there), read-only.
    ours = next(line for line in Path("/proc/self/mounts").read_text().splitlines()
                if line.split()[1] == "/sys")  # fmt: skip
    assert lines[1].split()[:3] == ours.split()[:3]
    assert "ro" in lines[1].split()[3].split(",")


def test_crun_makes_a_keep_id_namespace_itself(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    uid = os.getuid()
    keep_id = ((0, 100000, uid), (uid, uid, 1), (uid + 1, 100000 + uid, 65536 - uid))
    spec = ContainerSpec(
        name="c4", image_ref="busybox", image_id="x", image=IMAGE, user=UserSpec(str(uid)),
        command=("sh", "-c", "id -u; stat -c %u /bin/busybox; cat /proc/self/uid_map"),
    )  # fmt: skip
    config = write_config(bundle, spec, uid_maps=keep_id, gid_maps=keep_id, new_userns=True)
    assert {"type": "user"} in config["linux"]["namespaces"]
    proc = run(*crun_argv(tmp_path, bundle), check=False)
    assert proc.returncode == 0, f"crun failed:\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stdout.splitlines()
    assert lines[:2] == [str(uid), str(uid)]  # the user's own files stay the user's
    assert [line.split() for line in lines[2:]] == [[str(c), str(h), str(s)] for c, h, s in keep_id]
