"""Events written where containers change: the container service (``create`` aside: it
needs an image) and the stop hook's ``die``/``destroy``; and ``rctl export``'s archive of a
root (:func:`rootless.containers.export.write_archive`)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tarfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rootless.containers import exited
from rootless.containers.export import write_archive
from rootless.containers.record import ContainerRecord
from rootless.containers.service import ContainerService
from rootless.containers.unitevents import log_started
from rootless.eventlog import log_path, read_lines
from rootless.events import parse_event
from rootless.storage.drivers import Driver
from units.manager import KillWhom
from units.state import UnitState


class Manager:
    def __init__(self, active_state: str | None) -> None:
        self.active_state = active_state

    def unit_state(self, name: str) -> UnitState | None:
        if self.active_state is None:
            return None
        return UnitState(name, "loaded", self.active_state, "running", main_pid=42)

    def stop(self, name: str, timeout: float | None = None) -> None:
        self.active_state = "inactive"

    def kill(self, name: str, signum: int, whom: KillWhom = KillWhom.MAIN) -> None:
        pass

    def freeze(self, name: str) -> None:
        pass

    def thaw(self, name: str) -> None:
        pass

    def reset_failed(self, name: str) -> None:
        pass


def make(tmp_path: Path, active_state: str | None) -> tuple[ContainerService, ContainerRecord]:
    def refuse(*_args: Any) -> Any:
        raise AssertionError("not used")

    images = SimpleNamespace(store=SimpleNamespace(locked=contextlib.nullcontext))
    service = ContainerService(
        data=tmp_path / "data",
        runtime=tmp_path / "run",
        images=images,  # type: ignore[arg-type]
        host=SimpleNamespace(),
        driver=Driver.OVERLAY,
        manager=Manager(active_state),  # type: ignore[arg-type]
    )
    record = ContainerRecord(
        id="c" * 64,
        name="web",
        image_id="sha256:" + "0" * 64,
        image_name="busybox",
        command=("sleep", "9"),
        created=time.time(),
        driver="overlay",
        labels={"app": "shop"},
    )
    service.store.dir(record.id).mkdir(parents=True)
    service.store.save(record)
    return service, record


def logged(data: Path) -> list[tuple[str, dict[str, str]]]:
    found = []
    for line in read_lines(log_path(str(data))):
        event = parse_event(line)
        assert event is not None and event.type == "container"
        found.append((event.action, event.attribute_map))
    return found


def test_the_container_service_logs_what_it_does(tmp_path: Path) -> None:
    service, _ = make(tmp_path, "active")
    service.kill("web", 15)
    service.pause("web")
    service.unpause("web")
    renamed = service.rename("web", "shop")
    service.stop("shop")
    service.remove("shop")
    events = logged(tmp_path / "data")
    assert [action for action, _ in events] == [
        "kill", "pause", "unpause", "rename", "stop", "destroy",
    ]  # fmt: skip
    assert events[0][1] == {"app": "shop", "image": "busybox", "name": "web", "signal": "15"}
    assert events[3][1]["oldName"] == "web" and events[3][1]["name"] == renamed.name


def test_only_the_removal_that_took_the_container_out_logs_destroy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rm met --rm's stop hook (or another rm), which took the directory out first."""
    service, record = make(tmp_path, None)
    monkeypatch.setattr(service.store, "take_out", lambda container_id: None)
    service.remove(record.id)
    assert logged(tmp_path / "data") == []


def stop_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, auto_remove: bool) -> Path:
    data = tmp_path / "data"
    directory = data / "containers" / ("d" * 64)
    (directory / "bundle").mkdir(parents=True)
    record = {"id": "d" * 64, "name": "job", "image_name": "busybox", "labels": {"k": "v"},
              "auto_remove": auto_remove}  # fmt: skip
    (directory / "container.json").write_text(json.dumps(record))
    (directory / "bundle" / "launch.json").write_text(
        json.dumps({"runtime_root": str(tmp_path / "crun"), "container_id": "d" * 64})
    )
    monkeypatch.setattr(sys, "argv", ["exited", str(directory / "bundle")])
    monkeypatch.setenv("EXIT_CODE", "exited")
    monkeypatch.setenv("EXIT_STATUS", "3")
    monkeypatch.setattr(exited, "remove_container_dir", lambda path, launch: None)
    monkeypatch.setattr("rootless.containers.backoff.record_stop", lambda path: None)
    assert exited.record_exit() == 0
    return data


def test_the_stop_hook_logs_die_with_the_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = stop_hook(tmp_path, monkeypatch, auto_remove=False)
    assert logged(data) == [("die", {"k": "v", "exitCode": "3", "image": "busybox", "name": "job"})]


def test_the_stop_hook_of_rm_logs_die_then_destroy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = stop_hook(tmp_path, monkeypatch, auto_remove=True)
    assert [action for action, _ in logged(data)] == ["die", "destroy"]


def test_the_archive_holds_the_tree_with_numeric_owners_and_links(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_bytes(b"#!/bin/sh\n")
    os.link(root / "bin" / "tool", root / "bin" / "again")
    (root / "bin" / "sh").symlink_to("tool")
    (root / "proc").mkdir()
    out = tmp_path / "out.tar"
    said: list[str] = []
    fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o600)
    cwd = os.getcwd()
    try:
        assert write_archive(fd, said.append, str(root)) == 0
    finally:
        os.chdir(cwd)
        os.close(fd)
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["bin", "bin/again", "bin/sh", "bin/tool", "proc"]
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "tool"
    assert members["bin/tool"].islnk() or members["bin/again"].islnk()
    assert all(m.uname == "" and m.gname == "" for m in members.values())  # no NSS lookups
    assert members["bin/tool"].uid == os.getuid()
    assert said == []


def test_a_reader_that_leaves_early_is_not_an_error(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "big").write_bytes(os.urandom(1 << 20))
    read_end, write_end = os.pipe()
    os.close(read_end)  # `rctl export c | head -c 10`, the reader gone
    cwd = os.getcwd()
    said: list[str] = []
    try:
        assert write_archive(write_end, said.append, str(root)) == 0
    finally:
        os.chdir(cwd)
        os.close(write_end)
    assert said == []


def test_the_launcher_logs_start_from_the_container_record(tmp_path: Path) -> None:
    service, record = make(tmp_path, None)
    log_started(str(service.store.dir(record.id)))
    assert logged(tmp_path / "data") == [
        ("start", {"app": "shop", "image": "busybox", "name": "web"})
    ]
    log_started(str(tmp_path / "data" / "containers" / "gone"))  # no record: no event
    assert len(logged(tmp_path / "data")) == 1
