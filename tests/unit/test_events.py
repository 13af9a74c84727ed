"""The event log (``rootless.eventlog``: append-only, bounded, concurrent writers, followed
across rotations) and docker's events over it (``rootless.events``: the message, filters,
time windows), and ``rctl events``' line and templates (``rootless.cli.monitor``)."""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rctlbase.errors import UsageError
from rootless import eventlog
from rootless.cli.monitor import _event_printer, event_line
from rootless.eventlog import append_line, follow_lines, log_path, read_lines, record_event
from rootless.events import (
    Event,
    EventQuery,
    event_matcher,
    parse_event,
    parse_event_filters,
    read_events,
)

NANO = 1_000_000_000


def event(
    kind: str = "container", action: str = "create", actor: str = "a" * 64, **attrs: str
) -> Event:
    return Event(kind, action, actor, tuple(attrs.items()), 1_700_000_000 * NANO + 5)


# -- the log -----------------------------------------------------------------------------


def test_lines_are_appended_in_order_and_read_back_whole(tmp_path: Path) -> None:
    path = str(tmp_path / "events.log")
    for n in range(5):
        assert append_line(path, f"line {n}".encode())
    assert list(read_lines(path)) == [f"line {n}".encode() for n in range(5)]
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_a_line_that_is_too_long_or_holds_a_newline_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "events.log")
    assert not append_line(path, b"x" * eventlog.LINE_LIMIT)
    assert not append_line(path, b"two\nlines")
    assert list(read_lines(path)) == []


def test_the_log_is_rotated_at_its_limit_and_holds_at_most_two_files(tmp_path: Path) -> None:
    path = str(tmp_path / "events.log")
    for n in range(1000):
        append_line(path, f"{n:04d}".encode() + b"." * 95, limit=1000)
    assert os.path.getsize(path) <= 1000
    assert os.path.getsize(path + ".1") <= 1000
    assert sorted(os.listdir(tmp_path)) == ["events.log", "events.log.1"]
    kept = [int(line[:4]) for line in read_lines(path)]
    assert kept == list(range(kept[0], 1000))  # the newest, in order, none missing
    assert len(kept) >= 10


