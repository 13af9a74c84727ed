"""``--format`` with Go templates against real containers, read as a script would."""

from __future__ import annotations

import json

from hostkit import Rctl, free_port

R = "127.0.0.1:5000/test"


def test_ps_and_inspect_formats_as_scripts_use_them(rctl: Rctl) -> None:
    cid = rctl(
        "run", "-d", "--name", "fmt-web", "-e", "GREETING=hello world", "-l", "tier=front",
        f"{R}/busybox", "sleep", "120",
    ).stdout.strip()  # fmt: skip
    try:
        name, status = (
            rctl("ps", "--format", "{{.Names}} {{.Status}}").stdout.rstrip("\n").split(" ", 1)
        )
        assert (name, status.split()[0]) == ("fmt-web", "Up")

        table = rctl("ps", "--format", r"table {{.ID}}\t{{.Names}}").stdout.splitlines()
        assert table == ["CONTAINER ID   NAMES", f"{cid[:12]}   fmt-web"]

        assert rctl("ps", "--format", '{{.Label "tier"}}|{{.Label "none"}}').stdout == "front|\n"
        row = json.loads(rctl("ps", "--format", "{{json .}}").stdout)
        assert (row["ID"], row["Names"], row["Labels"]) == (cid[:12], "fmt-web", "tier=front")
        assert rctl("inspect", "-f", "{{.State.Status}}", "fmt-web").stdout == "running\n"
        env = json.loads(rctl("inspect", "--format", "{{json .Config.Env}}", "fmt-web").stdout)
        assert "GREETING=hello world" in env

        bad = rctl("inspect", "-f", "{{.State.Nope}}", "fmt-web", check=False)
        assert (bad.returncode, bad.stdout) == (125, "")
        assert bad.stderr.splitlines()[0].startswith("Error: template: :1:")
        assert "can't evaluate field Nope" in bad.stderr
        unclosed = rctl("ps", "--format", "{{.Names", check=False)
        assert unclosed.returncode == 125
        assert unclosed.stderr.splitlines()[0] == "Error: template: :1: unclosed action"
    finally:
        rctl("rm", "-f", cid, check=False)


def test_inspect_fields_show_the_flags_a_container_was_made_with(rctl: Rctl) -> None:
    port = free_port()
    rctl("volume", "create", "fmt-vol")
    cid = rctl(
        "create", "--name", "fmt-made", "--memory", "64m", "--memory-swap", "128m",
        "--cpus", "1.5", "--cpu-shares", "512", "--pids-limit", "50", "--cap-add", "NET_ADMIN",
        "--cap-drop", "MKNOD", "--read-only", "--restart", "on-failure:2", "--stop-signal",
        "SIGINT", "--stop-timeout", "7", "--entrypoint", "/bin/sleep", "-w", "/tmp",
        "-u", "1000:1000", "-h", "box", "-e", "A=b", "-l", "k=v", "-p", f"127.0.0.1:{port}:80",
        "-v", "fmt-vol:/data:ro", "--health-cmd", "true", "--dns", "9.9.9.9",
        "--add-host", "db:10.0.0.5", f"{R}/busybox", "60",
    ).stdout.strip()  # fmt: skip

    def field(template: str, name: str = "fmt-made") -> str:
        return rctl("inspect", "-f", template, name).stdout.rstrip("\n")

    host = "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} "
    host += "{{.HostConfig.CpuShares}} {{.HostConfig.PidsLimit}}"
    assert field(host) == "67108864 134217728 1500000000 512 50"
    assert field("{{json .HostConfig.CapAdd}} {{json .HostConfig.CapDrop}}") == (
        '["NET_ADMIN"] ["MKNOD"]'
    )
    assert field("{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Runtime}}") == "true crun"
    policy = "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
    assert field(policy) == "on-failure:2"
    assert field('{{(index (index .HostConfig.PortBindings "80/tcp") 0).HostPort}}') == str(port)
    assert field('{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostIp}}') == "127.0.0.1"
    assert field("{{json .HostConfig.Dns}} {{json .HostConfig.ExtraHosts}}") == (
        '["9.9.9.9"] ["db:10.0.0.5"]'
    )
    assert field("{{.Config.StopSignal}} {{.Config.StopTimeout}}") == "SIGINT 7"
    assert field("{{json .Config.Entrypoint}} {{json .Config.Cmd}}") == '["/bin/sleep"] ["60"]'
    assert field("{{.Config.WorkingDir}} {{.Config.User}} {{.Config.Hostname}}") == (
        "/tmp 1000:1000 box"
    )
    assert field('{{index .Config.Labels "k"}} {{json .Config.Healthcheck.Test}}') == (
        'v ["CMD-SHELL","true"]'
    )
    assert "A=b" in json.loads(field("{{json .Config.Env}}"))
    mounts = "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}"
    assert field(mounts) == "volume fmt-vol /data false"
    assert field("{{.State.Status}} {{.State.Running}} {{.State.Pid}} {{.State.StartedAt}}") == (
        "created false 0 0001-01-01T00:00:00Z"
    )
    assert field("{{.Name}} {{.Rctl.Unit}} {{.Path}}") == (
        f"/fmt-made rctl-{cid}.service /bin/sleep"
    )
    assert field("{{.Id}}") == cid and field("{{.Image}}").startswith("sha256:")

    # a running container: its state, and ps's fields from the same row
    rctl("run", "-d", "--name", "fmt-run", "-v", "fmt-vol:/data", f"{R}/busybox", "sleep", "60")
    state = field("{{.State.Status}} {{.State.Running}} {{.State.Paused}} {{.State.OOMKilled}}",
                  "fmt-run")  # fmt: skip
    assert state == "running true false false"
    assert int(field("{{.State.Pid}}", "fmt-run")) > 0
    row = rctl("ps", "-f", "name=fmt-run", "--format", "{{.Mounts}}|{{.Networks}}|{{.State}}")
    assert row.stdout == "fmt-vol|slirp4netns|running\n"
    rctl("stop", "-t", "1", "fmt-run")
    ended = field("{{.State.Status}} {{.State.Running}} {{.State.ExitCode}}", "fmt-run")
    assert ended == "exited false 137" or ended == "exited false 143", ended
