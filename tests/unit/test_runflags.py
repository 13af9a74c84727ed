"""docker run's isolation flags (rootless.containers.isolation, .hostcheck): each flag's
parser, what it puts in crun's config.json and the unit, and the host checks."""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import Any

import pytest

from rctlbase.errors import UsageError
from rootless.containers.hostcheck import (
    check_controllers,
    check_device,
    check_oom_score_adj,
    check_rlimits,
    claim_cidfile,
    discard_cidfile,
    privileged_devices,
    write_cidfile,
)
from rootless.containers.isolation import (
    RLIM_INFINITY,
    Device,
    Isolation,
    NamespaceMode,
    Ulimit,
    cpuset_mask,
    parse_blkio_weight,
    parse_cpu_period,
    parse_cpu_quota,
    parse_cpuset,
    parse_device,
    parse_group_add,
    parse_log_driver,
    parse_namespace_mode,
    parse_oom_score_adj,
    parse_sysctl,
    parse_ulimit,
    resolve_groups,
)
from rootless.containers.ocispec import MASKED_PATHS, plan_oci_config
from rootless.containers.record import ContainerRecord
from rootless.containers.spec import ALL_CAPABILITIES, ContainerSpec, ImageDefaults, Limits
from rootless.containers.unitspec import plan_spec, service_spec
from rootless.models import RunOptions
from units.properties import ServiceSpec, plan_properties

BUSYBOX = ImageDefaults(env=("PATH=/bin",), cmd=("sh",))
MAPS = ((0, 1000, 1), (1, 100000, 65536))
GROUP = "root:x:0:\nwheel:x:10:root\nnogroup:x:65534:\n"
RECORD = ContainerRecord("c" * 64, "c", "sha256:i", "img", ("true",), 0.0, "overlay")
LAUNCH = Path("/data/containers/c/bundle/launch.json")


def spec_of(**options: Any) -> ContainerSpec:
    return plan_spec(
        RunOptions(image="busybox", **options), "c1", "busybox", "sha256:" + "b" * 64, BUSYBOX, {}
    )


def config_of(**options: Any) -> dict[str, Any]:
    spec = spec_of(**options).with_resolved_user("root:x:0:0::/root:/bin/sh\n", GROUP)
    return plan_oci_config(
        spec, rootfs_path="/r", hostname="h1", uid_maps=MAPS, gid_maps=MAPS, nofile_hard=4096
    )


def unit_of(**options: Any) -> dict[str, Any]:
    spec = spec_of(**options)
    return {k: v[1] for k, v in plan_properties(service_spec(RECORD, spec, LAUNCH, stdio=None))}


def mount(config: dict[str, Any], destination: str) -> dict[str, Any] | None:
    found = [m for m in config["mounts"] if m["destination"] == destination]
    assert len(found) <= 1
    return found[0] if found else None


