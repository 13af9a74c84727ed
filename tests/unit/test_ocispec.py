"""crun's config.json planned from a ContainerSpec (rootless.containers.ocispec, .seccomp).

Golden files: tests/unit/golden/ocispec/CASE.json hold the expected rendering of each case in
``CASES``. After an intended change, rewrite them with
``RCTL_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_ocispec.py`` and review the diff.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rctlbase.errors import HostError, UsageError
from rootless.containers import seccomp
from rootless.containers.ocispec import (
    DEFAULT_CAPABILITIES,
    INIT_DESTINATION,
    MASKED_PATHS,
    READONLY_PATHS,
    EtcFiles,
    plan_capabilities,
    plan_oci_config,
    render_oci_config,
)
from rootless.containers.seccomp import (
    EMBEDDED_PROFILE,
    Action,
    SeccompMode,
    SeccompPolicy,
    SeccompProfile,
    default_profile_path,
    parse_seccomp_profile,
    plan_seccomp,
)
from rootless.containers.spec import (
    ALL_CAPABILITIES,
    BindMount,
    ContainerSpec,
    ImageDefaults,
    Limits,
    ResolvedUser,
    UsernsMode,
    UserSpec,
    parse_capability,
    parse_memory,
    parse_tmpfs,
)

EPERM, ENOSYS = errno.EPERM, errno.ENOSYS
GOLDEN = Path(__file__).parent / "golden" / "ocispec"
UPDATE = os.environ.get("RCTL_UPDATE_GOLDEN") == "1"

BUSYBOX = ImageDefaults(
    env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",), cmd=("sh",)
)
PASSWD = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"
GROUP = "root:x:0:\nwheel:x:10:root,alice\nalice:x:1000:\n"
# rctl's default namespace: container 0 is the user, 1..65536 the subordinate range.
ROOTLESS_MAPS = ((0, 1000, 1), (1, 100000, 65536))
# --userns keep-id for uid 1000 with 100000:65536, nested in the default namespace
# (uidmap.mapping.nest_keep_id): host IDs are the launcher's namespace's.
KEEP_ID_MAPS = ((0, 1, 1000), (1000, 0, 1), (1001, 1001, 64536))
RUN = "/run/user/1000/rctl"
ETC = EtcFiles(f"{RUN}/c1/hosts", f"{RUN}/c1/hostname", f"{RUN}/c1/resolv.conf")


def make_spec(image: ImageDefaults = BUSYBOX, **kwargs: Any) -> ContainerSpec:
    return ContainerSpec(
        name="c1", image_ref="busybox", image_id="sha256:" + "b" * 64, image=image, **kwargs
    )


def plan(spec: ContainerSpec, **kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "rootfs_path": f"{RUN}/c1/rootfs",
        "hostname": "c1c1c1c1c1c1",
        "uid_maps": ROOTLESS_MAPS,
        "gid_maps": ROOTLESS_MAPS,
        "etc_files": ETC,
    }
    return plan_oci_config(spec, **(args | kwargs))


def case_busybox_default() -> dict[str, Any]:
    """``rctl run busybox sh -c true``."""
    spec = make_spec(command=("sh", "-c", "true")).with_resolved_user(PASSWD, GROUP)
    return plan(spec, nofile_hard=524288)


def case_options() -> dict[str, Any]:
    """Caps added and dropped, read-only root, tmpfs, binds, env, user, workdir, tty."""
    spec = make_spec(
        command=("httpd", "-f"),
        env=("LANG=C.UTF-8", "APP_MODE=prod"),
        workdir="/srv",
        user=UserSpec("alice"),
        hostname="web",
        read_only=True,
        tmpfs=(parse_tmpfs("/cache:size=16m"),),
        mounts=(
            BindMount("/home/alice/site", "/srv", read_only=True),
            BindMount("/home/alice/.local/share/rctl/volumes/db/_data", "/var/lib/db"),
            BindMount("/home/alice/uploads", "/srv/uploads", options=("nosuid", "rslave")),
        ),
        cap_add=(parse_capability("NET_ADMIN"), parse_capability("sys_ptrace")),
        cap_drop=(parse_capability("CHOWN"), parse_capability("CAP_NET_BIND_SERVICE")),
        no_new_privileges=True,
        tty=True,
        stdin_open=True,
    ).with_resolved_user(PASSWD, GROUP)
    return plan(spec, hostname="web", nofile_hard=2_000_000)


def case_keep_id() -> dict[str, Any]:
    """``--userns=keep-id``: crun makes the nested namespace, joins the launcher's network
    namespace (so no ping_group_range: that namespace is not the new one's)."""
    spec = make_spec(command=("id",), userns=UsernsMode.KEEP_ID, user=UserSpec("1000", "1000"))
    return plan(
        spec,
        uid_maps=KEEP_ID_MAPS,
        gid_maps=KEEP_ID_MAPS,
        new_userns=True,
        netns_path=f"{RUN}/netns/c1",
    )


def case_host_network() -> dict[str, Any]:
    """``--network host --security-opt seccomp=unconfined --cap-add ALL --cap-drop SYS_ADMIN``."""
    spec = make_spec(
        command=("ip", "addr"),
        network="host",
        seccomp=SeccompPolicy(SeccompMode.UNCONFINED),
        cap_add=("ALL",),
        cap_drop=("CAP_SYS_ADMIN",),
    )
    return plan(spec, etc_files=EtcFiles(hostname=f"{RUN}/c1/hostname"))


def case_limits_init() -> dict[str, Any]:
    """``--init``, no subordinate gids, and limits, which are the unit's: not in the config."""
    spec = make_spec(
        command=("sleep", "1000"),
        init=True,
        limits=Limits(
            memory=parse_memory("512m"),
            memory_swap=parse_memory("1g"),
            cpus=1.5,
            cpu_shares=512,
            pids_limit=100,
        ),
    )
    return plan(
        spec,
        gid_maps=((0, 1000, 1),),
        init_path="/usr/libexec/podman/catatonit",
    )


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "busybox-default": case_busybox_default,
    "options": case_options,
    "keep-id": case_keep_id,
    "host-network": case_host_network,
    "limits-init": case_limits_init,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    path = GOLDEN / f"{case}.json"
    text = render_oci_config(CASES[case]())
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file {path}: run with RCTL_UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(), f"{case} differs from {path} (RCTL_UPDATE_GOLDEN=1 rewrites)"


def test_no_golden_file_is_stale() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_case_is_a_well_formed_config(case: str) -> None:
    config = json.loads(render_oci_config(CASES[case]()))
    assert config["ociVersion"] == "1.0.2"
    assert config["root"]["path"].startswith("/")
    assert config["process"]["args"]
    assert config["process"]["cwd"].startswith("/")
    assert all(set(m) == {"destination", "type", "source", "options"} for m in config["mounts"])
    destinations = [m["destination"] for m in config["mounts"]]
    assert len(destinations) == len(set(destinations))
    types = [ns["type"] for ns in config["linux"]["namespaces"]]
    assert len(types) == len(set(types))
    assert set(types) <= {"pid", "network", "ipc", "uts", "mount", "user", "cgroup"}
    assert config["linux"]["maskedPaths"] == list(MASKED_PATHS)
    assert config["linux"]["readonlyPaths"] == list(READONLY_PATHS)
    assert config["annotations"] == {"io.container.manager": "rctl"}


# ---- capabilities ---------------------------------------------------------------------------


def test_default_capabilities_are_podmans_eleven() -> None:
    assert plan_capabilities((), ()) == tuple(sorted(DEFAULT_CAPABILITIES))
    assert len(DEFAULT_CAPABILITIES) == 11


def test_capabilities_add_and_drop() -> None:
    caps = plan_capabilities(("CAP_NET_ADMIN",), ("CAP_CHOWN", "CAP_KILL"))
    assert "CAP_NET_ADMIN" in caps
    assert "CAP_CHOWN" not in caps
    assert "CAP_KILL" not in caps
    assert len(caps) == 10
    assert "CAP_NET_RAW" in plan_capabilities(("CAP_NET_RAW",), ("CAP_NET_RAW",))


def test_capabilities_all() -> None:
    assert plan_capabilities(("ALL",), ()) == tuple(sorted(ALL_CAPABILITIES))
    assert plan_capabilities(("ALL",), ("CAP_SYS_ADMIN",)) == tuple(
        sorted(set(ALL_CAPABILITIES) - {"CAP_SYS_ADMIN"})
    )
    assert plan_capabilities(("CAP_KILL",), ("ALL",)) == ("CAP_KILL",)
    assert plan_capabilities((), ("ALL",)) == ()


def test_process_capability_sets() -> None:
    caps = plan(make_spec(command=("x",), cap_add=("CAP_NET_ADMIN",)))["process"]["capabilities"]
    assert caps["bounding"] == caps["effective"] == caps["permitted"]
    assert "CAP_NET_ADMIN" in caps["bounding"]
    assert caps["inheritable"] == caps["ambient"] == []


# ---- process -----------------------------------------------------------------------------------


def test_process_env_order_and_defaults() -> None:
    spec = make_spec(command=("x",), tty=True, env=("A=1",)).with_resolved_user(PASSWD, GROUP)
    env = plan(spec)["process"]["env"]
    assert env[0].startswith("PATH=")
    assert env[1:] == ["HOSTNAME=c1c1c1c1c1c1", "TERM=xterm", "A=1", "HOME=/root"]
    spec = make_spec(command=("x",), env=("HOME=/mine", "HOSTNAME=custom", "TERM=dumb"))
    env = plan(spec.with_resolved_user(PASSWD, GROUP))["process"]["env"]
    assert env[1:] == ["HOSTNAME=custom", "HOME=/mine", "TERM=dumb"]


def test_process_user_and_groups() -> None:
    spec = make_spec(command=("x",), user=UserSpec("alice")).with_resolved_user(PASSWD, GROUP)
    assert plan(spec)["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [10]}
    assert plan(make_spec(command=("x",), user=UserSpec("7", "8")))["process"]["user"] == {
        "uid": 7,
        "gid": 8,
    }


def test_user_names_must_be_resolved_first() -> None:
    with pytest.raises(ValueError, match="with_resolved_user"):
        plan(make_spec(command=("x",), user=UserSpec("alice")))


def test_unmapped_user_is_refused() -> None:
    spec = make_spec(command=("x",), user=UserSpec("70000"))
    with pytest.raises(UsageError, match="uid 70000 of --user is not mapped"):
        plan(spec)
    spec = make_spec(command=("x",), user=UserSpec("0", "70000"))
    with pytest.raises(UsageError, match="gid 70000 of --user is not mapped"):
        plan(spec)
    assert plan(spec, uid_maps=(), gid_maps=())["process"]["user"]["gid"] == 70000


def test_rlimit_nofile_is_capped_or_inherited() -> None:
    spec = make_spec(command=("x",))
    assert plan(spec, nofile_hard=4_000_000)["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "soft": 1048576, "hard": 1048576}
    ]
    assert plan(spec, nofile_hard=4096)["process"]["rlimits"][0]["soft"] == 4096
    assert "rlimits" not in plan(spec)["process"]


def test_init_needs_a_binary_and_wraps_the_command() -> None:
    spec = make_spec(command=("sleep", "1"), init=True)
    with pytest.raises(UsageError, match="--init needs catatonit or tini"):
        plan(spec)
    config = plan(spec, init_path="/usr/bin/tini-static")
    assert config["process"]["args"] == [INIT_DESTINATION, "--", "sleep", "1"]
    mount = next(m for m in config["mounts"] if m["destination"] == INIT_DESTINATION)
    assert mount["source"] == "/usr/bin/tini-static"
    assert "ro" in mount["options"]
    without = plan(make_spec(command=("x",)), init_path="/usr/bin/tini-static")
    assert INIT_DESTINATION not in [m["destination"] for m in without["mounts"]]


# ---- mounts and namespaces -----------------------------------------------------------------------


def mount_at(config: dict[str, Any], destination: str) -> dict[str, Any]:
    return next(m for m in config["mounts"] if m["destination"] == destination)


def test_devpts_gets_tty_group_only_when_gid_5_is_mapped() -> None:
    spec = make_spec(command=("x",))
    assert "gid=5" in mount_at(plan(spec), "/dev/pts")["options"]
    assert "gid=5" not in mount_at(plan(spec, gid_maps=((0, 1000, 1),)), "/dev/pts")["options"]
    assert "gid=5" not in mount_at(plan(spec, gid_maps=()), "/dev/pts")["options"]


def test_sys_is_sysfs_with_own_network_and_a_bind_with_the_hosts() -> None:
    own = plan(make_spec(command=("x",)))
    assert mount_at(own, "/sys")["type"] == "sysfs"
    assert mount_at(own, "/sys/fs/cgroup")["type"] == "cgroup"
    assert {"type": "network"} in own["linux"]["namespaces"]
    assert own["linux"]["sysctl"] == {"net.ipv4.ping_group_range": "0 65536"}
    host = plan(make_spec(command=("x",), network="host"))
    sys_mount = mount_at(host, "/sys")
    assert (sys_mount["type"], sys_mount["source"]) == ("bind", "/sys")
    assert {"rbind", "ro"} <= set(sys_mount["options"])
    assert "/sys/fs/cgroup" not in [m["destination"] for m in host["mounts"]]
    assert "network" not in [ns["type"] for ns in host["linux"]["namespaces"]]
    assert "sysctl" not in host["linux"]


def test_netns_path_is_joined() -> None:
    config = plan(make_spec(command=("x",)), netns_path="/run/netns/x")
    assert {"type": "network", "path": "/run/netns/x"} in config["linux"]["namespaces"]


def test_user_namespace_only_when_crun_makes_it() -> None:
    inside = plan(make_spec(command=("x",)))
    assert "user" not in [ns["type"] for ns in inside["linux"]["namespaces"]]
    assert "uidMappings" not in inside["linux"]
    made = plan(make_spec(command=("x",)), new_userns=True)
    assert {"type": "user"} in made["linux"]["namespaces"]
    assert made["linux"]["uidMappings"] == [
        {"containerID": 0, "hostID": 1000, "size": 1},
        {"containerID": 1, "hostID": 100000, "size": 65536},
    ]


def test_user_mounts_replace_defaults_at_the_same_place() -> None:
    spec = make_spec(
        command=("x",),
        mounts=(BindMount("/h/hosts", "/etc/hosts"), BindMount("/h/shm", "/dev/shm")),
    )
    config = plan(spec)
    assert mount_at(config, "/etc/hosts")["source"] == "/h/hosts"
    assert mount_at(config, "/dev/shm")["type"] == "bind"
    assert mount_at(config, "/etc/resolv.conf")["source"] == ETC.resolv_conf


def test_mounts_come_parents_first() -> None:
    spec = make_spec(
        command=("x",),
        mounts=(BindMount("/h/b", "/a/b/c"), BindMount("/h/a", "/a"), BindMount("/h/e", "/etc")),
    )
    destinations = [m["destination"] for m in plan(spec)["mounts"]]
    assert destinations.index("/a") < destinations.index("/a/b/c")
    assert destinations.index("/etc") < destinations.index("/etc/hosts")


def test_bind_options() -> None:
    spec = make_spec(
        command=("x",),
        mounts=(
            BindMount("/h/ro", "/ro", read_only=True),
            BindMount("/h/sh", "/sh", options=("rshared", "noexec")),
        ),
    )
    config = plan(spec)
    assert mount_at(config, "/ro")["options"] == ["rbind", "ro", "rprivate"]
    assert mount_at(config, "/sh")["options"] == ["rbind", "rw", "rshared", "noexec"]


def test_read_only_root_gets_tmpfs_and_read_only_etc_files() -> None:
    config = plan(make_spec(command=("x",), read_only=True, tmpfs=(parse_tmpfs("/tmp"),)))
    assert config["root"]["readonly"] is True
    assert mount_at(config, "/tmp")["options"] == ["rw", "noexec", "nosuid", "nodev"]
    assert mount_at(config, "/run")["type"] == "tmpfs"
    assert mount_at(config, "/var/tmp")["type"] == "tmpfs"
    assert "ro" in mount_at(config, "/etc/hosts")["options"]
    plain = plan(make_spec(command=("x",), read_only=True, read_only_tmpfs=False))
    assert "/run" not in [m["destination"] for m in plain["mounts"]]


# ---- resources and cgroups ---------------------------------------------------------------------


def test_limits_stay_out_of_the_config() -> None:
    # The unit holds them (crun runs with --cgroup-manager=disabled): one writer per cgroup.
    spec = make_spec(command=("x",), limits=Limits(memory=1 << 30, pids_limit=5))
    assert "resources" not in plan(spec)["linux"]
    assert "cgroupsPath" not in plan(spec)["linux"]


# ---- seccomp -------------------------------------------------------------------------------


def rules(profile: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [r for r in profile["syscalls"] if name in r["names"]]


def allowed(profile: dict[str, Any], name: str) -> bool:
    return any(r["action"] == "SCMP_ACT_ALLOW" and "args" not in r for r in rules(profile, name))


@pytest.fixture(autouse=True)
def no_system_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default profile is rctl's copy, whatever the machine running the tests has."""
    monkeypatch.setattr(seccomp, "SYSTEM_PROFILES", ())


def default_profile(caps: Any = DEFAULT_CAPABILITIES, **kwargs: Any) -> dict[str, Any]:
    machine = kwargs.get("machine", "x86_64")
    profile = plan_seccomp(SeccompPolicy().profile(machine), caps, **kwargs)
    assert profile is not None
    return profile


def test_default_seccomp_profile_shape() -> None:
    profile = default_profile()
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert profile["defaultErrnoRet"] == ENOSYS
    assert profile["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert allowed(profile, "read")
    assert allowed(profile, "arch_prctl")
    assert allowed(profile, "chroot")  # CAP_SYS_CHROOT is a default
    assert allowed(profile, "clone3")  # podman's profile: rootless containers nest namespaces
    assert not rules(profile, "cacheflush")  # arm only
    (kexec,) = rules(profile, "kexec_load")
    assert (kexec["action"], kexec["errnoRet"]) == ("SCMP_ACT_ERRNO", EPERM)


@pytest.mark.parametrize("name", ["io_uring_setup", "io_uring_enter", "io_uring_register"])
def test_default_seccomp_profile_denies_io_uring(name: str) -> None:
    """containers-common never allowed io_uring and moby dropped it: the kernel's io_uring
    keeps bypassing what seccomp and LSMs check."""
    for caps in (DEFAULT_CAPABILITIES, ALL_CAPABILITIES):
        profile = default_profile(caps)
        assert not rules(profile, name)  # so the default action, ENOSYS, answers it
    spec = plan(make_spec(command=("x",)))["linux"]["seccomp"]
    assert not rules(spec, name)
    assert spec["defaultAction"] == "SCMP_ACT_ERRNO"


def test_seccomp_capability_groups_follow_cap_add() -> None:
    profile = default_profile()
    (bpf,) = rules(profile, "bpf")
    assert (bpf["action"], bpf["errnoRet"]) == ("SCMP_ACT_ERRNO", EPERM)
    added = default_profile((*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"))
    assert [r["action"] for r in rules(added, "bpf")] == ["SCMP_ACT_ALLOW"]
    assert [r["action"] for r in rules(added, "kcmp")] == ["SCMP_ACT_ALLOW"]
    no_chroot = default_profile(plan_capabilities((), ("CAP_SYS_CHROOT",)))
    assert [r["action"] for r in rules(no_chroot, "chroot")] == ["SCMP_ACT_ERRNO"]


def test_seccomp_on_aarch64() -> None:
    profile = default_profile(machine="aarch64")
    assert profile["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert allowed(profile, "cacheflush")
    assert not rules(profile, "arch_prctl")


def test_seccomp_unknown_machine_leaves_the_architecture_to_libseccomp() -> None:
    assert default_profile(machine="riscv64")["architectures"] == []
    no_arches = SeccompProfile(Action.ERRNO, ())
    with pytest.raises(HostError, match="riscv64"):
        plan_seccomp(no_arches, (), machine="riscv64")


def test_default_profile_is_the_system_file_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    override, common = tmp_path / "etc.json", tmp_path / "usr.json"
    monkeypatch.setattr(seccomp, "SYSTEM_PROFILES", (override, common))
    assert default_profile_path() == EMBEDDED_PROFILE
    common.write_text(json.dumps({"defaultAction": "SCMP_ACT_LOG"}))
    assert default_profile_path() == common
    assert SeccompPolicy().profile().default_action is Action.LOG  # type: ignore[union-attr]
    override.write_text(json.dumps({"defaultAction": "SCMP_ACT_KILL"}))
    assert default_profile_path() == override
    assert SeccompPolicy().profile().default_action is Action.KILL  # type: ignore[union-attr]
    common.write_text("{")
    monkeypatch.setattr(seccomp, "SYSTEM_PROFILES", (common,))
    with pytest.raises(HostError, match=f"default seccomp profile {common} is invalid"):
        SeccompPolicy().profile()


def test_embedded_profile_is_containers_commons() -> None:
    """rctl's copy is the file containers-common installs, byte for byte (regenerate it with
    packaging/update-seccomp-profile); the integration tier compares it with the test
    host's file."""
    source = Path("/usr/share/containers/seccomp.json")
    if not source.exists():
        pytest.skip("containers-common is not installed here (the test host has it)")
    assert EMBEDDED_PROFILE.read_bytes() == source.read_bytes()


def test_update_script_regenerates_the_embedded_copy(tmp_path: Path) -> None:
    script = Path(__file__).parents[2] / "packaging" / "update-seccomp-profile"
    output = tmp_path / "seccomp.json"
    run = [sys.executable, str(script), str(EMBEDDED_PROFILE), "--output", str(output)]
    subprocess.run(run, check=True, capture_output=True)
    assert output.read_bytes() == EMBEDDED_PROFILE.read_bytes()
    broken = tmp_path / "broken.json"
    broken.write_text('{"defaultAction": "SCMP_ACT_NOPE"}')
    output.unlink()
    run[2] = str(broken)
    done = subprocess.run(run, check=False, capture_output=True, text=True)
    assert done.returncode == 1
    assert "defaultAction" in done.stderr
    assert not output.exists()


def test_seccomp_kernel_versions_include_and_exclude() -> None:
    text = json.dumps(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["new"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.6"}},
                {"names": ["old"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.6.1"}},
            ],
        }
    )
    profile = parse_seccomp_profile(text)

    def names(kernel: tuple[int, int] | None) -> list[str]:
        rendered = plan_seccomp(profile, (), kernel=kernel)
        assert rendered is not None
        return [n for r in rendered["syscalls"] for n in r["names"]]

    assert names((5, 4)) == ["old"]
    assert names((5, 6)) == ["new"]
    assert names((6, 1)) == ["new"]
    assert names(None) == ["new", "old"]


def test_unconfined_config_has_no_seccomp() -> None:
    spec = make_spec(command=("x",), seccomp=SeccompPolicy(SeccompMode.UNCONFINED))
    assert "seccomp" not in plan(spec)["linux"]
    assert "seccomp" in plan(make_spec(command=("x",)))["linux"]


DOCKER_FORMAT = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "archMap": [
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
    ],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}],
            "excludes": {"arches": ["arm64"]},
        },
        {"name": "exit", "action": "SCMP_ACT_ALLOW"},
    ],
}


def test_custom_profile_in_dockers_format() -> None:
    profile = parse_seccomp_profile(json.dumps(DOCKER_FORMAT))
    rendered = plan_seccomp(profile, DEFAULT_CAPABILITIES)
    assert rendered == {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
            },
            {"names": ["exit"], "action": "SCMP_ACT_ALLOW"},
        ],
    }
    arm = plan_seccomp(parse_seccomp_profile(json.dumps(DOCKER_FORMAT), "aarch64"),
                       ["CAP_SYS_ADMIN"], machine="aarch64")  # fmt: skip
    assert arm is not None
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert [r["names"] for r in arm["syscalls"]] == [["read", "write"], ["mount"], ["exit"]]


def test_custom_profile_in_runtime_spec_format() -> None:
    text = json.dumps(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
        }
    )
    spec = make_spec(command=("x",), seccomp=SeccompPolicy(SeccompMode.CUSTOM, text))
    assert plan(spec)["linux"]["seccomp"] == {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("not json", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"syscalls": []}', "no defaultAction"),
        ('{"defaultAction": "SCMP_ACT_MAYBE"}', "defaultAction is not a known value"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}',
         "names no syscall"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": '
         '"SCMP_ACT_ALLOW", "args": [{"index": -1, "op": "SCMP_CMP_EQ"}]}]}', "index"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": "1"}', "defaultErrnoRet"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "x", "names": ["y"], '
         '"action": "SCMP_ACT_ALLOW"}]}', "both name and names"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], '
         '"archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}', "both architectures and archMap"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": '
         '"SCMP_ACT_ALLOW", "excludes": {"minKernel": "five"}}]}', "excludes.minKernel"),
    ],
)  # fmt: skip
def test_custom_profile_refused(text: str, why: str) -> None:
    with pytest.raises(UsageError, match="invalid seccomp profile") as info:
        parse_seccomp_profile(text)
    assert why in info.value.message


def test_render_is_stable_json() -> None:
    config = case_busybox_default()
    text = render_oci_config(config)
    assert text.endswith("}\n")
    assert json.loads(text) == config
    assert render_oci_config(case_busybox_default()) == text


def test_resolved_user_without_home_sets_no_home() -> None:
    spec = make_spec(command=("x",), resolved_user=ResolvedUser(5, 5))
    assert not any(e.startswith("HOME=") for e in plan(spec)["process"]["env"])
