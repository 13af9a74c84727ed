"""Reading the user's journal: a unit's output, or entries with given fields.

Entries come from ``journalctl --user --output=json`` (journalctl(1), "json" in the
output modes): one JSON object per line, every value a string, except that a value which
is not printable UTF-8 is an array of byte values, and a field present several times is
an array of such values. :func:`parse_journal_line` turns one line into a typed
:class:`JournalEntry`; :func:`read_journal` runs journalctl to completion;
:class:`JournalFollower` streams ``journalctl --follow`` until asked to stop.

The planning (:func:`plan_journalctl_argv`) and parsing are pure and unit-tested.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from rctlbase.errors import CommandFailed, ExternalError, UsageError
from rctlbase.run import last_line, run_program, spawn_program

if TYPE_CHECKING:
    import subprocess  # only for the Popen type: programs run through rctlbase.run

# journal_field_valid() with trusted fields allowed (src/libsystemd/sd-journal/journal-file.c).
_QUERY_HINT = "see 'rctl logs --help' for what a journal query takes"
# journalctl's JSON output (journalctl(1), "json") is what rctl parses.
_OUTPUT_HINT = "run with --debug; 'journalctl --user -o json -n 1' shows what journalctl prints"
_FIELD = re.compile(r"_{0,2}[A-Z0-9][A-Z0-9_]{0,63}")
_STDERR_KEPT = 4096
_READ_SIZE = 65536


@dataclass(frozen=True, slots=True)
class JournalQuery:
    """Which entries to read. All conditions hold together (they are ANDed).

    ``unit`` is a user unit, selected like ``journalctl --user -u`` does: its output *and*
    the manager's messages about it ("Started ...", "Failed with result ..."); for the
    output alone match ``_SYSTEMD_USER_UNIT`` (or ``_SYSTEMD_INVOCATION_ID`` for one run).
    ``matches`` are exact field values (``{"SYSLOG_IDENTIFIER": "web"}``); ``lines`` keeps
    only the last N entries (``--tail``); ``after_cursor`` continues after an entry seen.
    """

    unit: str | None = None
    matches: Mapping[str, str] = field(default_factory=dict)
    since: datetime | None = None
    until: datetime | None = None
    lines: int | None = None
    after_cursor: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "matches", MappingProxyType(dict(self.matches)))
        for key in self.matches:
            if not _FIELD.fullmatch(key):
                raise UsageError(
                    f"journal match: {key!r} is not a journal field name", hint=_QUERY_HINT
                )
        if self.lines is not None and self.lines < 0:
            raise UsageError(f"journal lines: {self.lines} is negative", hint=_QUERY_HINT)
        if self.unit is not None and (not self.unit or self.unit.startswith("-")):
            raise UsageError(f"journal unit: {self.unit!r} is not a unit name", hint=_QUERY_HINT)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journal entry.

    ``message`` is ``str`` when journald stored printable UTF-8, else the raw ``bytes``
    (a program's binary or escape-laden output). ``fields`` holds every other field of
    the entry (the last value when a field occurs several times).
    """

    timestamp_usec: int
    message: str | bytes
    priority: int | None = None
    transport: str = ""
    pid: int | None = None
    cursor: str = ""
    fields: Mapping[str, str | bytes] = field(default_factory=dict)

    @property
    def message_bytes(self) -> bytes:
        """The message as bytes, whatever journald stored."""
        return self.message if isinstance(self.message, bytes) else self.message.encode()


def usec_of(moment: datetime) -> int:
    """Microseconds since the epoch (a naive datetime is local time, as in Python)."""
    return round(moment.timestamp() * 1_000_000)


def _timestamp_arg(moment: datetime) -> str:
    # systemd.time(7): "@" and seconds since the epoch; parse_sec() takes a fraction.
    usec = usec_of(moment)
    return f"@{usec // 1_000_000}.{usec % 1_000_000:06d}"


def plan_journalctl_argv(query: JournalQuery, *, follow: bool = False) -> list[str]:
    """The journalctl command line that prints ``query``'s entries as JSON lines."""
    argv = ["journalctl", "--user", "--output=json", "--all", "--no-pager"]
    if query.unit is not None:
        argv.append(f"--unit={query.unit}")
    if query.since is not None:
        argv.append(f"--since={_timestamp_arg(query.since)}")
    if query.until is not None:
        argv.append(f"--until={_timestamp_arg(query.until)}")
    if query.after_cursor is not None:
        argv.append(f"--after-cursor={query.after_cursor}")
    if query.lines is not None and query.since is None:
        argv.append(f"--lines={query.lines}")
    elif query.lines is None and follow:
        argv.append("--lines=all")  # --follow alone would start with the last 10 entries
    if follow:
        argv.append("--follow")
    argv += [f"{key}={value}" for key, value in query.matches.items()]
    return argv


def decode_value(raw: Any) -> str | bytes | None:
    """One field value of journalctl's JSON: a string, an array of byte values (not
    printable UTF-8), null (not shown), or an array of those (a repeated field: the
    last one is kept)."""
    if raw is None or isinstance(raw, str):
        return raw
    if isinstance(raw, list):
        if all(isinstance(item, int) and not isinstance(item, bool) for item in raw):
            return bytes(raw)
        values = [decode_value(item) for item in raw]
        return values[-1] if values else None
    raise ExternalError(f"unexpected journal field value {raw!r}", hint=_OUTPUT_HINT)