def test_concurrent_writers_never_interleave_or_lose_a_line(tmp_path: Path) -> None:
    path = str(tmp_path / "events.log")
    writers, each = 4, 300
    pids = []
    for w in range(writers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 0
            try:
                for n in range(each):
                    line = json.dumps({"w": w, "n": n, "pad": "x" * (n % 300)})
                    append_line(path, line.encode(), limit=1 << 30)
            except BaseException:
                code = 1
            os._exit(code)
        pids.append(pid)
    for pid in pids:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    lines = [json.loads(line) for line in read_lines(path)]
    assert len(lines) == writers * each
    for w in range(writers):
        assert [d["n"] for d in lines if d["w"] == w] == list(range(each))


def test_concurrent_writers_rotating_keep_every_line_whole(tmp_path: Path) -> None:
    path = str(tmp_path / "events.log")
    pids = []
    for w in range(3):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            for n in range(400):
                append_line(path, json.dumps({"w": w, "n": n}).encode(), limit=4000)
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    append_line(path, b'{"w": "last"}', limit=4000)
    lines = [json.loads(line) for line in read_lines(path)]  # every line parses
    assert len(lines) > 4000 // 30  # about a file's worth at least
    assert lines[-1] == {"w": "last"}
    assert os.path.getsize(path) <= 4000 and os.path.getsize(path + ".1") <= 4000
    for w in range(3):  # each writer's lines that are left are in its order
        seen = [d["n"] for d in lines if d["w"] == w]
        assert seen == sorted(seen)


def test_a_writer_that_waited_on_a_rotated_file_writes_into_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer rotated the log while this one waited for the lock on the old file:
    a line written there would be in the file readers have left."""
    path = str(tmp_path / "events.log")
    append_line(path, b"first")
    real = fcntl.flock
    others: list[bytes] = [b"other"]

    def flock(fd: int, operation: int) -> None:
        real(fd, operation)
        if others:
            os.replace(path, path + ".1")  # the other writer's rotation, then its line
            append_line(path, others.pop())

    monkeypatch.setattr(fcntl, "flock", flock)
    append_line(path, b"mine")
    assert Path(path).read_bytes() == b"other\nmine\n"
    assert Path(path + ".1").read_bytes() == b"first\n"


def test_a_follower_sees_new_lines_and_goes_on_across_a_rotation(tmp_path: Path) -> None:
    path = str(tmp_path / "events.log")
    append_line(path, b"old")
    steps: list[Callable[[], object]] = [
        lambda: append_line(path, b"one"),
        lambda: [append_line(path, b"x" * 6, limit=12), append_line(path, b"two", limit=12)],
        lambda: append_line(path, b"three", limit=12),
    ]
    done: list[bool] = []

    def sleep(_seconds: float) -> None:
        if steps:
            steps.pop(0)()
        else:
            done.append(True)

    seen = list(follow_lines(path, lambda: bool(done), sleep=sleep))
    assert seen == [b"one", b"x" * 6, b"two", b"three"]  # "old" was there before


def test_a_follower_with_history_reads_the_rotated_file_first(tmp_path: Path) -> None:
    path = str(tmp_path / "events.log")
    for word in (b"a" * 8, b"b" * 8, b"c" * 8):
        append_line(path, word, limit=12)
    assert list(follow_lines(path, lambda: True, history=True)) == [b"b" * 8, b"c" * 8]


def test_a_follower_waits_for_a_log_that_does_not_exist_yet(tmp_path: Path) -> None:
    path = str(tmp_path / "events.log")
    steps: list[Callable[[], object]] = [lambda: append_line(path, b"first")]
    done: list[bool] = []

    def sleep(_seconds: float) -> None:
        (steps.pop(0) if steps else lambda: done.append(True))()

    assert list(follow_lines(path, lambda: bool(done), sleep=sleep)) == [b"first"]


def test_record_event_never_fails_the_action(tmp_path: Path) -> None:
    record_event(str(tmp_path / "missing" / "dir"), "container", "create", "x")


def test_record_event_drops_the_labels_of_an_event_too_long(tmp_path: Path) -> None:
    huge = {f"label{n}": "v" * 1000 for n in range(100)}
    record_event(str(tmp_path), "container", "create", "id1", {**huge, "name": "web"})
    [line] = list(read_lines(log_path(str(tmp_path))))
    found = parse_event(line)
    assert found is not None
    assert found.attribute_map == {"name": "web"}


# -- docker's events ---------------------------------------------------------------------


def test_an_event_is_docker_message() -> None:
    message = event(image="busybox", name="web").to_docker()
    assert message == {
        "status": "create",
        "id": "a" * 64,
        "from": "busybox",
        "Type": "container",
        "Action": "create",
        "Actor": {"ID": "a" * 64, "Attributes": {"image": "busybox", "name": "web"}},
        "scope": "local",
        "time": 1_700_000_000,
        "timeNano": 1_700_000_000 * NANO + 5,
    }
    volume = event("volume", "create", "data", driver="local").to_docker()
    assert "status" not in volume and volume["Actor"]["ID"] == "data"


def test_the_log_round_trips_an_event_and_skips_what_is_not_one() -> None:
    original = event(name="web", exitCode="3")
    assert parse_event(original.to_line()) == original
    for bad in (b"", b"{", b"[]", b'{"Type":1}', b'{"Type":"container","Action":"x","Actor":'
                b'{"ID":"i","Attributes":{"a":1}},"timeNano":1}',
                b'{"Type":"c","Action":"x","Actor":{"ID":"i"},"timeNano":"1"}'):  # fmt: skip
        assert parse_event(bad) is None


def matches(filters: list[str], item: Event) -> bool:
    return event_matcher(parse_event_filters(filters))(item)


def test_filters_follow_docker() -> None:
    web = event(action="start", image="busybox", name="web", app="shop")
    assert matches([], web)
    assert matches(["type=container"], web)
    assert not matches(["type=image"], web)
    assert matches(["event=stop", "event=start"], web)  # one key: any value
    assert not matches(["event=start", "type=volume"], web)  # keys: all
    assert matches(["container=web"], web)
    assert matches(["container=" + "a" * 12], web)  # an ID's prefix
    assert not matches(["container=aaa"], web)  # too short for a prefix
    assert matches(["image=busybox"], web)
    assert matches(["label=app"], web) and matches(["label=app=shop"], web)
    assert not matches(["label=app=other"], web)
    assert not matches(["volume=web"], web)
    assert matches(["scope=local"], web)
    assert matches(["event=exec_start"], event(action="exec_start: sh -c x"))
    assert matches(["image=sha256:" + "b" * 12], event("image", "delete", "sha256:" + "b" * 64))
    assert matches(["network=front"], event("network", "create", "n1", name="front"))


def test_unknown_filters_and_types_are_refused() -> None:
    with pytest.raises(UsageError, match="invalid filter 'nope'"):
        parse_event_filters(["nope=1"])
    with pytest.raises(UsageError, match="invalid filter 'type=daemon'"):
        parse_event_filters(["type=daemon"])


def write(tmp_path: Path, *events: Event) -> None:
    for item in events:
        append_line(log_path(str(tmp_path)), item.to_line())


def at(seconds: int, action: str) -> Event:
    return Event("container", action, "c1", (("name", "web"),), seconds * NANO)


def test_past_events_between_since_and_until(tmp_path: Path) -> None:
    write(tmp_path, at(10, "create"), at(20, "start"), at(30, "die"), at(40, "destroy"))
    query = EventQuery(since_ns=20 * NANO, until_ns=30 * NANO)
    found = list(read_events(str(tmp_path), query, follow=True))
    assert [e.action for e in found] == ["start", "die"]


def test_following_without_since_shows_only_new_events(tmp_path: Path) -> None:
    write(tmp_path, at(10, "create"))
    now = time.time_ns()
    later = [Event("container", "start", "c1", (), now + n) for n in (1, 2)]
    stops = iter([False, True])

    def should_stop() -> bool:
        if later:
            write(tmp_path, later.pop(0))
            return False
        return next(stops)

    found = list(
        read_events(str(tmp_path), EventQuery(), follow=True, should_stop=should_stop, poll=0)
    )
    assert [e.time_nano for e in found] == [now + 1, now + 2]


def test_following_since_a_moment_shows_the_past_then_the_new(tmp_path: Path) -> None:
    write(tmp_path, at(10, "create"), at(20, "start"))
    calls: list[int] = []

    def should_stop() -> bool:
        calls.append(1)
        if len(calls) == 1:
            write(tmp_path, at(30, "die"))
        return len(calls) > 1

    query = EventQuery(since_ns=15 * NANO)
    found = read_events(str(tmp_path), query, follow=True, should_stop=should_stop, poll=0)
    assert [e.action for e in found] == ["start", "die"]


def test_the_cli_line_is_docker_one() -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        line = event_line(event(image="busybox", name="web").to_docker())
    finally:
        del os.environ["TZ"]
        time.tzset()
    assert line == (
        "2023-11-14T22:13:20.000000005Z container create " + "a" * 64
        + " (image=busybox, name=web)"
    )  # fmt: skip


def test_the_cli_formats_templates_and_json() -> None:
    message = event(name="web").to_docker()
    assert _event_printer("{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")(message) == (
        "container create web"
    )
    assert _event_printer("{{.Status}} {{.TimeNano}}")(message) == (
        f"create {1_700_000_000 * NANO + 5}"
    )
    assert json.loads(_event_printer("json")(message)) == message
    assert json.loads(_event_printer("{{ json . }}")(message)) == message  # docker's names
    with pytest.raises(UsageError, match="template"):
        _event_printer("{{.Type")
