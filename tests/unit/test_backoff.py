"""The restart delay of a container's policy (rootless.containers.backoff): docker's
doubling from 100 ms, capped at a minute, reset by a run of 10 s or by a start by a user."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rootless.containers.backoff import (
    FIRST_DELAY,
    MAX_DELAY,
    next_delay,
    record_stop,
    wait_before_start,
)


def test_the_delay_doubles_while_runs_are_short_and_is_capped() -> None:
    delays, now, previous = [], 1000.0, None
    for _ in range(12):
        delay = next_delay(previous, now)
        delays.append(delay)
        previous = {"delay": delay, "ended": now}
        now += delay + 0.5  # the restart waits the delay, then the container crashes
    assert delays[:5] == [0.1, 0.2, 0.4, 0.8, 1.6]
    assert delays[-1] == MAX_DELAY


def test_a_run_of_ten_seconds_starts_the_delays_over() -> None:
    previous = {"delay": 6.4, "ended": 1000.0}
    assert next_delay(previous, 1000.0 + 6.4 + 9.9) == 12.8
    assert next_delay(previous, 1000.0 + 6.4 + 10.01) == FIRST_DELAY


def crash(directory: Path, now: float) -> None:
    (directory / "exit.json").write_text("{}")  # the stop hook's record of the run
    record_stop(str(directory), now)


def test_an_automatic_restart_waits_what_the_stop_hook_said(tmp_path: Path) -> None:
    waited: list[float] = []
    crash(tmp_path, 100.0)
    assert wait_before_start(str(tmp_path), waited.append) == 0.0  # RestartSec= covers 100 ms
    crash(tmp_path, 100.6)
    crash(tmp_path, 101.2)
    assert json.loads((tmp_path / "restart.json").read_text()) == {"delay": 0.4, "ended": 101.2}
    assert wait_before_start(str(tmp_path), waited.append) == pytest.approx(0.3)
    assert waited == [pytest.approx(0.3)]


def test_a_start_by_a_user_forgets_the_delays(tmp_path: Path) -> None:
    for now in (100.0, 100.5, 101.0, 101.5):
        crash(tmp_path, now)
    (tmp_path / "exit.json").unlink()  # rctl start / restart, run-unit started by a user
    assert wait_before_start(str(tmp_path), lambda s: pytest.fail("waited")) == 0.0
    assert not (tmp_path / "restart.json").exists()
    crash(tmp_path, 102.0)
    assert json.loads((tmp_path / "restart.json").read_text())["delay"] == FIRST_DELAY


def test_a_damaged_record_means_the_first_delay(tmp_path: Path) -> None:
    (tmp_path / "restart.json").write_text('{"delay": "x"}')
    assert record_stop(str(tmp_path), 5.0) == FIRST_DELAY
