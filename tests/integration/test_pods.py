"""Pods in the test host, as uid 1000: a web server and a sidecar sharing the pod's network
(localhost between them, the pod's published port served from the host), ``pod stop``,
``start``, ``rm -f`` leaving no unit, helper or holder behind, the holder's ``kill -9``
stopping the members (``BindsTo=``), and the refusals of a member's own network flags.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostkit import Rctl, fetch, free_port, run, wait_for

R = "127.0.0.1:5000/test"
PAGE = "<h1>rctl test httpd</h1>\n"
HOLDERS = ("sleep", "slirp4netns", "pasta", "pasta.avx2", "passt", "passt.avx2")


def units() -> set[str]:
    out = run(
        "systemctl", "--user", "list-units", "rctl-*", "--all", "--no-legend", "--plain"
    ).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def sleepers() -> set[int]:
    """Our user's ``sleep`` processes (a pod's holder is one)."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            mine = entry.name.isdigit() and entry.stat().st_uid == os.getuid()
            if mine and (entry / "comm").read_text().strip() in HOLDERS:
                found.add(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture(autouse=True)
def nothing_left(rctl: Rctl) -> Iterator[None]:
    yield
    for pod in json.loads(rctl("pod", "ps", "--format", "json", check=False).stdout or "[]"):
        rctl("pod", "rm", "-f", pod["Id"], check=False)


def state(rctl: Rctl, name: str) -> str:
    (info,) = json.loads(rctl("inspect", name).stdout)
    return str(info["State"]["Status"])


@pytest.mark.parametrize("network", ["slirp4netns", "pasta"])
def test_pod_of_a_web_server_and_a_sidecar(rctl: Rctl, network: str) -> None:
    before_units, before_procs = units(), sleepers()
    port = free_port()
    pod_id = rctl(
        "pod", "create", "--name", "app", "-p", f"{port}:80", "--network", network,
        "--label", "tier=web",
    ).stdout.strip()  # fmt: skip
    assert len(pod_id) == 64
    rctl("run", "-d", "--pod", "app", "--name", "web", f"{R}/httpd")
    rctl("run", "-d", "--pod", "app", "--name", "side", f"{R}/busybox", "sleep", "600")
    # The sidecar reaches the server on localhost: one network namespace.
    got = rctl("exec", "side", "wget", "-qO-", "http://127.0.0.1:80/").stdout
    assert got == PAGE
    # ... and shares its UTS namespace: the pod's host name.
    assert rctl("exec", "side", "hostname").stdout.strip() == "app"
    # The pod's published port serves from the host.
    assert wait_for("the page", lambda: fetch(f"http://127.0.0.1:{port}/")) == PAGE
    (pod,) = json.loads(rctl("pod", "inspect", "app").stdout)
    assert pod["State"] == "Running"
    assert pod["NumContainers"] == 2
    assert pod["InfraConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": str(port)}]}
    assert rctl("pod", "ps", "--format", "{{.Name}} {{.Status}}").stdout == "app Running\n"
    assert rctl("pod", "ps", "-q", "--filter", "label=tier=web").stdout.strip() == pod_id[:12]
    assert rctl("pod", "ps", "-q", "--filter", "name=nothing").stdout == ""
    # ps --pod names the pod; ps --filter pod= selects its members.
    rows = rctl("ps", "--pod", "--format", "{{.Names}} {{.PodName}}").stdout.split("\n")
    assert sorted(r for r in rows if r) == ["side app", "web app"]
    assert rctl("ps", "-q", "--filter", "pod=app").stdout.count("\n") == 2
    assert rctl("pod", "exists", "app").returncode == 0
    assert rctl("pod", "exists", "nope", check=False).returncode == 1

    rctl("pod", "stop", "app")
    assert state(rctl, "web") == state(rctl, "side") == "exited"
    assert fetch(f"http://127.0.0.1:{port}/", timeout=0.5) is None
    (pod,) = json.loads(rctl("pod", "inspect", "app").stdout)
    assert pod["State"] == "Exited"

    rctl("pod", "start", "app")
    assert state(rctl, "web") == state(rctl, "side") == "running"
    assert wait_for("the page again", lambda: fetch(f"http://127.0.0.1:{port}/")) == PAGE
    assert rctl("exec", "side", "wget", "-qO-", "http://127.0.0.1:80/").stdout == PAGE

    rctl("pod", "rm", "-f", "app")
    assert rctl("pod", "ps", "-q").stdout == ""
    assert rctl("ps", "-aq").stdout == ""
    assert units() <= before_units
    assert wait_for("no holder or helper", lambda: sleepers() <= before_procs)
    assert not any((rctl.data / "pods").glob("*/pod.json"))


