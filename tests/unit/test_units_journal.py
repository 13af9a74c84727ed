"""units.journal: journalctl command lines, its JSON, and following a stream."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rctlbase.errors import CommandFailed, ExternalError, UsageError
from units import journal
from units.journal import (
    JournalEntry,
    JournalFollower,
    JournalQuery,
    decode_value,
    parse_journal_line,
    plan_journalctl_argv,
    read_journal,
)

BASE = ["journalctl", "--user", "--output=json", "--all", "--no-pager"]


def test_argv_for_a_unit() -> None:
    assert plan_journalctl_argv(JournalQuery(unit="rctl-web.service")) == [
        *BASE,
        "--unit=rctl-web.service",
    ]


def test_argv_for_field_matches_time_window_and_tail() -> None:
    query = JournalQuery(
        matches={"CONTAINER_NAME": "web", "_SYSTEMD_USER_UNIT": "x.service"},
        since=datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        until=datetime(2024, 1, 2, 3, 4, 6, tzinfo=UTC),
        lines=20,
        after_cursor="s=abc;i=1",
    )
    assert plan_journalctl_argv(query) == [
        *BASE,
        "--since=@1704164645.678901",
        "--until=@1704164646.000000",
        "--after-cursor=s=abc;i=1",
        "CONTAINER_NAME=web",
        "_SYSTEMD_USER_UNIT=x.service",
    ]


def test_tail_without_since_is_journalctl_s_and_with_since_is_ours() -> None:
    # journalctl --since S --lines N shows the first N entries after S, not the last N.
    assert "--lines=5" in plan_journalctl_argv(JournalQuery(lines=5))
    since = datetime(2024, 1, 2, tzinfo=UTC)
    assert not any(
        a.startswith("--lines") for a in plan_journalctl_argv(JournalQuery(lines=5, since=since))
    )


def test_follow_shows_everything_unless_tailed() -> None:
    assert plan_journalctl_argv(JournalQuery(unit="u.service"), follow=True)[-2:] == [
        "--lines=all",
        "--follow",
    ]
    assert plan_journalctl_argv(JournalQuery(lines=0), follow=True)[-2:] == [
        "--lines=0",
        "--follow",
    ]


@pytest.mark.parametrize(
    "query",
    [
        {"matches": {"container_name": "web"}},
        {"matches": {"A=B": "c"}},
        {"lines": -1},
        {"unit": "--all"},
        {"unit": ""},
    ],
)
def test_invalid_queries(query: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        JournalQuery(**query)


def line(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def test_parse_a_text_entry() -> None:
    entry = parse_journal_line(
        line(
            __CURSOR="s=1;i=2",
            __REALTIME_TIMESTAMP="1704164645678901",
            MESSAGE="hello",
            PRIORITY="6",
            _PID="42",
            _TRANSPORT="stdout",
            CONTAINER_NAME="web",
            _SYSTEMD_USER_UNIT="rctl-web.service",
        )
    )
    assert entry == JournalEntry(
        timestamp_usec=1704164645678901,
        message="hello",
        priority=6,
        transport="stdout",
        pid=42,
        cursor="s=1;i=2",
        fields={
            "PRIORITY": "6",
            "_PID": "42",
            "_TRANSPORT": "stdout",
            "CONTAINER_NAME": "web",
            "_SYSTEMD_USER_UNIT": "rctl-web.service",
        },
    )
    assert entry.message_bytes == b"hello"


def test_parse_a_binary_message() -> None:
    raw = b"\x1b[31mred\xff\n"
    entry = parse_journal_line(line(__REALTIME_TIMESTAMP="1", MESSAGE=list(raw)))
    assert entry is not None
    assert entry.message == raw
    assert entry.message_bytes == raw
    assert entry.priority is None
    assert entry.pid is None


def test_parse_missing_and_null_values() -> None:
    entry = parse_journal_line(line(MESSAGE=None, BIG=None))
    assert entry is not None
    assert entry.message == ""
    assert entry.timestamp_usec == 0
    assert "BIG" not in entry.fields


def test_repeated_fields_keep_the_last_value() -> None:
    assert decode_value(["a", "b"]) == "b"
    assert decode_value(["a", [104, 105]]) == b"hi"
    assert decode_value([]) == b""
    assert decode_value([1, 2]) == b"\x01\x02"
    with pytest.raises(ExternalError):
        decode_value({"x": 1})


def test_blank_and_malformed_lines() -> None:
    assert parse_journal_line(b"  \n") is None
    with pytest.raises(ExternalError):
        parse_journal_line(b"-- No entries --")
    with pytest.raises(ExternalError):
        parse_journal_line(b"[1, 2]")


def test_read_journal_runs_journalctl_and_parses_its_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[list[str]] = []

    def fake_run(argv: list[str], **_: Any) -> subprocess.CompletedProcess[bytes]:
        seen.append(argv)
        out = line(MESSAGE="one", __REALTIME_TIMESTAMP="1") + b"\n\n"
        out += line(MESSAGE="two", __REALTIME_TIMESTAMP="2") + b"\n"
        return subprocess.CompletedProcess(argv, 0, out, b"")

    monkeypatch.setattr(journal, "run_program", fake_run)
    entries = read_journal(JournalQuery(matches={"CONTAINER_NAME": "web"}, lines=2))
    assert [(e.message, e.timestamp_usec) for e in entries] == [("one", 1), ("two", 2)]
    assert seen == [[*BASE, "--lines=2", "CONTAINER_NAME=web"]]


def fake_journalctl(monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """Make the follower run a Python script instead of journalctl."""
    monkeypatch.setattr(
        journal, "plan_journalctl_argv", lambda query, follow: [sys.executable, "-c", script]
    )


PRINT_THEN_HANG = """
import json, os, sys, time
for i in range(3):
    print(json.dumps({"MESSAGE": f"m{i}", "__REALTIME_TIMESTAMP": str(i)}), flush=True)
