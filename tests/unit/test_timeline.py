"""rctlbase.timeline: the lines each process appends when RCTL_TIMELINE is set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rctlbase import timeline


def read(path: Path) -> list[tuple[float, int, str]]:
    rows = []
    for line in path.read_text().splitlines():
        seconds, pid, step = line.split(" ", 2)
        rows.append((float(seconds), int(pid), step))
    return rows


def test_nothing_is_written_without_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(timeline.VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    timeline.mark("cli: done")
    assert list(tmp_path.iterdir()) == []
    assert timeline.environment() == {}


def test_each_process_starts_with_its_estimated_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "timeline"
    monkeypatch.setenv(timeline.VARIABLE, str(path))
    monkeypatch.setattr(timeline, "_marked_pids", set())
    timeline.mark("one")
    timeline.mark("two")
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        timeline.mark("child")
        os._exit(0)
    os.waitpid(child, 0)
    rows = read(path)
    assert [(pid, step) for _, pid, step in rows] == [
        (os.getpid(), timeline.STARTED),
        (os.getpid(), "one"),
        (os.getpid(), "two"),
        (child, timeline.STARTED),
        (child, "child"),
    ]
    times = [seconds for seconds, _, _ in rows]
    assert times[0] <= times[1] <= times[2] <= times[4]
    assert times[3] <= times[4]
    assert path.stat().st_mode & 0o777 == 0o600
    assert timeline.environment() == {timeline.VARIABLE: str(path)}