def test_holder_killed_stops_the_members(rctl: Rctl) -> None:
    rctl("pod", "create", "--name", "p1")
    rctl("run", "-d", "--pod", "p1", "--name", "m1", f"{R}/busybox", "sleep", "600")
    (pod,) = json.loads(rctl("pod", "inspect", "p1").stdout)
    unit = pod["Rctl"]["Unit"]
    pid = int(run("systemctl", "--user", "show", "-P", "MainPID", unit).stdout)
    assert pid > 0
    os.kill(pid, signal.SIGKILL)
    wait_for("the member stopped", lambda: state(rctl, "m1") == "exited")
    (pod,) = json.loads(rctl("pod", "inspect", "p1").stdout)
    assert pod["State"] == "Exited"
    # The store is consistent: the pod starts again with its member.
    rctl("pod", "start", "p1")
    assert state(rctl, "m1") == "running"
    # systemd's own stop of the pod's unit stops the member too.
    run("systemctl", "--user", "stop", unit)
    wait_for("the member stopped by systemd", lambda: state(rctl, "m1") == "exited")


def test_member_network_flags_are_refused(rctl: Rctl) -> None:
    rctl("pod", "create", "--name", "p2")
    for flags in (["-p", "8080:80"], ["--network", "pasta"], ["-P"]):
        proc = rctl("create", "--pod", "p2", *flags, f"{R}/busybox", "true", check=False)
        assert proc.returncode == 125
        assert "member of pod p2" in proc.stderr
        assert "Hint:" in proc.stderr
    bad = rctl("pod", "create", "--name", "../x", check=False)
    assert bad.returncode == 125
    assert "invalid pod name" in bad.stderr
    missing = rctl("run", "--pod", "nope", f"{R}/busybox", "true", check=False)
    assert missing.returncode == 125
    assert "no such pod" in missing.stderr


def test_pod_top_logs_pause_kill(rctl: Rctl) -> None:
    rctl("pod", "create", "--name", "p3")
    rctl("run", "-d", "--pod", "p3", "--name", "a", f"{R}/busybox",
         "sh", "-c", "echo hello-from-a; exec sleep 600")  # fmt: skip
    rctl("run", "-d", "--pod", "p3", "--name", "b", f"{R}/busybox",
         "sh", "-c", "echo hello-from-b; exec sleep 601")  # fmt: skip
    top = rctl("pod", "top", "p3").stdout
    assert "==> a <==" in top
    assert "==> b <==" in top
    assert "sleep 600" in top
    assert "sleep 601" in top
    logs = wait_for(
        "both lines", lambda: (out := rctl("pod", "logs", "p3").stdout).count("hello") == 2 and out
    )
    assert "a hello-from-a" in str(logs)
    assert "b hello-from-b" in str(logs)
    rctl("pod", "pause", "p3")
    (pod,) = json.loads(rctl("pod", "inspect", "p3").stdout)
    assert pod["State"] == "Paused"
    rctl("pod", "unpause", "p3")
    (pod,) = json.loads(rctl("pod", "inspect", "p3").stdout)
    assert pod["State"] == "Running"
    rctl("pod", "kill", "p3")
    wait_for("the members killed", lambda: state(rctl, "a") == state(rctl, "b") == "exited")
    killed = rctl("pod", "kill", "p3", check=False)
    assert killed.returncode == 125
    assert "no running container" in killed.stderr
    # The pod unit runs on without members; pod rm refuses a running pod without -f.
    busy = rctl("pod", "rm", "p3", check=False)
    assert busy.returncode == 125
    assert "is running" in busy.stderr
    rctl("pod", "stop", "p3")
    rctl("pod", "rm", "p3")
    assert rctl("ps", "-aq").stdout == ""


