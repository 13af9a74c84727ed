"""``rctl wait --condition``: docker's three ways to wait for a container.

- ``not-running`` (the default): until it is not running; at once when it isn't;
- ``next-exit``: until its next exit, starting it being someone else's business;
- ``removed``: until it is removed (``rm``, or ``--rm``'s stop hook).

Each returns the exit code of the run it waited for (0 for a container that never ran).
The unit's state comes from the user manager (its end is awaited over D-Bus); a stop the
wait did not see end (a start and an exit between two looks, a removal) is told by the
stop hook's record, or, once the container is gone, by its ``die`` event.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rctlbase.errors import NotFoundError, UsageError
from rootless.containers import layout
from rootless.eventlog import log_path, read_lines

if TYPE_CHECKING:
    from rootless.containers.record import ContainerRecord
    from rootless.containers.service import ContainerService

CONDITIONS = ("not-running", "next-exit", "removed")
POLL = 0.1


def parse_condition(text: str) -> str:
    if text not in CONDITIONS:
        raise UsageError(
            f"invalid condition: {text!r}", hint="use one of: " + ", ".join(CONDITIONS)
        )
    return text


def last_exit_logged(data_root: str, container_id: str) -> int | None:
    """The exit code of the container's last ``die`` event in the log."""
    from rootless.events import parse_event  # noqa: PLC0415

    found = None
    for line in read_lines(log_path(data_root)):
        if container_id.encode() not in line:
            continue
        event = parse_event(line)
        if event and event.actor_id == container_id and event.action == "die":
            code = event.attribute_map.get("exitCode", "")
            found = int(code) if code.isdigit() else found
    return found


def wait_condition(
    containers: ContainerService,
    ref: str,
    condition: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Block until ``condition`` holds for container ``ref``; the exit code."""
    condition = parse_condition(condition)
    record = containers.store.get(ref)
    data_root = str(containers.store.root.parent)
    if condition == "next-exit":
        return _next_exit(containers, record, sleep)
    code = _until_stopped(containers, record)
    if condition == "not-running":
        return code
    while True:
        try:
            containers.store.get(record.id)
        except NotFoundError:
            logged = last_exit_logged(data_root, record.id)
            return code if logged is None else logged
        state = containers.manager.unit_state(record.unit)
        if state is not None and not state.ended:
            code = _until_stopped(containers, record)  # started again meanwhile
        else:
            code = _recorded(containers, record, code)
        sleep(POLL)


def _recorded(containers: ContainerService, record: ContainerRecord, default: int) -> int:
    code = containers.exit_code(record)
    return default if code is None else code


def _until_stopped(containers: ContainerService, record: ContainerRecord) -> int:
    """Wait for the unit's end (at once when it doesn't run); its exit code. The stop
    hook's record is written before the unit ends; with ``--rm`` it goes with the
    container, and the unit's status or the log's ``die`` event tells instead."""
    try:
        state = containers.manager.wait_inactive(record.unit)
    except NotFoundError:
        state = None
    code = containers.exit_code(record)
    if code is not None:
        return code
    if state is not None and state.exit_status is not None:
        return state.exit_status
    logged = last_exit_logged(str(containers.store.root.parent), record.id)
    return 0 if logged is None else logged


def _exit_mark(containers: ContainerService, record: ContainerRecord) -> int | None:
    """When the stop hook last wrote the container's end (ns), None if never."""
    try:
        return os.stat(layout.exit_file(containers.store.dir(record.id))).st_mtime_ns
    except OSError:
        return None


def _next_exit(
    containers: ContainerService, record: ContainerRecord, sleep: Callable[[float], None]
) -> int:
    """Wait for the run after this moment to end: the running one, else the next."""
    before = _exit_mark(containers, record)
    while True:
        state = containers.manager.unit_state(record.unit)
        if state is not None and state.active_state in ("active", "activating", "reloading"):
            return _until_stopped(containers, record)
        try:
            containers.store.get(record.id)
        except NotFoundError as exc:
            raise NotFoundError(
                f"container {record.name} was removed before it exited again",
                hint="wait --condition removed waits for a removal",
            ) from exc
        now = _exit_mark(containers, record)
        if now is not None and now != before:  # started and ended between two looks
            return _recorded(containers, record, 0)
        sleep(POLL)
