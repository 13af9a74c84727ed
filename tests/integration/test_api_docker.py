"""The docker CLI (Debian 12's 20.10, API 1.41) against ``rctl system service``."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from apikit import BUSYBOX, HTTPD, ApiService, api
from hostkit import fetch, free_port, wait_for

__all__ = ["api"]


def test_version_and_info(api: ApiService) -> None:
    out = api.docker("version", "--format", "{{.Server.APIVersion}} {{.Client.APIVersion}}")
    assert out.stdout.split() == ["1.44", "1.41"]
    info = json.loads(api.docker("info", "--format", "{{json .}}").stdout)
    assert info["Containers"] == 0


def test_pull_images_inspect_tag_rmi(api: ApiService) -> None:
    pulled = api.docker("pull", BUSYBOX)
    assert "Pulling from" in pulled.stdout or "up to date" in pulled.stdout, pulled.stdout
    listed = api.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert BUSYBOX in listed
    image_id = api.docker("inspect", "--format", "{{.Id}}", BUSYBOX).stdout.strip()
    assert image_id.startswith("sha256:")
    api.docker("tag", BUSYBOX, "mine/copy:1")
    assert "mine/copy:1" in api.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout
    api.docker("rmi", "mine/copy:1")
    history = api.docker("history", "-q", BUSYBOX).stdout
    assert history.strip()
    missing = api.docker("inspect", "--type", "image", "no/such:image", check=False)
    assert missing.returncode != 0
    assert "No such" in missing.stderr or "not found" in missing.stderr.lower()


def test_run_attached_output_and_exit_code(api: ApiService) -> None:
    api.docker("pull", BUSYBOX)
    out = api.docker("run", "--rm", BUSYBOX, "sh", "-c", "echo out; echo err >&2; exit 3",
                     check=False)  # fmt: skip
    assert out.returncode == 3, (out.stdout, out.stderr, api.service_log())
    assert out.stdout == "out\n"
    assert out.stderr == "err\n"
    assert api.docker("ps", "-aq").stdout.strip() == ""  # --rm removed it


def test_run_pulls_a_missing_image(api: ApiService) -> None:
    out = api.docker("run", "--rm", BUSYBOX, "echo", "hello")
    assert out.stdout == "hello\n"
    assert "Unable to find image" in out.stderr
    assert "Pull complete" in out.stderr


def test_run_detached_publish_ps_logs_exec_stop_rm(api: ApiService) -> None:
    port = free_port()
    cid = api.docker("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", HTTPD).stdout
    cid = cid.strip()
    assert len(cid) == 64
    wait_for("the published port", lambda: fetch(f"http://127.0.0.1:{port}/"))
    rows = api.docker("ps", "--filter", "name=web", "--format", "{{.Names}} {{.Ports}}").stdout
    assert rows.split()[0] == "web"
    assert f"127.0.0.1:{port}->80/tcp" in rows
    assert api.docker("exec", "web", "cat", "/etc/hostname").stdout.strip()
    code = api.docker("exec", "web", "sh", "-c", "exit 4", check=False).returncode
    assert code == 4
    api.docker("run", "--rm", BUSYBOX, "true")
    state = api.docker("inspect", "--format", "{{.State.Status}} {{.Name}}", "web").stdout
    assert state.split() == ["running", "/web"]
    api.docker("stop", "-t", "1", "web")
    assert "exited" in api.docker("inspect", "--format", "{{.State.Status}}", "web").stdout
    api.docker("rm", "-f", "web")
    assert api.docker("ps", "-aq").stdout.strip() == ""


def test_logs(api: ApiService) -> None:
    api.docker("run", "-d", "--name", "talk", BUSYBOX, "sh", "-c", "echo one; echo two")
    wait_for("the container's end", lambda: "exited" in api.docker(
        "inspect", "--format", "{{.State.Status}}", "talk").stdout)  # fmt: skip
    out = api.docker("logs", "talk")
    assert out.stdout == "one\ntwo\n"
    assert api.docker("logs", "--tail", "1", "talk").stdout == "two\n"
    api.docker("rm", "talk")


def test_volumes_and_networks(api: ApiService) -> None:
    api.docker("volume", "create", "data")
    assert "data" in api.docker("volume", "ls", "--format", "{{.Name}}").stdout.split()
    api.docker("run", "--rm", "-v", "data:/data", BUSYBOX, "sh", "-c", "echo hi > /data/f")
    out = api.docker("run", "--rm", "-v", "data:/data", BUSYBOX, "cat", "/data/f")
    assert out.stdout == "hi\n"
    api.docker("volume", "rm", "data")
    api.docker("network", "create", "backend")
    assert "backend" in api.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    api.docker("network", "inspect", "backend")
    api.docker("network", "rm", "backend")


def test_errors_are_docker_shaped(api: ApiService) -> None:
    out = api.docker("rm", "no-such-container", check=False)
    assert out.returncode == 1
    assert "No such container: no-such-container" in out.stderr
    api.docker("create", "--name", "taken", BUSYBOX, "true")
    out = api.docker("create", "--name", "taken", BUSYBOX, "true", check=False)
    assert out.returncode == 1
    assert "Error response from daemon" in out.stderr
    assert "taken" in out.stderr


def test_socket_activation_and_idle_exit(tmp_path: Path) -> None:
    """The packaged units: rctl.socket starts rctl.service with the socket passed in, which
    answers the docker CLI and exits when idle; the next client starts it again."""
    units = Path.home() / ".config/systemd/user"
    units.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    source = Path(__file__).resolve().parents[2] / "packaging"
    names = ("rctl-apitest.socket", "rctl-apitest.service")
    for src, name in zip(("rctl.socket", "rctl.service"), names, strict=True):
        text = (source / src).read_text().replace("@PYTHON@", python)
        text = text.replace("rctl.socket", names[0]).replace(
            "%t/rctl/rctl.sock", "%t/rctl-apitest.sock"
        )
        text = text.replace("--time 5", "--time 2")
        (units / name).write_text(text)
    env = {**os.environ, "DOCKER_HOST": f"unix://{os.environ['XDG_RUNTIME_DIR']}/rctl-apitest.sock",
           "DOCKER_CONFIG": str(tmp_path)}  # fmt: skip

    def systemctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["systemctl", "--user", *args], capture_output=True, text=True,
                              check=False)  # fmt: skip

    try:
        systemctl("daemon-reload")
        assert systemctl("start", names[0]).returncode == 0
        sock = Path(os.environ["XDG_RUNTIME_DIR"]) / "rctl-apitest.sock"
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        for _ in range(2):
            out = subprocess.run(["docker", "version", "--format", "{{.Server.APIVersion}}"],
                                 env=env, capture_output=True, text=True, check=False)  # fmt: skip
            assert out.stdout.strip() == "1.44", (out.stdout, out.stderr)
            assert systemctl("is-active", names[1]).stdout.strip() == "active"
            wait_for(
                "the idle exit",
                lambda: systemctl("is-active", names[1]).stdout.strip() == "inactive",
                timeout=30,
            )
            assert systemctl("is-active", names[0]).stdout.strip() == "active"
    finally:
        systemctl("stop", names[0], names[1])
        for name in names:
            (units / name).unlink(missing_ok=True)
        systemctl("daemon-reload")


def test_cp_out_of_a_container_and_system_df(api: ApiService, tmp_path: Path) -> None:
    api.docker("pull", BUSYBOX)
    api.docker("run", "-d", "--name", "files", BUSYBOX, "sh", "-c",
               "mkdir -p /d/sub && echo hi > /d/sub/f && ln -s sub/f /d/link && sleep 60")  # fmt: skip
    wait_for("the files", lambda: api.docker("exec", "files", "test", "-L", "/d/link",
                                             check=False).returncode == 0)  # fmt: skip
    api.docker("cp", "files:/d/sub/f", str(tmp_path / "f"))
    assert (tmp_path / "f").read_text() == "hi\n"
    api.docker("cp", "files:/d", str(tmp_path / "d"))
    assert (tmp_path / "d/sub/f").read_text() == "hi\n"
    assert os.readlink(tmp_path / "d/link") == "sub/f"
    missing = api.docker("cp", "files:/nope", str(tmp_path / "n"), check=False)
    assert missing.returncode == 1
    assert "nope" in missing.stderr
    api.docker("cp", str(tmp_path / "f"), "files:/tmp/")
    api.docker("cp", str(tmp_path / "f"), "files:/tmp/renamed")
    api.docker("cp", str(tmp_path / "d"), "files:/copied")
    shown = api.docker("exec", "files", "sh", "-c",
                       "cat /tmp/f /tmp/renamed /copied/sub/f; readlink /copied/link; "
                       "stat -c %u:%g /tmp/f").stdout  # fmt: skip
    assert shown == "hi\nhi\nhi\nsub/f\n0:0\n", shown
    df = api.docker("system", "df", "--format", "{{.Type}} {{.TotalCount}}").stdout
    assert "Images 1" in df and "Containers 1" in df, df
    api.docker("rm", "-f", "files")


def test_docker_login_then_pull_sends_credentials(api: ApiService) -> None:
    login = api.docker("login", "-u", "someone", "--password-stdin", "127.0.0.1:5000",
                       input_data="secret\n")  # fmt: skip
    assert "Login Succeeded" in login.stdout
    api.docker("pull", BUSYBOX)  # the CLI now sends X-Registry-Auth with it
    assert api.alive()


def test_update_limits_live_and_restart_policy(api: ApiService) -> None:
    api.docker("pull", BUSYBOX)
    api.docker("run", "-d", "--name", "upd", "--memory", "128m", BUSYBOX, "sleep", "300")
    api.docker("update", "--memory", "64m", "--memory-swap", "96m", "--cpus", "0.5",
               "--pids-limit", "50", "--restart", "on-failure:2", "upd")  # fmt: skip
    shown = api.docker(
        "inspect", "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} "
        "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
        "upd",
    ).stdout.split()  # fmt: skip
    assert shown == ["67108864", "500000000", "50", "on-failure:2"], shown
    unit = "rctl-" + api.docker("inspect", "--format", "{{.Id}}", "upd").stdout.strip()
    props = subprocess.run(
        ["systemctl", "--user", "show", f"{unit}.service", "-p", "MemoryMax", "-p", "TasksMax",
         "-p", "CPUQuotaPerSecUSec", "-p", "MemorySwapMax"],
        capture_output=True, text=True, check=True, env=api.env,
    ).stdout.split()  # fmt: skip
    assert "MemoryMax=67108864" in props, props
    assert "TasksMax=50" in props and "CPUQuotaPerSecUSec=500ms" in props, props
    assert "MemorySwapMax=33554432" in props, props
    too_small = api.docker("update", "--memory", "1k", "upd", check=False)
    assert too_small.returncode != 0 and "memory" in too_small.stderr.lower()
    cpuset = api.docker("update", "--cpuset-cpus", "0", "upd", check=False)
    assert cpuset.returncode != 0 and "CpusetCpus" in cpuset.stderr
    api.docker("rm", "-f", "upd")