def test_pod_without_infra_groups_units(rctl: Rctl) -> None:
    rctl("pod", "create", "--name", "p4", "--no-infra")
    port = free_port()
    rctl("run", "-d", "--pod", "p4", "-p", f"{port}:80", "--name", "w", f"{R}/httpd")
    assert wait_for("the page", lambda: fetch(f"http://127.0.0.1:{port}/")) == PAGE
    rctl("pod", "stop", "p4")
    assert state(rctl, "w") == "exited"
    assert rctl("pod", "prune", "-f").stdout.strip() != ""
    assert rctl("pod", "ps", "-q").stdout == ""
    assert rctl("ps", "-aq").stdout == ""


def pod_file(path: Path, pod: str, port: int) -> Path:
    path.write_text(f"""\
[pod.{pod}]
ports = ["127.0.0.1:{port}:80"]
labels = {{ app = "{pod}" }}

[container.{pod}-web]
image = "{R}/httpd"
pod = "{pod}"

[container.{pod}-side]
image = "{R}/busybox"
command = ["sh", "-c", "wget -qO /tmp/got http://127.0.0.1:80/ ; exec sleep 600"]
pod = "{pod}"
depends_on = ["{pod}-web"]
""")
    return path


def test_a_definition_with_a_pod_through_apply_and_down(rctl: Rctl, tmp_path: Path) -> None:
    port = free_port()
    app = pod_file(tmp_path / "app.toml", "dpod", port)
    out = rctl("apply", "-f", str(app)).stdout.splitlines()
    assert out[0] == "create pod dpod"
    assert wait_for("the page", lambda: fetch(f"http://127.0.0.1:{port}/")) == PAGE
    (pod,) = json.loads(rctl("pod", "inspect", "dpod").stdout)
    assert pod["NumContainers"] == 2
    assert pod["Labels"]["app"] == "dpod"
    assert rctl("exec", "dpod-side", "wget", "-qO-", "http://127.0.0.1:80/").stdout == PAGE
    # Applied again: nothing changes (the pod is kept).
    again = rctl("apply", "-f", str(app)).stdout.splitlines()
    assert again == ["keep container dpod-web", "keep container dpod-side"]
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[container.x]\nimage = "{R}/busybox"\npod = "dpod"\nports = ["80"]\n')
    refused = rctl("apply", "-f", str(bad), check=False)
    assert refused.returncode == 125
    assert "ports: a member of pod 'dpod' can't set ports" in refused.stderr
    down = rctl("down", "-f", str(app)).stdout.splitlines()
    assert down[-1] == "remove pod dpod"
    assert rctl("pod", "ps", "-q").stdout == ""
    assert rctl("ps", "-aq").stdout == ""


USER_UNITS = Path.home() / ".config" / "systemd" / "user"