def error(func: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(UsageError) as info:
        func(*args, **kwargs)
    assert info.value.hint
    return str(info.value)


# ---- --ulimit ------------------------------------------------------------------------------


def test_parse_ulimit() -> None:
    assert parse_ulimit("nofile=1024:2048") == Ulimit("nofile", 1024, 2048)
    assert parse_ulimit("nproc=100") == Ulimit("nproc", 100, 100)
    assert parse_ulimit("core=-1") == Ulimit("core", RLIM_INFINITY, RLIM_INFINITY)
    assert parse_ulimit("core=0:-1") == Ulimit("core", 0, RLIM_INFINITY)


@pytest.mark.parametrize(
    "text", ["nofile", "nosuch=1", "nofile=2:1", "nofile=x", "nofile=1:2:3", "nofile=-2", "=1"]
)
def test_parse_ulimit_refuses(text: str) -> None:
    assert "--ulimit" in error(parse_ulimit, text)


def test_ulimits_are_the_process_rlimits_and_replace_the_default_nofile() -> None:
    config = config_of(ulimit=("nofile=100:200", "core=0"))
    assert config["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
    ]
    default = config_of()["process"]["rlimits"]
    assert default == [{"type": "RLIMIT_NOFILE", "soft": 4096, "hard": 4096}]
    other = config_of(ulimit=("nproc=50",))["process"]["rlimits"]
    assert other[0]["type"] == "RLIMIT_NOFILE"
    assert other[1] == {"type": "RLIMIT_NPROC", "soft": 50, "hard": 50}


def test_a_limit_given_twice_is_refused() -> None:
    assert "given twice" in error(spec_of, ulimit=("nofile=1", "nofile=2"))


def test_a_hard_limit_above_the_users_is_refused() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    check_rlimits(Isolation(ulimits=(Ulimit("nofile", 1, hard),)))
    if hard != resource.RLIM_INFINITY:
        text = error(check_rlimits, Isolation(ulimits=(Ulimit("nofile", 1, hard + 1),)))
        assert text == f"--ulimit nofile: the hard limit is above yours ({hard})"


# ---- --shm-size, --ipc ---------------------------------------------------------------------


def test_shm_size_sizes_the_dev_shm_tmpfs() -> None:
    shm = mount(config_of(shm_size="1g"), "/dev/shm")
    assert shm is not None
    assert "size=1048576k" in shm["options"]
    default = mount(config_of(), "/dev/shm")
    assert default is not None
    assert "size=65536k" in default["options"]
    assert "above 0" in error(spec_of, shm_size="0")
    assert "--shm-size" in error(spec_of, shm_size="lots")


def test_ipc_modes() -> None:
    kinds = [n["type"] for n in config_of(ipc="host")["linux"]["namespaces"]]
    assert "ipc" not in kinds
    host = config_of(ipc="host")
    assert mount(host, "/dev/shm") == {
        "destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
        "options": ["rbind", "nosuid", "noexec", "nodev"],
    }  # fmt: skip
    mqueue = mount(host, "/dev/mqueue")
    assert mqueue is not None
    assert mqueue["type"] == "bind"
    none = config_of(ipc="none")
    assert mount(none, "/dev/shm") is None
    assert "ipc" in [n["type"] for n in none["linux"]["namespaces"]]
    assert parse_namespace_mode("--ipc", "shareable") is NamespaceMode.PRIVATE
    assert "--shm-size can't go with --ipc host" in error(spec_of, ipc="host", shm_size="1g")


# ---- --sysctl ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["net.ipv4.ip_forward=1", "kernel.shmmax=100", "kernel.msgmax=1", "kernel.sem=1 2 3 4",
             "fs.mqueue.msg_max=20", "net/ipv4/ping_group_range=0 1"],
)  # fmt: skip
def test_namespaced_sysctls_are_accepted(text: str) -> None:
    key, value = parse_sysctl(text)
    assert "/" not in key
    assert value == text.partition("=")[2]


@pytest.mark.parametrize(
    "text", ["kernel.panic=1", "vm.swappiness=1", "kernel.hostname=x", "fs.file-max=1",
             "kernel.shmmax", "=1", "net..x=1", "net.a=1\n2"],
)  # fmt: skip
def test_other_sysctls_are_refused(text: str) -> None:
    assert "--sysctl" in error(parse_sysctl, text)


def test_sysctls_are_the_configs_over_ping_group_range() -> None:
    sysctl = config_of(sysctl=("net.ipv4.ip_forward=1", "net.ipv4.ping_group_range=0 0"))
    assert sysctl["linux"]["sysctl"] == {
        "net.ipv4.ping_group_range": "0 0",
        "net.ipv4.ip_forward": "1",
    }


def test_sysctls_that_would_change_the_hosts_are_refused_with_host_namespaces() -> None:
    assert "--network host" in error(spec_of, network="host", sysctl=("net.core.somaxconn=1",))
    assert "--ipc host" in error(spec_of, ipc="host", sysctl=("kernel.shmmax=1",))


# ---- --privileged, --security-opt ----------------------------------------------------------


def test_privileged_lifts_capabilities_seccomp_and_masked_paths() -> None:
    config = config_of(privileged=True)
    assert config["process"]["capabilities"]["effective"] == sorted(ALL_CAPABILITIES)
    assert "seccomp" not in config["linux"]
    assert "maskedPaths" not in config["linux"]
    assert "readonlyPaths" not in config["linux"]
    sysfs = mount(config, "/sys")
    assert sysfs is not None
    assert "ro" not in sysfs["options"]
    plain = config_of()
    assert "seccomp" in plain["linux"]
    assert plain["linux"]["maskedPaths"] == list(MASKED_PATHS)
    dropped = config_of(privileged=True, cap_drop=("NET_RAW",))
    assert "CAP_NET_RAW" not in dropped["process"]["capabilities"]["effective"]


def test_security_opt_label_and_apparmor_are_accepted_and_change_nothing() -> None:
    config = config_of(security_opt=("label=disable", "apparmor=unconfined", "label:type:x"))
    assert config == config_of()
    assert "not supported" in error(spec_of, security_opt=("mask=/x",))
    lifted = config_of(security_opt=("systempaths=unconfined",))
    assert "maskedPaths" not in lifted["linux"]
    nnp = config_of(security_opt=("no-new-privileges",))
    assert nnp["process"]["noNewPrivileges"] is True