if os.environ.get("PRINTED_MARK"):
    open(os.environ["PRINTED_MARK"], "w").close()
time.sleep(60)
"""


def printed_mark(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A file the fake journalctl makes once it has printed everything: on a loaded machine
    its start can take longer than any fixed delay a test would wait."""
    mark = tmp_path / "printed"
    monkeypatch.setenv("PRINTED_MARK", str(mark))
    return mark


def test_follow_yields_entries_and_stops_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_journalctl(monkeypatch, PRINT_THEN_HANG)
    follower = JournalFollower(JournalQuery(unit="u.service"))
    got = []
    for entry in follower:
        got.append(entry.message)
        if len(got) == 2:
            follower.stop()
    assert got == ["m0", "m1"]
    assert follower._proc is None  # reaped


def test_follow_stopped_from_another_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_journalctl(monkeypatch, PRINT_THEN_HANG)
    all_read = threading.Event()

    def stop_once_read(follower: JournalFollower) -> None:
        all_read.wait(30)  # (else the test fails on what it got)
        follower.stop()

    started = time.monotonic()
    got: list[str | bytes] = []
    with JournalFollower(JournalQuery(), poll_interval=30) as follower:
        threading.Thread(target=stop_once_read, args=(follower,), daemon=True).start()
        for entry in follower:  # journalctl prints no more: the follower waits for it
            got.append(entry.message)
            if len(got) == 3:
                all_read.set()
    assert got == ["m0", "m1", "m2"]
    assert time.monotonic() - started < 30


def test_follow_ends_when_should_stop_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_journalctl(monkeypatch, PRINT_THEN_HANG)
    mark = printed_mark(monkeypatch, tmp_path)
    checks: list[float] = []

    def should_stop() -> bool:
        # says so on the first poll after everything was printed (and a moment to read it)
        if mark.exists():
            checks.append(time.monotonic())
        return len(checks) >= 2

    follower = JournalFollower(JournalQuery(), should_stop=should_stop, poll_interval=0.05)
    assert [entry.message for entry in follower] == ["m0", "m1", "m2"]
    assert len(checks) == 2


def test_follow_reports_a_failing_journalctl(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_journalctl(
        monkeypatch,
        'import sys; print(\'{"MESSAGE": "x"}\'); '
        "sys.stderr.write('Failed to open journal\\n'); sys.exit(1)",
    )
    follower = JournalFollower(JournalQuery())
    got: list[str | bytes] = []
    with pytest.raises(CommandFailed) as caught:
        got.extend(entry.message for entry in follower)
    assert got == ["x"]
    assert caught.value.message == "journalctl failed: Failed to open journal"
    assert caught.value.returncode == 1


def test_follow_of_an_ended_stream_without_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_journalctl(monkeypatch, "print('{\"MESSAGE\": \"last\"}', end='')")  # no newline
    assert [entry.message for entry in JournalFollower(JournalQuery())] == ["last"]


def test_a_follower_is_used_once(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_journalctl(monkeypatch, "pass")
    follower = JournalFollower(JournalQuery())
    assert list(follower) == []
    with pytest.raises(ExternalError):
        list(follower)
    follower.stop()  # harmless after close