def test_a_definition_with_a_pod_through_the_generator(rctl: Rctl) -> None:
    n = os.getpid()
    pod, port = f"gpod{n}", free_port()
    defs = rctl.root / "config" / "rctl" / "definitions"
    defs.mkdir(parents=True)
    pod_file(defs / "app.toml", pod, port)
    units = [f"rctl-pod-{pod}.service", f"rctl-{pod}-web.service", f"rctl-{pod}-side.service"]
    env = [f"XDG_DATA_HOME={rctl.root / 'data'}", f"XDG_CONFIG_HOME={rctl.root / 'config'}"]
    USER_UNITS.mkdir(parents=True, exist_ok=True)
    run("systemctl", "--user", "set-environment", *env)
    written = [*units, f"rctl-image-{pod}-web.service", f"rctl-image-{pod}-side.service"]
    try:
        run(
            "env", f"XDG_CONFIG_HOME={rctl.root / 'config'}", sys.executable, "-I", "-m",
            "rootless.definitions.generator", str(USER_UNITS),
        )  # fmt: skip
        assert sorted(p.name for p in USER_UNITS.glob(f"rctl-*{pod}*.service")) == sorted(written)
        side = (USER_UNITS / units[2]).read_text()
        assert f"BindsTo={units[0]}" in side
        run("systemctl", "--user", "daemon-reload")
        run("systemctl", "--user", "start", units[2], timeout=300)
        for unit in units:
            assert unit_value(unit, "ActiveState") == "active", unit
        assert wait_for("the page", lambda: fetch(f"http://127.0.0.1:{port}/"), 90) == PAGE
        got = rctl("exec", f"{pod}-side", "wget", "-qO-", "http://127.0.0.1:80/").stdout
        assert got == PAGE
        (info,) = json.loads(rctl("pod", "inspect", pod).stdout)
        assert info["Rctl"]["Unit"] == units[0]
        assert info["State"] == "Running"
        # Stopping the pod's unit stops its members (BindsTo=).
        run("systemctl", "--user", "stop", units[0])
        for unit in units[1:]:
            wait_for(f"{unit} stopped", functools.partial(stopped, unit))
        run("systemctl", "--user", "start", units[2], timeout=300)
        assert unit_value(units[0], "ActiveState") == "active"
        assert wait_for("the page again", lambda: fetch(f"http://127.0.0.1:{port}/"), 90) == PAGE
    finally:
        for name in reversed(written):
            run("systemctl", "--user", "stop", name, check=False)
            run("systemctl", "--user", "reset-failed", name, check=False)
            for path in (USER_UNITS / name, *USER_UNITS.glob(f"*.wants/{name}")):
                path.unlink(missing_ok=True)
        run("systemctl", "--user", "unset-environment", "XDG_DATA_HOME", "XDG_CONFIG_HOME")
        run("systemctl", "--user", "daemon-reload")


def stopped(unit: str) -> bool:
    return unit_value(unit, "ActiveState") != "active"


def unit_value(unit: str, prop: str) -> str:
    return run("systemctl", "--user", "show", "-p", prop, "--value", unit).stdout.strip()


def test_kube_play_of_a_pod_makes_an_rctl_pod_and_generate_gives_it_back(
    rctl: Rctl, tmp_path: Path
) -> None:
    import yaml  # noqa: PLC0415 - this test only

    port = free_port()
    play = tmp_path / "pod.yaml"
    play.write_text(f"""\
apiVersion: v1
kind: Pod
metadata:
  name: kpod
spec:
  containers:
  - name: web
    image: {R}/httpd
    ports:
    - containerPort: 80
      hostPort: {port}
  - name: side
    image: {R}/busybox
    command: ["sleep", "600"]
""")
    rctl("kube", "play", str(play))
    (pod,) = json.loads(rctl("pod", "inspect", "kpod").stdout)
    assert sorted(c["Name"] for c in pod["Containers"]) == ["kpod-side", "kpod-web"]
    assert pod["InfraConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": str(port)}]}
    assert wait_for("the page", lambda: fetch(f"http://127.0.0.1:{port}/")) == PAGE
    got = rctl("exec", "kpod-side", "wget", "-qO-", "http://127.0.0.1:80/").stdout
    assert got == PAGE
    (doc,) = list(yaml.safe_load_all(rctl("kube", "generate", "kpod").stdout))
    assert (doc["kind"], doc["metadata"]["name"]) == ("Pod", "kpod")
    containers = {c["name"]: c for c in doc["spec"]["containers"]}
    assert sorted(containers) == ["side", "web"]
    assert {"containerPort": 80, "hostPort": port, "protocol": "TCP"} in containers["web"]["ports"]
    rctl("kube", "play", "--down", str(play))
    assert rctl("pod", "ps", "-q").stdout == ""
    assert rctl("ps", "-aq").stdout == ""
    # Played back from what generate gave, the pod serves again.
    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump(doc))
    rctl("kube", "play", str(again))
    assert wait_for("the page again", lambda: fetch(f"http://127.0.0.1:{port}/")) == PAGE
    rctl("kube", "play", "--down", str(again))
    assert rctl("pod", "ps", "-q").stdout == ""