# ---- --device ------------------------------------------------------------------------------


def test_parse_device() -> None:
    assert parse_device("/dev/fuse") == Device("/dev/fuse", "/dev/fuse")
    assert parse_device("/dev/fuse:/dev/f2") == Device("/dev/fuse", "/dev/f2")
    assert parse_device("/dev/fuse:rw") == Device("/dev/fuse", "/dev/fuse")
    assert parse_device("/dev/fuse:/dev/f2:rwm") == Device("/dev/fuse", "/dev/f2")


@pytest.mark.parametrize(
    "text", ["", "fuse", "/dev/fuse:r", "/dev/fuse:/dev/f:x", "/dev/a:/dev/b:rw:m",
             "/dev/fuse:dev/f", "/dev/../etc/passwd"],
)  # fmt: skip
def test_parse_device_refuses(text: str) -> None:
    assert "--device" in error(parse_device, text)


def test_devices_are_bound_without_nodev() -> None:
    config = config_of(device=("/dev/fuse:/dev/f2",))
    node = mount(config, "/dev/f2")
    assert node is not None
    assert node["type"] == "bind"
    assert node["source"] == "/dev/fuse"
    assert "nodev" not in node["options"]


def test_check_device_wants_a_node_the_user_can_open(tmp_path: Path) -> None:
    assert check_device(Device("/dev/null", "/dev/null")) == Device("/dev/null", "/dev/null")
    assert "not a device node" in error(check_device, Device(str(tmp_path), "/dev/x"))
    assert "No such file" in error(check_device, Device(str(tmp_path / "none"), "/dev/x"))
    if not os.access("/dev/mem", os.R_OK) and os.path.exists("/dev/mem"):
        assert "can't open it" in error(check_device, Device("/dev/mem", "/dev/mem"))


def test_privileged_devices_are_the_nodes_the_user_can_open() -> None:
    found = {d.source for d in privileged_devices()}
    assert "/dev/null" not in found  # crun's default
    assert all(os.access(path, os.R_OK | os.W_OK) for path in found)
    assert not any(Path(path).name.startswith("tty") for path in found)


# ---- namespaces, --hostname, --group-add ---------------------------------------------------


def test_host_namespace_modes_leave_the_namespace_out() -> None:
    config = config_of(pid="host", uts="host", cgroupns="host")
    assert [n["type"] for n in config["linux"]["namespaces"]] == ["network", "ipc", "mount"]
    assert "hostname" not in config
    proc = mount(config, "/proc")
    assert proc is not None
    assert (proc["type"], proc["source"]) == ("bind", "/proc")
    default = config_of()
    assert [n["type"] for n in default["linux"]["namespaces"]] == [
        "pid", "network", "ipc", "uts", "mount", "cgroup",
    ]  # fmt: skip
    assert default["hostname"] == "h1"


@pytest.mark.parametrize("flag", ["--ipc", "--pid", "--uts", "--cgroupns"])
def test_namespace_modes_refuse_containers_and_unknown_ones(flag: str) -> None:
    assert "another container's namespace" in error(parse_namespace_mode, flag, "container:x")
    assert "unknown mode" in error(parse_namespace_mode, flag, "bogus")


def test_hostname_conflicts_with_uts_host() -> None:
    assert "--hostname and --uts host" in error(spec_of, hostname="h", uts="host")


def test_group_add_resolves_names_in_the_images_group_file() -> None:
    assert resolve_groups(("10", "nogroup", "keep-groups", "10"), GROUP) == (10, 65534)
    assert "no such group" in error(resolve_groups, ("staff",), GROUP)
    user = config_of(group_add=("wheel", "123"))["process"]["user"]
    assert user["additionalGids"] == [10, 123]
    assert parse_group_add("keep-groups") == "keep-groups"
    assert "--group-add" in error(parse_group_add, "a b")


def test_keep_groups_is_crun_s_annotation() -> None:
    config = config_of(group_add=("keep-groups",))
    assert config["annotations"]["run.oci.keep_original_groups"] == "1"
    assert "run.oci.keep_original_groups" not in config_of()["annotations"]


# ---- --oom-score-adj, --log-driver, --mac-address ------------------------------------------


def test_oom_score_adj(tmp_path: Path) -> None:
    assert config_of(oom_score_adj=500)["process"]["oomScoreAdj"] == 500
    assert "oomScoreAdj" not in config_of()["process"]
    assert "out of range" in error(parse_oom_score_adj, 1001)
    current = tmp_path / "oom"
    current.write_text("100\n")
    check_oom_score_adj(Isolation(oom_score_adj=100), current)
    assert "below the user's own (100)" in error(
        check_oom_score_adj, Isolation(oom_score_adj=99), current
    )


