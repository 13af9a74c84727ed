"""Races of a container's life in the test host, as uid 1000: removals and stops that meet
the unit's own end (collected units, the ``--rm`` stop hook, each other), and a launcher
that dies between handing the unit over to the container and starting it.

Each test has a store of its own (the ``rctl`` fixture); containers are removed with it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostkit import Rctl, run, wait_for

R = "127.0.0.1:5000/test"


def units() -> set[str]:
    out = run(
        "systemctl", "--user", "list-units", "rctl-*", "--all", "--no-legend", "--plain"
    ).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def mounts_under(path: Path) -> list[str]:
    return [
        line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(path) in line
    ]


def unit_state(unit: str) -> str:
    return run("systemctl", "--user", "is-active", unit, check=False).stdout.strip()


@pytest.fixture(autouse=True)
def no_leftover_units(rctl: Rctl) -> Iterator[None]:
    before = units()
    yield
    for record in json.loads(rctl("ps", "-a", "--format", "json", check=False).stdout or "[]"):
        rctl("rm", "-f", record["id"], check=False)
    assert units() <= before, "a container unit outlived its test"


def assert_nothing_left(rctl: Rctl, ids: list[str]) -> None:
    assert rctl("ps", "-aq").stdout == ""
    assert not {f"rctl-{cid}.service" for cid in ids} & units()
    assert mounts_under(rctl.data) == []
    assert sorted(p.name for p in (rctl.data / "containers").iterdir()) == []


def test_parallel_rm_f_of_running_containers_removes_them_all(rctl: Rctl) -> None:
    """Each unit ends and is collected while its ``rm -f`` is still at work: a unit that
    vanished is a stopped container, never an error. Two rounds of twenty, so that the
    collection overtakes some ``rm`` (it did for 5 of 20 before)."""
    for _ in range(2):
        ids = [rctl("run", "-d", f"{R}/busybox", "sleep", "300").stdout.strip() for _ in range(20)]
        wait_for("all twenty to run", lambda: len(rctl("ps", "-q").stdout.split()) == 20)
        removers = [rctl.popen("rm", "-f", cid) for cid in ids]
        outcomes = [(p.wait(timeout=180), *p.communicate()) for p in removers]
        failed = [o for o in outcomes if o[0] != 0]
        assert failed == [], f"{len(failed)} of 20 rm -f failed: {failed[:3]}"
        assert sorted(o[1].strip() for o in outcomes) == sorted(ids)
        assert_nothing_left(rctl, ids)


def test_rm_f_twice_at_once_and_against_the_rm_stop_hook(rctl: Rctl) -> None:
    """Two ``rm -f`` of one container: one removes it, the other removes it too or says
    there is no such container; with ``--rm``, the stop hook removing it as well."""
    for flags in ((), ("--rm",)):
        ids = [
            rctl("run", "-d", *flags, f"{R}/busybox", "sleep", "300").stdout.strip()
            for _ in range(5)
        ]
        removers = [rctl.popen("rm", "-f", cid) for cid in ids for _ in range(2)]
        for proc in removers:
            code = proc.wait(timeout=120)
            _, err = proc.communicate()
            assert code == 0 or "no such container" in err, (code, err)
        assert_nothing_left(rctl, ids)


def test_rm_f_of_an_always_restarting_container(rctl: Rctl) -> None:
    """``--restart always``: a kill alone would have systemd start it again."""
    cid = rctl("run", "-d", "--restart", "always", f"{R}/busybox", "sleep", "300").stdout.strip()
    start = time.monotonic()
    rctl("rm", "-f", cid)
    assert time.monotonic() - start < 10
    assert_nothing_left(rctl, [cid])


def test_stop_kill_and_restart_of_a_container_that_already_ended(rctl: Rctl) -> None:
    """docker: stopping a stopped container is fine; killing one is a conflict."""
    cid = rctl("run", "-d", f"{R}/busybox", "true").stdout.strip()
    wait_for("its unit to go", lambda: f"rctl-{cid}.service" not in units())
    assert rctl("stop", cid).stdout.strip() == cid
    assert rctl("stop", "-t", "0", cid).stdout.strip() == cid
    killed = rctl("kill", cid, check=False)
    assert killed.returncode == 125 and "is not running" in killed.stderr
    rctl("restart", cid)
    assert rctl("wait", cid).stdout.strip() == "0"
    rctl("rm", cid)
    assert_nothing_left(rctl, [cid])


def test_a_launcher_killed_before_crun_start_ends_the_unit(rctl: Rctl) -> None:
    """The launcher hands the unit over to the created container (MAINPID), then dies
    before ``crun start``: the unit must not stay active around a container that never
    runs. The fault point is the launcher's test hook, set in the user manager's
    environment (which the unit inherits) for this one start."""
    run("systemctl", "--user", "set-environment", "RCTL_TEST_KILL_AT=before-start")
    try:
        cid = rctl("run", "-d", f"{R}/busybox", "sleep", "300").stdout.strip()
    finally:
        run("systemctl", "--user", "unset-environment", "RCTL_TEST_KILL_AT")
    unit = f"rctl-{cid}.service"
    start = time.monotonic()
    wait_for("the unit to end", lambda: unit_state(unit) in ("inactive", "failed"), timeout=10)
    assert time.monotonic() - start < 5
    (row,) = json.loads(rctl("ps", "-a", "--format", "json").stdout)
    assert row["state"] == "exited", row
    rctl("rm", cid)
    assert_nothing_left(rctl, [cid])
