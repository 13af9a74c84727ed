"""Commands typed from docker habit, and read the way scripts read them: ``stats``,
``events``, ``wait --condition``, ``export``, ``system prune``, ``version``, ``info``.

The nspawn tier delegates no memory controller to the user: ``stats`` reads memory from
the processes there (a nonzero figure); the limit of ``--memory`` is checked in the vm
tier (test_docker_habits_vm.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import time
from io import BytesIO

from hostkit import Rctl, wait_for

R = "127.0.0.1:5000/test"
UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}

SCRIPT = r"""
set -eu
cid=$(rctl run -d --name habit "$R/busybox" sleep 300)
echo "cid=$cid"
echo "version=$(rctl version --format '{{.Server.Version}}')"
echo "driver=$(rctl info --format '{{.Driver}}')"
rctl stats --no-stream --format '{{.Name}}\t{{.MemUsage}}\t{{.PIDs}}' habit | while IFS="$(printf '\t')" read -r name mem pids; do
    echo "stats=$name|$mem|$pids"
done
for c in $(rctl ps -q); do echo "running=$c"; done
code=$(rctl run --name quitter "$R/busybox" sh -c 'exit 3' || echo "$?")
echo "run=$code"
echo "wait=$(rctl wait quitter)"
rctl rm -f habit >/dev/null
"""


def parse_size(text: str) -> int:
    match = re.fullmatch(r"([\d.]+)([KMGT]i)?B", text.strip())
    assert match, text
    return int(float(match.group(1)) * UNITS[(match.group(2) or "") + "B"])


def script_output(rctl: Rctl) -> dict[str, list[str]]:
    proc = subprocess.run(
        ["sh", "-c", SCRIPT], capture_output=True, text=True, timeout=300,
        env={**rctl.env, "R": R}, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    found: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        found.setdefault(key, []).append(value)
    return found


def test_a_script_of_docker_habits(rctl: Rctl) -> None:
    out = script_output(rctl)
    cid = out["cid"][0]
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    assert out["version"][0] and out["driver"][0] in ("overlay", "fuse-overlayfs", "vfs")
    [stats] = out["stats"]
    name, mem, pids = stats.split("|")
    used, limit = mem.split(" / ")
    assert name == "habit"
    assert parse_size(used) > 100_000  # a shell and sleep: some hundreds of kB at least
    assert parse_size(limit) > parse_size(used)
    assert int(pids) >= 1
    assert out["running"] == [cid[:12]]
    assert out["run"] == ["3"] and out["wait"] == ["3"]


def events_of(rctl: Rctl, since: float, *filters: str) -> list[dict[str, object]]:
    args = ["events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}"]
    proc = rctl(*args, *(f"--filter={f}" for f in filters), "--format", "{{json .}}")
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_events_sees_a_container_life_in_order(rctl: Rctl) -> None:
    since = time.time() - 1
    cid = rctl("run", "-d", f"{R}/busybox", "sh", "-c", "exit 5").stdout.strip()
    assert rctl("wait", cid).stdout.strip() == "5"
    rctl("rm", cid)
    events = events_of(rctl, since, "type=container")
    mine = [e for e in events if e["Actor"]["ID"] == cid]  # type: ignore[index]
    assert [e["Action"] for e in mine] == ["create", "start", "die", "destroy"]
    die = mine[2]
    assert die["Actor"]["Attributes"]["exitCode"] == "5"  # type: ignore[index]
    assert all(isinstance(e["timeNano"], int) and e["scope"] == "local" for e in mine)
    only_die = events_of(rctl, since, "event=die", f"container={cid}")
    assert [e["Action"] for e in only_die] == ["die"]


def test_events_follows_until_interrupted(rctl: Rctl) -> None:
    follower = rctl.popen(
        "events", "--filter", "type=container", "--format", "{{.Action}} {{.Actor.Attributes.name}}"
    )
    try:
        time.sleep(1)  # the follower is reading the log's end
        rctl("run", "--rm", "--name", "followed", f"{R}/busybox", "true")
        lines: list[str] = []
        assert follower.stdout is not None
        for line in follower.stdout:
            lines.append(line.strip())
            if line.startswith("destroy"):
                break
        assert lines == ["create followed", "start followed", "die followed", "destroy followed"]
    finally:
        follower.terminate()
        follower.wait(timeout=10)


def test_wait_condition_removed_returns_when_rm_is_done(rctl: Rctl) -> None:
    rctl("run", "-d", "--name", "doomed", f"{R}/busybox", "sh", "-c", "sleep 1; exit 4")
    waiter = rctl.popen("wait", "--condition", "removed", "doomed")
    time.sleep(2)
    assert waiter.poll() is None  # exited, not removed yet
    rctl("rm", "doomed")
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, err
    assert out.strip() == "4"


def test_wait_condition_removed_of_an_rm_container(rctl: Rctl) -> None:
    rctl("run", "-d", "--rm", "--name", "gone", f"{R}/busybox", "sh", "-c", "sleep 5; exit 6")
    assert rctl("wait", "--condition", "removed", "gone").stdout.strip() == "6"
    assert "gone" not in rctl("ps", "-a").stdout


def test_wait_condition_next_exit_waits_for_a_start(rctl: Rctl) -> None:
    rctl("create", "--name", "later", f"{R}/busybox", "sh", "-c", "exit 2")
    waiter = rctl.popen("wait", "--condition", "next-exit", "later")
    time.sleep(1.5)
    assert waiter.poll() is None
    rctl("start", "later")
    out, _ = waiter.communicate(timeout=30)
    assert out.strip() == "2"
    bad = rctl("wait", "--condition", "stopped", "later", check=False)
    assert bad.returncode == 125 and "invalid condition" in bad.stderr


def test_export_is_the_container_filesystem_with_its_owners(rctl: Rctl) -> None:
    script = "mkdir /data && echo hi > /data/f && chown 1234:5678 /data/f && sleep 300"
    rctl("run", "-d", "--name", "exp", "-v", "vol:/vol", f"{R}/busybox", "sh", "-c", script)
    wait_for("the file", lambda: rctl("exec", "exp", "test", "-e", "/data/f", check=False)
             .returncode == 0)  # fmt: skip
    for running in (True, False):
        archive = rctl("export", "exp", input_data=b"").stdout
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            members = {m.name: m for m in tar.getmembers()}
            assert (members["data/f"].uid, members["data/f"].gid) == (1234, 5678)
            assert members["bin/busybox"].uid == 0 and members["bin/busybox"].isfile()
            data = tar.extractfile("data/f")
            assert data is not None and data.read() == b"hi\n"
        assert "proc" in members and not any(n.startswith("proc/") for n in members)
        assert not any(n.startswith("vol/") for n in members)  # volumes are not exported
        if running:
            rctl("stop", "-t", "0", "exp")
    out = rctl.root / "exp.tar"
    rctl("export", "-o", str(out), "exp")
    with tarfile.open(out) as tar:
        assert "data/f" in tar.getnames()
    missing = rctl("export", "nope", check=False, input_data=b"")
    assert missing.returncode == 125


def test_system_prune_removes_what_nothing_uses(rctl: Rctl) -> None:
    running = rctl("run", "-d", f"{R}/busybox", "sleep", "300").stdout.strip()
    stopped = rctl("run", "-d", f"{R}/busybox", "true").stdout.strip()
    rctl("wait", stopped)
    rctl("network", "create", "spare")
    rctl("volume", "create", "loose")
    out = rctl("system", "prune", "-f").stdout
    assert out.startswith("Deleted Containers:\n" + stopped)
    assert "Deleted Networks:\nspare" in out
    assert "loose" in rctl("volume", "ls", "-q").stdout  # volumes only with --volumes
    remaining = rctl("ps", "-aq", "--no-trunc").stdout.split()
    assert remaining == [running]
    out = rctl("system", "prune", "-f", "--volumes").stdout
    assert "Deleted Volumes:\nloose" in out
    refused = rctl("system", "prune", "-f", "--volumes", "--filter", "until=1h", check=False)
    assert refused.returncode == 125 and "until" in refused.stderr
    rctl("rm", "-f", running)
    rctl("system", "prune", "-af")
    assert rctl("images", "-q").stdout.strip() == ""


def test_stats_stream_and_all(rctl: Rctl) -> None:
    rctl("run", "-d", "--name", "up", f"{R}/busybox", "sleep", "300")
    rctl("create", "--name", "idle", f"{R}/busybox", "true")
    rows = rctl("stats", "--no-stream", "-a", "--format", "json").stdout.splitlines()
    by_name = {row["Name"]: row for row in map(json.loads, rows)}
    assert set(by_name) == {"up", "idle"}
    assert by_name["idle"]["MemUsage"] == "0B / 0B"
    assert parse_size(by_name["up"]["MemUsage"].split(" / ")[0]) > 0
    streaming = rctl.popen("stats", "--format", "{{.Name}} {{.PIDs}}", "up")
    try:
        assert streaming.stdout is not None
        first, second = streaming.stdout.readline(), streaming.stdout.readline()
        assert first.split()[0] == second.split()[0] == "up"
    finally:
        streaming.terminate()
        streaming.wait(timeout=10)
    bad = rctl("stats", "--no-stream", "--format", "{{.Nope}}", check=False)
    assert bad.returncode == 125 and bad.stdout == ""


def test_events_of_images_volumes_and_networks(rctl: Rctl) -> None:
    since = time.time() - 1
    rctl("pull", f"{R}/busybox")
    rctl("tag", f"{R}/busybox", "habit:1")
    rctl("rmi", "habit:1")
    rctl("volume", "create", "ev")
    rctl("volume", "rm", "ev")
    rctl("network", "create", "evnet")
    rctl("network", "rm", "evnet")
    events = events_of(rctl, since)
    assert [(e["Type"], e["Action"]) for e in events] == [
        ("image", "pull"), ("image", "tag"), ("image", "untag"), ("volume", "create"),
        ("volume", "destroy"), ("network", "create"), ("network", "destroy"),
    ]  # fmt: skip
    assert events[3]["Actor"] == {"ID": "ev", "Attributes": {"driver": "local"}}
    assert events[5]["Actor"]["Attributes"]["name"] == "evnet"  # type: ignore[index]
    only = events_of(rctl, since, "type=volume")
    assert [e["Action"] for e in only] == ["create", "destroy"]


def test_stats_on_a_terminal_refreshes_in_place(rctl: Rctl) -> None:
    rctl("run", "-d", "--name", "tty", f"{R}/busybox", "sleep", "300")
    proc = subprocess.run(
        ["timeout", "-s", "INT", "12", "script", "-qfc", "rctl stats tty", "/dev/null"],
        capture_output=True, env=rctl.env, timeout=60, check=False,
    )  # fmt: skip
    screen = proc.stdout.decode(errors="replace")
    assert screen.count("CONTAINER ID") >= 2, screen  # several readings...
    assert "\x1b[" in screen  # ...each drawn over the one before
    assert "Traceback" not in screen


def test_events_of_restarts_by_the_policy(rctl: Rctl) -> None:
    """systemd restarts the unit itself: the launcher and the stop hook log each run."""
    since = time.time() - 1
    cid = rctl(
        "run", "-d", "--restart", "on-failure:1", f"{R}/busybox", "sh", "-c", "exit 1"
    ).stdout.strip()

    def actions() -> list[object]:
        return [e["Action"] for e in events_of(rctl, since, f"container={cid}")]

    wait_for("two runs", lambda: actions().count("die") == 2, timeout=60)
    assert actions() == ["create", "start", "die", "start", "die"]