def test_log_driver_none_sends_the_output_nowhere() -> None:
    assert unit_of(log_driver="none")["StandardOutput"] == "null"
    assert unit_of(log_driver="none")["StandardError"] == "null"
    assert "StandardOutput" not in unit_of(log_driver="journald")
    assert parse_log_driver("journald") == "journald"
    assert "--log-driver 'json-file' is not supported" in error(parse_log_driver, "json-file")


def test_mac_address_is_refused_with_the_reason() -> None:
    assert "can't be chosen here" in error(spec_of, mac_address="02:42:ac:11:00:02")


# ---- cgroup limits: the unit's properties --------------------------------------------------


def test_parse_cpuset_and_its_mask() -> None:
    assert parse_cpuset("0-2,4") == "0-2,4"
    assert cpuset_mask("0-2,4") == bytes([0b10111])
    assert cpuset_mask("9") == bytes([0, 0b10])
    for bad in ("", "a", "2-1", "1,", "99999"):
        assert "--cpuset-cpus" in error(parse_cpuset, bad)


def test_cpu_quota_period_blkio_ranges() -> None:
    assert parse_cpu_quota(-1) == 0
    assert parse_cpu_quota(50000) == 50000
    assert "below 1000" in error(parse_cpu_quota, 999)
    assert "out of range" in error(parse_cpu_period, 999)
    assert parse_blkio_weight(10) == 10
    assert "out of range" in error(parse_blkio_weight, 1001)


def test_cgroup_limits_become_unit_properties() -> None:
    unit = unit_of(memory="1g", memory_reservation="512m", cpuset_cpus="0,1", cpu_quota=50000,
                   cpu_period=200000, blkio_weight=300)  # fmt: skip
    assert unit["MemoryLow"] == 512 << 20
    assert unit["AllowedCPUs"] == bytes([0b11])
    assert unit["CPUQuotaPerSecUSec"] == 250000  # 50 ms per 200 ms: a quarter of a CPU
    assert unit["CPUQuotaPeriodUSec"] == 200000
    assert unit["IOWeight"] == 300
    assert unit_of(cpu_quota=50000)["CPUQuotaPerSecUSec"] == 500000
    plain = unit_of()
    assert not {"MemoryLow", "AllowedCPUs", "CPUQuotaPeriodUSec", "IOWeight"} & set(plain)


def test_limits_that_conflict_are_refused() -> None:
    assert "above --memory" in error(spec_of, memory="64m", memory_reservation="128m")
    assert "--cpus and --cpu-quota" in error(spec_of, cpus="1", cpu_quota=50000)


def test_a_limit_without_its_controller_is_refused() -> None:
    check_controllers(Limits(cpuset_cpus="0", blkio_weight=10), ["cpuset", "io"])
    text = error(check_controllers, Limits(cpuset_cpus="0"), ["cpu", "memory", "pids"])
    assert text.startswith("--cpuset-cpus needs the cpuset cgroup controller")
    assert "io cgroup" in error(check_controllers, Limits(blkio_weight=10), ["cpu"])


def test_service_spec_checks_its_new_numbers() -> None:
    for bad in ({"io_weight": 0}, {"standard_output": "tty"}, {"memory_low": -1}):
        with pytest.raises(UsageError):
            ServiceSpec(name="a.service", exec_start=("/bin/true",), **bad)


# ---- --cidfile -----------------------------------------------------------------------------


def test_cidfile_is_written_once_and_removed_when_the_create_fails(tmp_path: Path) -> None:
    path = tmp_path / "cid"
    write_cidfile(str(path), "abc")
    assert path.read_text() == "abc"
    assert "the file exists" in error(write_cidfile, str(path), "def")
    assert "the file exists" in error(claim_cidfile, str(path))
    discard_cidfile(str(path), "other")
    assert path.exists()  # not this create's
    discard_cidfile(str(path), "abc")
    assert not path.exists()
    write_cidfile(None, "abc")
    assert "--cidfile" in error(claim_cidfile, str(tmp_path / "no" / "dir"))


# ---- definitions ---------------------------------------------------------------------------


def test_definition_keys_are_checked_with_the_flags_parsers() -> None:
    from rootless.definitions.load import parse_file  # noqa: PLC0415
    from rootless.definitions.schema import Problem  # noqa: PLC0415

    text = (
        '[container.a]\nimage = "busybox"\nsysctls = { "kernel.panic" = 1 }\n'
        'ulimits = { nofile = "9:1" }\ndevices = ["fuse"]\nshm_size = "lots"\n'
    )
    problems: list[Problem] = []
    parse_file(Path("/home/a/.config/rctl/definitions/a.toml"), text, problems)
    found = {(p.line, p.key) for p in problems}
    assert found == {(3, "sysctls"), (4, "ulimits"), (5, "devices"), (6, "shm_size")}


