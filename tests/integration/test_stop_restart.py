"""How containers stop and restart, in the test host as uid 1000: the stop signal goes to the
container alone (its network helper still serves it while it shuts down), everything ends
within the stop timeout, and a crashing container with ``--restart=always`` is restarted
after growing delays (docker's backoff), not ten times a second.
"""

from __future__ import annotations

import http.server
import itertools
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostkit import Rctl, run, wait_for

R = "127.0.0.1:5000/test"
DRIVERS = ["slirp4netns", "pasta"]


@pytest.fixture
def host_server() -> Iterator[tuple[int, list[str]]]:
    """An HTTP server on the host's 127.0.0.1; its port and the paths it was asked for."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok\n")

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], asked
    server.shutdown()


def unit_of(rctl: Rctl, name: str) -> str:
    (info,) = json.loads(rctl("inspect", name).stdout)
    return f"rctl-{info['Id']}.service"


def unit_value(unit: str, prop: str) -> str:
    return run("systemctl", "--user", "show", "-p", prop, "--value", unit).stdout.strip()


def unit_processes(unit: str) -> dict[int, str]:
    """PID -> command name of every process in the unit's cgroup."""
    group = Path("/sys/fs/cgroup") / unit_value(unit, "ControlGroup").lstrip("/")
    found = {}
    for procs in group.rglob("cgroup.procs"):
        for pid in procs.read_text().split():
            try:
                found[int(pid)] = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def stop_while_restarting(rctl: Rctl, name: str) -> None:
    # The stop hook's few milliseconds between two runs are "deactivating", where rctl stop
    # says the container is not running: try again then.
    for _ in range(20):
        done = rctl("stop", name, check=False)
        if done.returncode == 0:
            return
        assert "is not running" in done.stderr, done.stderr
        time.sleep(0.05)
    raise AssertionError(f"rctl stop {name} kept failing: {done.stderr}")


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_stopping_container_still_reaches_the_network(
    rctl: Rctl, host_server: tuple[int, list[str]], driver: str
) -> None:
    port, asked = host_server
    # PID 1 traps TERM and then talks to the host through its network helper: docker
    # signals only the container, so the helper must still be there.
    script = (
        f"trap 'timeout 5 wget -qO- http://host.containers.internal:{port}/stopping && exit 0;"
        " exit 7' TERM; echo up; while :; do sleep 1 & wait $!; done"
    )
    rctl(
        "run", "-d", "--name", "polite", "--network", driver,
        "--add-host", "host.containers.internal:host-gateway",
        f"{R}/busybox", "sh", "-c", script,
    )  # fmt: skip
    wait_for("it to run", lambda: "up" in rctl("logs", "polite").stdout)
    unit = unit_of(rctl, "polite")
    helper = ("passt", "pasta") if driver == "pasta" else ("slirp4netns",)  # passt.avx2...
    helpers = {pid: comm for pid, comm in unit_processes(unit).items() if comm.startswith(helper)}
    assert helpers, unit_processes(unit)
    rctl("stop", "polite")
    assert asked == ["/stopping"]
    row = json.loads(rctl("ps", "-a", "--format", "json").stdout)[0]
    assert row["exit_code"] == 0
    assert not [pid for pid in helpers if alive(pid)]  # the helper ended with the unit


def test_stop_ends_every_process_within_the_stop_timeout(rctl: Rctl) -> None:
    # PID 1 of a PID namespace ignores a signal it has no handler for: TERM does nothing,
    # and systemd's SIGKILL after TimeoutStopSec= must reach the helper and the relay too.
    rctl(
        "run", "-d", "--name", "deaf", "--stop-timeout", "2", "-p", "127.0.0.1::80",
        f"{R}/busybox", "sh", "-c", "while :; do sleep 1; done",
    )  # fmt: skip
    unit = unit_of(rctl, "deaf")
    wait_for("it to run", lambda: unit_value(unit, "ActiveState") == "active")
    before = unit_processes(unit)
    assert "slirp4netns" in before.values(), before
    start = time.monotonic()
    rctl("stop", "deaf")
    elapsed = time.monotonic() - start
    assert 1.9 < elapsed < 6, elapsed
    assert not [f"{pid} {comm}" for pid, comm in before.items() if alive(pid)]
    row = json.loads(rctl("ps", "-a", "--format", "json").stdout)[0]
    assert row["exit_code"] == 137


def test_a_crashing_container_is_restarted_after_growing_delays(rctl: Rctl) -> None:
    rctl("run", "-d", "--name", "crash", "--restart=always", f"{R}/busybox", "sh", "-c", "exit 3")
    unit = unit_of(rctl, "crash")
    seen: list[tuple[float, int]] = []  # (when, NRestarts) at each change
    start = time.monotonic()
    while time.monotonic() - start < 6:
        count = int(unit_value(unit, "NRestarts") or 0)
        if not seen or count != seen[-1][1]:
            seen.append((time.monotonic() - start, count))
        time.sleep(0.02)
    restarts = seen[-1][1]
    print(f"restarts in 6 s (when, NRestarts): {seen}")
    # 100 ms, 200, 400, 800, 1.6 s, 3.2 s... plus each start's own time: a handful, where a
    # fixed RestartSec=100ms gave one every few hundred milliseconds.
    assert 3 <= restarts <= 7, seen
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(seen[1:])]
    assert gaps[-1] > gaps[0] + 0.5, seen
    delay = json.loads((rctl.data / "containers" / unit[5:-8] / "restart.json").read_text())
    assert delay["delay"] >= 0.8, delay
    # rctl stop ends it, waiting or running, and nothing restarts it.
    stop_while_restarting(rctl, "crash")
    assert unit_value(unit, "ActiveState") in ("inactive", "failed", "")
    time.sleep(1.5)
    assert unit_value(unit, "ActiveState") in ("inactive", "failed", "")
    assert rctl("ps", "-q").stdout == ""


def test_a_start_by_the_user_is_not_delayed(rctl: Rctl) -> None:
    rctl("run", "-d", "--name", "again", "--restart=always", f"{R}/busybox", "sh", "-c", "exit 3")
    unit = unit_of(rctl, "again")
    wait_for("a few restarts", lambda: int(unit_value(unit, "NRestarts") or 0) >= 4, timeout=30)
    stop_while_restarting(rctl, "again")
    start = time.monotonic()
    rctl("start", "again")
    assert time.monotonic() - start < 3
    rctl("stop", "again")
