"""The engine's event log: one append-only file of JSON lines, bounded, shared by every
rctl process (the CLI, the stop hook) and read by ``rctl events``.

Why a file of rctl's own rather than the journal: the stop hook writes ``die`` for each
container stop and must stay cheap (a write, no socket protocol); the journal a user can
read depends on the host (``Storage=persistent`` or the ``systemd-journal`` group), its
retention and rate limits are shared with everything else the user runs, and it keeps
only strings, where this file keeps docker's event as it is. The file's bound is rctl's.

Concurrency: every writer appends one line with one ``write(2)`` on an ``O_APPEND``
descriptor while holding ``flock(LOCK_EX)`` on it, so lines never interleave. When the
file would pass :data:`LOG_LIMIT`, the writer holding the lock renames it to ``.1``
(replacing the older one) and starts a new file: the log holds at most twice the limit.
A writer that waited for the lock on a file rotated meanwhile sees that the path names
another file and opens it again. Readers take only complete lines and, following, notice
a rotation by the path naming another inode: they finish the old file, then open the new.

It imports only the standard library's basics: the stop hook loads it on every stop.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping

LOG_NAME = "events.log"
# Some 5,000 events of 200 bytes per file; two files at most.
LOG_LIMIT = 1 << 20
# A longer line (labels are the user's) is dropped, not written half.
LINE_LIMIT = 1 << 16
POLL = 0.2


def log_path(data_root: str) -> str:
    """The log of the store at ``data_root`` (``~/.local/share/rctl``)."""
    return os.path.join(data_root, LOG_NAME)


def message(
    kind: str, action: str, actor_id: str, attributes: Mapping[str, str], time_nano: int
) -> dict[str, object]:
    """docker's JSON for an event, with the older ``status``/``id``/``from`` that docker
    still sends for containers and images (scripts read them)."""
    found: dict[str, object] = {}
    if kind in ("container", "image"):
        found["status"] = action
        found["id"] = actor_id
        if kind == "container" and "image" in attributes:
            found["from"] = attributes["image"]
    found.update(
        {
            "Type": kind,
            "Action": action,
            "Actor": {"ID": actor_id, "Attributes": dict(attributes)},
            "scope": "local",
            "time": time_nano // 1_000_000_000,
            "timeNano": time_nano,
        }
    )
    return found


def record_event(
    data_root: str,
    kind: str,
    action: str,
    actor_id: str,
    attributes: Mapping[str, str] | None = None,
) -> None:
    """Append an event happening now to the log of the store at ``data_root``. An event
    is never worth failing the action it reports: a log that can't be written loses it,
    and one too long (labels are the user's) loses its labels."""
    given = {str(k): str(v) for k, v in (attributes or {}).items()}
    path = log_path(data_root)
    stamp = time.time_ns()
    try:
        for shown in (given, {k: v for k, v in given.items() if k in OWN_ATTRIBUTES}):
            line = json.dumps(message(kind, action, actor_id, shown, stamp), separators=(",", ":"))
            if append_line(path, line.encode()):
                return
    except OSError:
        pass


# The attributes rctl sets itself, kept when an event's labels make it too long.
OWN_ATTRIBUTES = frozenset({"name", "image", "exitCode", "signal", "driver", "type", "oldName"})


def append_line(path: str, line: bytes, limit: int = LOG_LIMIT) -> bool:
    """Append one line (without its newline) to the log; False when it is too long."""
    if len(line) >= LINE_LIMIT or b"\n" in line:
        return False
    data = line + b"\n"
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                continue  # rotated and not yet made again: open (create) it anew
            if (current.st_dev, current.st_ino) != (held.st_dev, held.st_ino):
                continue  # rotated while this writer waited
            if held.st_size and held.st_size + len(data) > limit:
                os.replace(path, path + ".1")
                continue  # the next turn creates the new file
            os.write(fd, data)
            return True
        finally:
            os.close(fd)


def read_lines(path: str, *, rotated: bool = True) -> Iterator[bytes]:
    """Every complete line of the log, oldest first (the rotated file, then the current;
    ``rotated=False``: ``path`` alone)."""
    for name in (path + ".1", path) if rotated else (path,):
        try:
            with open(name, "rb") as file:
                for line in file:
                    if line.endswith(b"\n"):
                        yield line[:-1]
        except FileNotFoundError:
            continue


def follow_lines(
    path: str,
    should_stop: Callable[[], bool],
    *,
    history: bool = False,
    poll: float = POLL,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[bytes]:
    """Lines appended to the log from now on (``history``: every line it holds first),
    until ``should_stop()``, checked whenever no line is waiting."""
    if history:
        yield from read_lines(path + ".1", rotated=False)
    file = _open_or_none(path)
    if file is not None and not history:
        file.seek(0, os.SEEK_END)
    pending = b""
    try:
        while True:
            chunk = file.read() if file is not None else b""
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                yield from lines
                continue
            if file is None or _rotated(path, file.fileno()):
                if file is not None:
                    file.close()  # its last lines were read just above
                file, pending = _open_or_none(path), b""
                if file is not None:
                    continue
            if should_stop():
                return
            sleep(poll)
    finally:
        if file is not None:
            file.close()


def _open_or_none(path: str) -> io.BufferedReader | None:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None


def _rotated(path: str, fd: int) -> bool:
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False  # the writer creates it again on its next line
    held = os.fstat(fd)
    return (current.st_dev, current.st_ino) != (held.st_dev, held.st_ino)


def container_attributes(
    name: str, image: str, labels: Mapping[str, str], **extra: str
) -> dict[str, str]:
    """docker's attributes of a container event: its labels, image and name."""
    return {**labels, "image": image, "name": name, **extra}