def test_crun_only_options_are_refused_with_runc() -> None:
    from rootless.containers.hostcheck import check_run  # noqa: PLC0415

    check_run(spec_of(cgroupns="host", group_add=("keep-groups",)), "crun", [], cidfile=None)
    text = error(check_run, spec_of(cgroupns="host"), "runc", [], cidfile=None)
    assert text == "--cgroupns host needs crun, not runc"
    text = error(check_run, spec_of(group_add=("keep-groups",)), "runc", [], cidfile=None)
    assert text == "--group-add keep-groups needs crun, not runc"


# ---- run's attach flags --------------------------------------------------------------------


def test_attach_picks_the_streams_and_the_rest_see_dev_null() -> None:
    import click  # noqa: PLC0415

    from rootless.cli.containers import attached_stdio, sig_proxy_wanted  # noqa: PLC0415

    def devnull(fd: int) -> bool:
        same = os.path.samestat(os.fstat(fd), os.stat(os.devnull))
        if fd > 2:
            os.close(fd)
        return same

    interactive = RunOptions(image="i", interactive=True)
    assert attached_stdio(interactive, (), None) == (0, 1, 2)
    stdin, out, err = attached_stdio(interactive, ("STDERR",), None)
    assert (devnull(stdin), devnull(out), err) == (True, True, 2)
    stdin, out, err = attached_stdio(RunOptions(image="i"), ("stdin", "stdout"), "")
    assert (devnull(stdin), out, devnull(err)) == (True, 1, True)  # stdin only with -i
    with pytest.raises(click.UsageError, match="-a and -d"):
        attached_stdio(RunOptions(image="i", detach=True), ("stdout",), None)
    with pytest.raises(click.BadParameter):
        attached_stdio(interactive, ("stdio",), None)
    with pytest.raises(click.BadParameter, match="no detach sequence"):
        attached_stdio(interactive, (), "ctrl-p,ctrl-q")
    assert sig_proxy_wanted("true") is True
    assert sig_proxy_wanted("False") is False
    with pytest.raises(click.BadParameter):
        sig_proxy_wanted("busybox")


# ---- inspect -------------------------------------------------------------------------------


def test_inspect_shows_the_flags_in_dockers_host_config() -> None:
    from rootless.containers.recorded import ISOLATION_KEYS, record_options  # noqa: PLC0415
    from rootless.reports.containers import HostConfig  # noqa: PLC0415

    given: dict[str, Any] = {
        "ulimit": ("nofile=10:20",), "device": ("/dev/fuse",), "shm_size": "1m",
        "sysctl": ("net.ipv4.ip_forward=1",), "ipc": "shareable", "pid": "host",
        "group_add": ("10",), "oom_score_adj": 5, "log_driver": "none", "cidfile": "/tmp/c",
        "cpuset_cpus": "0", "cpu_quota": 50000, "privileged": True,
    }  # fmt: skip
    options = RunOptions(image="busybox", **given)
    recorded = record_options(
        options, spec_of(**given), network_mode="slirp4netns", runtime="crun",
        exposed_ports=(), image_volumes=(),
    )  # fmt: skip
    isolation = {k: recorded[k] for k in ISOLATION_KEYS if k in recorded}
    shown = HostConfig("slirp4netns", "crun", privileged=True, isolation=isolation).to_docker()
    assert shown["Privileged"] is True
    assert shown["ShmSize"] == 1 << 20
    assert shown["Ulimits"] == [{"Name": "nofile", "Hard": 20, "Soft": 10}]
    assert shown["Devices"] == [
        {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}
    ]
    assert shown["Sysctls"] == {"net.ipv4.ip_forward": "1"}
    assert (shown["IpcMode"], shown["PidMode"], shown["UTSMode"]) == ("shareable", "host", "")
    assert shown["GroupAdd"] == ["10"]
    assert shown["OomScoreAdj"] == 5
    assert shown["LogConfig"] == {"Type": "none", "Config": {}}
    assert shown["ContainerIDFile"] == "/tmp/c"
    assert (shown["CpusetCpus"], shown["CpuQuota"]) == ("0", 50000)
    plain = HostConfig("slirp4netns", "crun").to_docker()
    assert set(shown) - set(plain) == {"Sysctls"}  # docker leaves empty Sysctls out
