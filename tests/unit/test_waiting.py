"""``rctl wait --condition`` (``rootless.containers.waiting``) against a scripted user
manager: what each condition waits for and which exit code it reports."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rctlbase.errors import NotFoundError, UsageError
from rootless.containers.record import ContainerRecord
from rootless.containers.service import ContainerService
from rootless.containers.waiting import wait_condition
from rootless.eventlog import record_event
from rootless.storage.drivers import Driver
from units.state import UnitState


class Manager:
    """The unit's state as the test sets it; ``wait_inactive`` returns it ended."""

    def __init__(self) -> None:
        self.active_state: str | None = None
        self.waited = 0

    def unit_state(self, name: str) -> UnitState | None:
        if self.active_state is None:
            return None
        return UnitState(name, "loaded", self.active_state, "running", main_pid=42)

    def wait_inactive(self, name: str, timeout: float | None = None) -> UnitState:
        self.waited += 1
        if self.active_state is None:
            raise NotFoundError(f"no unit {name}")
        self.active_state = "inactive"
        return UnitState(name, "loaded", "inactive", "dead")


def make(tmp_path: Path) -> tuple[ContainerService, Manager, ContainerRecord]:
    def refuse(*_args: Any) -> Any:
        raise AssertionError("not used")

    manager = Manager()
    service = ContainerService(
        data=tmp_path / "data",
        runtime=tmp_path / "run",
        images=refuse,  # type: ignore[arg-type]
        host=SimpleNamespace(),
        driver=Driver.OVERLAY,
        manager=manager,  # type: ignore[arg-type]
    )
    record = ContainerRecord(
        id=os.urandom(32).hex(),
        name="box",
        image_id="sha256:" + "0" * 64,
        image_name="busybox",
        command=("true",),
        created=time.time(),
        driver="overlay",
    )
    service.store.dir(record.id).mkdir(parents=True)
    service.store.save(record)
    return service, manager, record


def ended(service: ContainerService, record: ContainerRecord, code: int) -> None:
    """What the stop hook writes."""
    path = service.store.dir(record.id) / "exit.json"
    path.write_text(json.dumps({"exit_code": code, "finished": time.time()}))
    stamp = time.time_ns() + 1_000_000  # a later mtime than the one before, on any clock
    os.utime(path, ns=(stamp, stamp))


def test_not_running_returns_at_once_for_a_container_that_never_ran(tmp_path: Path) -> None:
    service, _, record = make(tmp_path)
    assert wait_condition(service, record.id, "not-running") == 0


def test_not_running_gives_the_last_exit_code(tmp_path: Path) -> None:
    service, manager, record = make(tmp_path)
    manager.active_state = "active"
    ended(service, record, 3)
    assert wait_condition(service, "box", "not-running") == 3
    assert manager.waited == 1


def test_removed_waits_for_the_removal(tmp_path: Path) -> None:
    service, _, record = make(tmp_path)
    ended(service, record, 7)
    looks: list[int] = []

    def sleep(_seconds: float) -> None:
        looks.append(1)
        if len(looks) == 3:
            service.store.take_out(record.id)  # what rm does first

    assert wait_condition(service, record.id, "removed", sleep=sleep) == 7
    assert len(looks) == 3


def test_removed_takes_the_code_of_a_container_gone_with_its_record(tmp_path: Path) -> None:
    """--rm: the stop hook removed exit.json with the container; its die event tells."""
    service, _, record = make(tmp_path)
    record_event(str(service.store.root.parent), "container", "die", record.id, {"exitCode": "9"})

    def sleep(_seconds: float) -> None:
        service.store.take_out(record.id)

    assert wait_condition(service, record.id, "removed", sleep=sleep) == 9


def test_next_exit_waits_for_a_run_that_ends_after_the_call(tmp_path: Path) -> None:
    service, manager, record = make(tmp_path)
    ended(service, record, 1)  # the run before: not the one waited for
    looks: list[int] = []

    def sleep(_seconds: float) -> None:
        looks.append(1)
        if len(looks) == 2:
            ended(service, record, 4)  # started and ended between two looks

    assert wait_condition(service, record.id, "next-exit", sleep=sleep) == 4
    assert manager.waited == 0


def test_next_exit_of_a_running_container_waits_for_its_end(tmp_path: Path) -> None:
    service, manager, record = make(tmp_path)
    manager.active_state = "active"
    ended(service, record, 5)
    assert wait_condition(service, record.id, "next-exit") == 5
    assert manager.waited == 1


def test_an_unknown_condition_is_refused(tmp_path: Path) -> None:
    service, _, record = make(tmp_path)
    with pytest.raises(UsageError, match="invalid condition"):
        wait_condition(service, record.id, "stopped")
