"""docker run's flags, checked from inside the container, with crun and with runc: limits,
/dev/shm, sysctls, capabilities, device nodes, namespaces, the cidfile, the log driver.

The cgroup limits (``--cpuset-cpus``, ``--cpu-quota``...) need real controllers: they are in
``test_run_flags_vm.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hostkit import Rctl, run, wait_for

R = "127.0.0.1:5000/test"
BUSYBOX = f"{R}/busybox"
RUNTIMES = pytest.mark.parametrize("runtime", ["crun", "runc"])


def sh(rctl: Rctl, runtime: str, *flags: str, script: str) -> str:
    """The output of ``script`` in a new busybox container run with ``flags``."""
    argv = ("run", "--rm", "--runtime", runtime, *flags, BUSYBOX, "sh", "-c", script)
    return str(rctl(*argv).stdout)


def refused(rctl: Rctl, *flags: str) -> str:
    """The one-line error of a run refused at create, after checking its exit code."""
    result = rctl("run", "--rm", *flags, BUSYBOX, "true", check=False)
    assert result.returncode == 125, result.stderr
    assert "Traceback" not in result.stderr
    return str(result.stderr.splitlines()[0])


@RUNTIMES
def test_ulimit_is_the_containers_rlimit(rctl: Rctl, runtime: str) -> None:
    out = sh(rctl, runtime, "--ulimit", "nofile=512:1024", "--ulimit", "core=0",
             script="ulimit -n; ulimit -Hn; ulimit -c")  # fmt: skip
    assert out.split() == ["512", "1024", "0"]


def test_ulimit_above_the_users_hard_limit_is_refused(rctl: Rctl) -> None:
    line = refused(rctl, "--ulimit", "nofile=1:99999999999")
    assert line.startswith("Error: --ulimit nofile: the hard limit is above yours")


@RUNTIMES
def test_shm_size_sizes_dev_shm(rctl: Rctl, runtime: str) -> None:
    out = sh(rctl, runtime, "--shm-size", "128m", script="df -k /dev/shm | tail -1")
    assert out.split()[1] == str(128 * 1024)
    default = sh(rctl, runtime, script="df -k /dev/shm | tail -1")
    assert default.split()[1] == str(64 * 1024)


@RUNTIMES
def test_namespaced_sysctls_are_set(rctl: Rctl, runtime: str) -> None:
    out = sh(rctl, runtime, "--sysctl", "net.ipv4.ip_forward=1",
             script="cat /proc/sys/net/ipv4/ip_forward")  # fmt: skip
    assert out.split() == ["1"]


def test_ipc_sysctls_with_runc(rctl: Rctl) -> None:
    # crun writes sysctls through the /proc it starts in, whose /proc/sys systemd-nspawn
    # mounts read-only (net/ aside): crun's are checked in the vm tier (test_run_flags_vm.py).
    out = sh(rctl, "runc", "--sysctl", "kernel.shmmni=1234", "--sysctl", "kernel.msgmax=4321",
             script="cat /proc/sys/kernel/shmmni /proc/sys/kernel/msgmax")  # fmt: skip
    assert out.split() == ["1234", "4321"]


def test_host_sysctls_are_refused(rctl: Rctl) -> None:
    line = refused(rctl, "--sysctl", "kernel.panic=1")
    assert "not a namespaced sysctl" in line
    line = refused(rctl, "--network", "host", "--sysctl", "net.ipv4.ip_forward=1")
    assert "--network host" in line


def seccomp_filters(text: str) -> int:
    (line,) = [x for x in text.splitlines() if x.startswith("Seccomp_filters:")]
    return int(line.split()[1])


def cap_eff(text: str) -> int:
    (line,) = [x for x in text.splitlines() if x.startswith("CapEff:")]
    return int(line.split()[1], 16)


@RUNTIMES
def test_privileged_has_every_capability_no_seccomp_and_no_masked_paths(
    rctl: Rctl, runtime: str
) -> None:
    last_cap = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    out = sh(rctl, runtime, "--privileged",
             script="cat /proc/self/status; grep ' /proc/kcore ' /proc/self/mountinfo | wc -l; "
             "touch /sys/x 2>&1 | grep -c Read-only; true")  # fmt: skip
    assert cap_eff(out) == (1 << (last_cap + 1)) - 1
    assert out.split()[-2:] == ["0", "0"]  # /proc/kcore not masked, /sys writable
    plain = sh(rctl, runtime, script="cat /proc/self/status")
    assert cap_eff(plain) < cap_eff(out)
    # systemd-nspawn filters the test host's processes already: the default profile is
    # one filter more, --privileged none.
    assert seccomp_filters(plain) == seccomp_filters(out) + 1


@RUNTIMES
def test_device_node_is_present_and_usable(rctl: Rctl, runtime: str) -> None:
    out = sh(rctl, runtime, "--device", "/dev/fuse", "--device", "/dev/null:/dev/mynull",
             script="ls -l /dev/fuse | cut -c1; echo hi > /dev/mynull && echo written")  # fmt: skip
    assert out.split() == ["c", "written"]


def test_device_the_user_cant_open_is_refused(rctl: Rctl) -> None:
    assert not os.access("/dev/mem", os.R_OK)
    line = refused(rctl, "--device", "/dev/mem")
    assert "--device /dev/mem" in line
    assert "not a device node" in refused(rctl, "--device", "/etc/passwd")


def test_privileged_gets_the_devices_the_user_can_open(rctl: Rctl) -> None:
    out = sh(rctl, "crun", "--privileged", script="ls /dev")
    assert "fuse" in out.split()
    assert "mem" not in out.split()


@RUNTIMES
def test_namespace_modes(rctl: Rctl, runtime: str) -> None:
    host_uts = os.readlink("/proc/self/ns/uts")
    host_ipc = os.readlink("/proc/self/ns/ipc")
    out = sh(rctl, runtime, "--uts", "host", "--ipc", "host",
             script="readlink /proc/self/ns/uts; readlink /proc/self/ns/ipc; hostname")  # fmt: skip
    assert out.split() == [host_uts, host_ipc, os.uname().nodename]
    own = sh(rctl, runtime, script="readlink /proc/self/ns/uts; readlink /proc/self/ns/ipc")
    assert own.split()[0] != host_uts
    assert own.split()[1] != host_ipc
    if runtime == "crun":
        cgroup = sh(rctl, runtime, "--cgroupns", "host", script="readlink /proc/self/ns/cgroup")
        assert cgroup.strip() == os.readlink("/proc/self/ns/cgroup")
    else:
        line = refused(rctl, "--runtime", runtime, "--cgroupns", "host")
        assert line == f"Error: --cgroupns host needs crun, not {runtime}"
    none = sh(
        rctl, runtime, "--ipc", "none", script="grep -c ' /dev/shm ' /proc/self/mountinfo || true"
    )
    assert none.strip() == "0"


@RUNTIMES
def test_pid_host_sees_the_hosts_processes(rctl: Rctl, runtime: str) -> None:
    out = sh(rctl, runtime, "--pid", "host", script="echo $$; readlink /proc/self/ns/pid")
    pid, ns = out.split()
    assert int(pid) != 1
    assert ns == os.readlink("/proc/self/ns/pid")


def test_container_namespace_modes_are_refused(rctl: Rctl) -> None:
    for flag in ("--pid", "--ipc", "--uts"):
        assert "another container's namespace" in refused(rctl, flag, "container:x")
    assert refused(rctl, "--mac-address", "02:42:ac:11:00:02").startswith(
        "Error: --mac-address 02:42:ac:11:00:02: the container's MAC address can't be chosen"
    )


@RUNTIMES
def test_hostname_and_group_add(rctl: Rctl, runtime: str) -> None:
    out = sh(rctl, runtime, "--hostname", "box1", "--group-add", "123", "--group-add",
             "nogroup", script="hostname; id -G")  # fmt: skip
    name, *groups = out.split()
    assert name == "box1"
    assert {"123", "65534"} <= set(groups)  # the image's /etc/group: nogroup is 65534
    line = refused(rctl, "--group-add", "nosuchgroup")
    assert "no such group in the image's /etc/group" in line


def test_cidfile_is_written_and_never_overwritten(rctl: Rctl, tmp_path: Path) -> None:
    cidfile = tmp_path / "cid"
    cid = rctl("run", "-d", "--cidfile", str(cidfile), BUSYBOX, "sleep", "60").stdout.strip()
    assert cidfile.read_text() == cid
    line = refused(rctl, "--cidfile", str(cidfile))
    assert line == f"Error: --cidfile {cidfile}: the file exists"
    assert cidfile.read_text() == cid
    created = tmp_path / "created"
    cid2 = rctl("create", "--cidfile", str(created), BUSYBOX, "true").stdout.strip()
    assert created.read_text() == cid2


def test_oom_score_adj_is_the_processs(rctl: Rctl) -> None:
    mine = int(Path("/proc/self/oom_score_adj").read_text())
    out = sh(
        rctl, "crun", "--oom-score-adj", str(mine + 100), script="cat /proc/self/oom_score_adj"
    )
    assert int(out) == mine + 100
    if mine > -1000:
        assert "below the user's own" in refused(rctl, "--oom-score-adj", "-1000")


def test_log_driver_none_keeps_nothing_in_the_journal(rctl: Rctl) -> None:
    cid = rctl("run", "-d", "--log-driver", "none", BUSYBOX, "sh", "-c",
               "echo quiet-line; sleep 60").stdout.strip()  # fmt: skip
    logged = rctl("run", "-d", BUSYBOX, "sh", "-c", "echo loud-line; sleep 60").stdout.strip()
    run("sleep", "1")
    assert "loud-line" in rctl("logs", logged).stdout
    assert "quiet-line" not in rctl("logs", cid).stdout
    attached = rctl("run", "--rm", "--log-driver", "none", BUSYBOX, "echo", "shown")
    assert attached.stdout == "shown\n"
    assert "--log-driver 'syslog' is not supported" in refused(rctl, "--log-driver", "syslog")


def test_security_opt_label_and_apparmor_are_accepted(rctl: Rctl) -> None:
    out = rctl("run", "--rm", "--security-opt", "label=disable", "--security-opt",
               "apparmor=unconfined", "--security-opt", "no-new-privileges", BUSYBOX,
               "grep", "NoNewPrivs", "/proc/self/status").stdout  # fmt: skip
    assert out.split() == ["NoNewPrivs:", "1"]


def test_platform_pulls_and_checks_the_images_platform(rctl: Rctl) -> None:
    image = f"{R}/multiarch"
    cid = rctl("create", "--platform", "linux/arm64", image, "true").stdout.strip()
    (info,) = json.loads(rctl("image", "inspect", image).stdout)
    assert info["Architecture"] == "arm64"
    rctl("rm", cid)
    amd = rctl("run", "--rm", "--platform", "linux/amd64", image, "true")
    assert amd.returncode == 0
    (info,) = json.loads(rctl("image", "inspect", image).stdout)
    assert info["Architecture"] == "amd64"
    line = refused(rctl, "--platform", "linux/arm64", "--pull", "never", image)
    assert "is linux/amd64, not linux/arm64" in line


def test_attach_picks_the_streams(rctl: Rctl) -> None:
    script = "echo out; echo err >&2"
    both = rctl("run", "--rm", BUSYBOX, "sh", "-c", script)
    assert (both.stdout, both.stderr) == ("out\n", "err\n")
    only = rctl("run", "--rm", "-a", "stderr", BUSYBOX, "sh", "-c", script)
    assert (only.stdout, only.stderr) == ("", "err\n")
    line = refused(rctl, "-a", "stdout", "-d")
    assert "conflicting options: -a and -d" in line
    echoed = rctl("run", "--rm", "--interactive", "-a", "stdin", "-a", "stdout", BUSYBOX, "cat",
                  input_data=b"typed\n")  # fmt: skip
    assert echoed.stdout == b"typed\n"
    closed = rctl("run", "--rm", BUSYBOX, "cat", input_data=b"typed\n")  # no -i: /dev/null
    assert closed.stdout == b""
    terminal = rctl("run", "--rm", "--tty", BUSYBOX, "sh", "-c", "readlink /proc/self/fd/1")
    assert terminal.stdout.startswith("/dev/pts/")


def test_sig_proxy_false_leaves_signals_to_the_cli(rctl: Rctl) -> None:
    proc = rctl.popen("run", "--rm", "--sig-proxy=false", "--name", "sp", BUSYBOX, "sleep", "30")
    wait_for("the container to run", lambda: "sp" in rctl("ps").stdout, timeout=60)
    proc.terminate()  # the CLI ends; the container is not signalled
    proc.wait(timeout=30)
    run("sleep", "1")
    assert "Up " in rctl("ps", "--filter", "name=sp").stdout
    rctl("rm", "-f", "sp")