def _integer(value: str | bytes | None) -> int | None:
    text = value.decode(errors="replace") if isinstance(value, bytes) else value
    return int(text) if text is not None and text.strip().isdigit() else None


def parse_journal_line(line: bytes | str) -> JournalEntry | None:
    """Parse one line of ``journalctl --output=json``; None for a blank line."""
    if not line.strip():
        return None
    try:
        raw = json.loads(line)
    except ValueError as exc:
        raise ExternalError(
            f"journalctl printed something that is not JSON: {exc}", hint=_OUTPUT_HINT
        ) from exc
    if not isinstance(raw, dict):
        raise ExternalError(
            "journalctl printed a JSON value that is not an object", hint=_OUTPUT_HINT
        )
    values = {key: decode_value(value) for key, value in raw.items()}
    message = values.pop("MESSAGE", None)
    timestamp = _integer(values.pop("__REALTIME_TIMESTAMP", None))
    cursor = values.pop("__CURSOR", None)
    transport = values.get("_TRANSPORT")
    return JournalEntry(
        timestamp_usec=timestamp or 0,
        message="" if message is None else message,
        priority=_integer(values.get("PRIORITY")),
        transport=transport if isinstance(transport, str) else "",
        pid=_integer(values.get("_PID")),
        cursor=cursor if isinstance(cursor, str) else "",
        fields=MappingProxyType({k: v for k, v in values.items() if v is not None}),
    )


def read_journal(query: JournalQuery, *, timeout: float | None = 60) -> list[JournalEntry]:
    """The entries matching ``query``, oldest first (journalctl runs to completion)."""
    proc = run_program(plan_journalctl_argv(query), timeout=timeout)
    entries = (parse_journal_line(line) for line in proc.stdout.splitlines())
    found = [entry for entry in entries if entry is not None]
    # With --since, journalctl's --lines counts from the start: the tail is taken here.
    return found[-query.lines :] if query.lines else ([] if query.lines == 0 else found)


class JournalFollower:
    """The entries of a query as they arrive, from a ``journalctl --follow`` process.

    Iterate it to get entries (the existing ones first, as the query selects). The
    iteration ends when :meth:`stop` is called (from any thread, e.g. a signal handler's
    helper), when ``should_stop()`` returns true (checked every ``poll_interval``
    seconds, e.g. "has the unit ended?"), or when journalctl exits (a failure raises
    CommandFailed). Leaving the ``with`` block or ending the iteration reaps journalctl.
    """

    def __init__(
        self,
        query: JournalQuery,
        *,
        should_stop: Callable[[], bool] | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        self.argv = plan_journalctl_argv(query, follow=True)
        self._should_stop = should_stop
        self._poll_interval = poll_interval
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> JournalFollower:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        self.close()

    def stop(self) -> None:
        """Ask the iteration to end (thread-safe; returns at once)."""
        with self._lock:
            if not self._stopped.is_set() and self._wake_w >= 0:
                os.write(self._wake_w, b"x")
            self._stopped.set()

    def close(self) -> None:
        """End journalctl, reap it and release the descriptors (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        with self._lock:  # stop() must not write to a closed (maybe reused) descriptor
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    os.close(fd)
            self._wake_r = self._wake_w = -1

    def __iter__(self) -> Iterator[JournalEntry]:
        if self._wake_r < 0:
            raise ExternalError(
                "this journal follower was closed already",
                hint="a follower reads the journal once: make a new one",
            )
        self._proc = spawn_program(self.argv, stdin="devnull", stdout="pipe", stderr="pipe")
        try:
            yield from self._entries(self._proc)
        finally:
            self.close()

    def _entries(self, proc: subprocess.Popen[bytes]) -> Iterator[JournalEntry]:
        assert proc.stdout is not None and proc.stderr is not None
        out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
        pending, errors = b"", b""
        with selectors.DefaultSelector() as selector:
            for fd in (out_fd, err_fd, self._wake_r):
                selector.register(fd, selectors.EVENT_READ)
            open_streams = {out_fd, err_fd}
            while open_streams and not self._stopped.is_set():
                ready = [key.fd for key, _ in selector.select(self._poll_interval)]
                if self._wake_r in ready or (
                    not ready and self._should_stop is not None and self._should_stop()
                ):
                    return
                for fd in ready:
                    chunk = os.read(fd, _READ_SIZE)
                    if not chunk:
                        selector.unregister(fd)
                        open_streams.discard(fd)
                        if fd == out_fd:  # a last line without its newline
                            yield from self._parse_until_stopped([pending])
                    elif fd == err_fd:
                        errors = (errors + chunk)[-_STDERR_KEPT:]
                    else:
                        *lines, pending = (pending + chunk).split(b"\n")
                        yield from self._parse_until_stopped(lines)
        if not self._stopped.is_set() and (status := proc.wait()) != 0:
            raise CommandFailed(
                f"journalctl failed: {last_line(errors) or f'exit {status}'}",
                returncode=status,
                stderr=errors.decode(errors="replace"),
            )

    def _parse_until_stopped(self, lines: list[bytes]) -> Iterator[JournalEntry]:
        for line in lines:
            if self._stopped.is_set():
                return
            entry = parse_journal_line(line)
            if entry is not None:
                yield entry
