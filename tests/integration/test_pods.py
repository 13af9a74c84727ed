"""Pods in the test host, as uid 1000: a web server and a sidecar sharing the pod's network
(localhost between them, the pod's published port served from the host), ``pod stop``,
``start``, ``rm -f`` leaving no unit, helper or holder behind, the holder's ``kill -9``
stopping the members (``BindsTo=``), and the refusals of a member's own network flags.
"""

from __future__ import annotations

import json
import os
import signal
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
