"""Stop, kill, restart and rm against a unit that ends and is collected at any moment, and
removals that meet each other (``rootless.containers.service``, ``.record``, ``.exited``).

A scripted manager stands in for systemd: each test says which of its calls find the unit
gone, as the user manager answers when the unit was collected in between.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from netns.ports import Protocol, PublishedPort
from rctlbase.errors import ConflictError, NotFoundError
from rootless.containers import exited
from rootless.containers.record import ContainerRecord, ContainerStore
from rootless.containers.service import ContainerService
from rootless.storage.drivers import Driver
from units.manager import KillWhom
from units.state import UnitState

GONE = NotFoundError("no unit")


class ScriptedManager:
    """The user manager's answers about one unit; a name in ``gone`` makes that call find
    the unit collected. ``on_stop`` runs inside the stop (what ends with the unit)."""

    def __init__(self, active_state: str | None, gone: tuple[str, ...] = ()) -> None:
        self.active_state = active_state
        self.gone = set(gone)
        self.calls: list[tuple[Any, ...]] = []
        self.on_stop: list[Any] = []

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        if name in self.gone:
            raise NotFoundError(f"can't {name} unit {args[0]}: Unit {args[0]} not loaded.")

    def unit_state(self, name: str) -> UnitState | None:
        self.calls.append(("unit_state", name))
        if self.active_state is None:
            return None
        return UnitState(name, "loaded", self.active_state, "running", main_pid=42)

    def stop(self, name: str, timeout: float | None = None) -> UnitState | None:
        for action in self.on_stop:
            action()
        self._call("stop", name, timeout)
        return None

    def kill(self, name: str, signum: int, whom: KillWhom = KillWhom.MAIN) -> None:
        self._call("kill", name, signum, whom)

    def wait_inactive(self, name: str, timeout: float | None = None) -> UnitState:
        self._call("wait_inactive", name, timeout)
        return UnitState(name, "loaded", "inactive", "dead")

    def reset_failed(self, name: str) -> None:
        self._call("reset_failed", name)

    def freeze(self, name: str) -> None:
        self._call("freeze", name)

    def thaw(self, name: str) -> None:
        self._call("thaw", name)

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]


def make_service(tmp_path: Path, manager: ScriptedManager) -> ContainerService:
    jobs: list[Any] = []

    def refuse(*_args: Any) -> Any:
        raise AssertionError("not used by these tests")

    class Host:
        """The engine's part: layer jobs are recorded, nothing else is used."""

        userns_plan = property(refuse)
        pull_image = unpack_missing = remove_container = refuse

        def run_layer_jobs(self, batch: Any) -> None:
            jobs.extend(batch)

    service = ContainerService(
        data=tmp_path / "data",
        runtime=tmp_path / "run",
        images=refuse,  # type: ignore[arg-type]
        host=Host(),
        driver=Driver.OVERLAY,
        manager=manager,  # type: ignore[arg-type]
    )
    return service


def add_container(service: ContainerService, name: str = "box", **fields: Any) -> ContainerRecord:
    record = ContainerRecord(
        id=os.urandom(32).hex(),
        name=name,
        image_id="sha256:" + "0" * 64,
        image_name="busybox",
        command=("sleep", "300"),
        created=time.time(),
        driver="overlay",
        **fields,
    )
    directory = service.store.dir(record.id)
    (directory / "upper" / "etc").mkdir(parents=True)
    (directory / "upper" / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    service.store.save(record)
    return record


def test_rm_f_of_a_unit_collected_while_it_stops_removes_the_container(tmp_path: Path) -> None:
    """rm -f read the unit running; it ended and was collected before the next call."""
    manager = ScriptedManager("active", gone=("stop", "kill", "wait_inactive", "reset_failed"))
    service = make_service(tmp_path, manager)
    record = add_container(service)
    assert service.remove(record.id, force=True) == record
    assert not service.store.dir(record.id).exists()
    assert service.store.all() == []
    assert list(service.store.root.iterdir()) == []


def test_rm_f_stops_the_unit_instead_of_killing_it(tmp_path: Path) -> None:
    """A stop job: with --restart always a kill alone would have systemd start it again;
    timeout 0 is SIGKILL for every process while the main one runs."""
    manager = ScriptedManager("active")
    service = make_service(tmp_path, manager)
    record = add_container(service)
    service.remove(record.id, force=True)
    assert ("stop", record.unit, 0) in manager.calls
    assert "kill" not in manager.names()


def test_rm_without_force_refuses_a_running_or_stopping_container(tmp_path: Path) -> None:
    for state in ("active", "activating", "deactivating"):
        service = make_service(tmp_path / state, ScriptedManager(state))
        record = add_container(service)
        with pytest.raises(ConflictError, match="is running"):
            service.remove(record.id)
        assert service.store.get(record.id) == record


def test_rm_after_the_stop_hook_removed_the_container_succeeds(tmp_path: Path) -> None:
    """--rm: the unit's stop hook takes the directory while rm -f waits for the stop."""
    manager = ScriptedManager("active")
    service = make_service(tmp_path, manager)
    record = add_container(service, auto_remove=True)
    directory = str(service.store.dir(record.id))

    def stop_hook() -> None:
        doomed = exited.take_out_dir(directory)
        assert doomed is not None
        exited.remove_as_user(doomed)

    manager.on_stop.append(stop_hook)
    assert service.remove(record.id, force=True) == record
    assert list(service.store.root.iterdir()) == []


def test_of_two_removals_one_deletes_and_neither_fails(tmp_path: Path) -> None:
    """Both read the record; the first takes the directory out, the second finds it gone."""
    manager = ScriptedManager(None)
    service = make_service(tmp_path, manager)
    record = add_container(service)
    other = make_service(tmp_path, ScriptedManager(None))
    manager.on_stop.append(lambda: other.remove(record.id))
    manager.active_state = "active"  # the first one stops the unit, meanwhile the other removes
    service.remove(record.id, force=True)
    assert list(service.store.root.iterdir()) == []
    with pytest.raises(NotFoundError, match="no such container"):
        service.remove(record.id, force=True)


def test_published_ports_keep_their_json_in_container_json(tmp_path: Path) -> None:
    # Records written before the ports were a type still load, and are written the same.
    store = ContainerStore(tmp_path / "containers")
    store.root.mkdir()
    directory = store.dir("ab" * 32)
    directory.mkdir()
    raw = {"id": directory.name, "name": "x", "image_id": "i", "image_name": "busybox",
           "command": ["true"], "created": 1.0, "driver": "overlay",
           "ports": [["udp", "127.0.0.1", 5353, 53], ["tcp", "", 8080, 80]]}  # fmt: skip
    (directory / "container.json").write_text(json.dumps(raw))
    record = store.get("x")
    assert record.ports == (
        PublishedPort(Protocol.UDP, "127.0.0.1", 5353, 53),
        PublishedPort(Protocol.TCP, "", 8080, 80),
    )
    store.save(record)
    assert json.loads((directory / "container.json").read_text())["ports"] == raw["ports"]


def test_a_container_being_removed_is_not_listed_and_claimed_once(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path / "containers")
    store.root.mkdir()
    directory = store.dir("c0ffee" * 10 + "c0ff")
    directory.mkdir()
    raw = {"id": directory.name, "name": "x", "image_id": "i", "image_name": "busybox",
           "command": ["true"], "created": 1.0, "driver": "overlay"}  # fmt: skip
    (directory / "container.json").write_text(json.dumps(raw))
    assert [r.name for r in store.all()] == ["x"]
    doomed = store.take_out(directory.name)
    assert doomed is not None and doomed.name == f".removing-{directory.name}"
    assert store.take_out(directory.name) is None
    assert store.all() == []
    with pytest.raises(NotFoundError):
        store.get("x")
    assert store.leftovers(older_than=60) == []
    assert store.leftovers(older_than=-1) == [doomed]


def test_prune_deletes_what_killed_removals_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = make_service(tmp_path, ScriptedManager(None))
    record = add_container(service)
    doomed = service.store.take_out(record.id)
    assert doomed is not None
    monkeypatch.setattr("rootless.containers.service.LEFTOVER_AGE", -1.0)
    monkeypatch.setattr(service, "summaries", lambda all_containers: [])
    assert service.prune() == []
    assert not doomed.exists()


def test_stop_of_a_stopped_or_collected_container_succeeds(tmp_path: Path) -> None:
    """docker: stopping a stopped container is fine, whenever its unit went."""
    for state, gone in (("active", ("stop",)), (None, ("stop",)), ("failed", ())):
        manager = ScriptedManager(state, gone=gone)
        service = make_service(tmp_path / str(state), manager)
        record = add_container(service)
        assert service.stop(record.id) == record
        assert service.stop(record.id, timeout=0) == record


def test_kill_of_a_unit_collected_meanwhile_is_not_running(tmp_path: Path) -> None:
    service = make_service(tmp_path, ScriptedManager("active", gone=("kill",)))
    record = add_container(service)
    with pytest.raises(ConflictError, match="box is not running"):
        service.kill(record.id, 15)


def test_kill_of_a_unit_whose_main_process_ended_meanwhile_is_not_running(tmp_path: Path) -> None:
    manager = ScriptedManager("active")
    service = make_service(tmp_path, manager)
    record = add_container(service)

    def no_main(name: str, signum: int, whom: KillWhom = KillWhom.MAIN) -> None:
        raise ConflictError(f"can't signal unit {name}: No main process to kill")

    manager.kill = no_main  # type: ignore[method-assign]
    with pytest.raises(ConflictError, match="box is not running"):
        service.kill(record.id, 15)


def test_the_run_relay_ignores_a_container_that_ended(tmp_path: Path) -> None:
    service = make_service(tmp_path, ScriptedManager("active", gone=("kill",)))
    service.relay_signal("rctl-x.service", 2)  # no exception for the relay's thread


def test_pause_and_unpause_of_a_unit_collected_meanwhile(tmp_path: Path) -> None:
    service = make_service(tmp_path, ScriptedManager("active", gone=("freeze", "thaw")))
    record = add_container(service)
    with pytest.raises(ConflictError, match="not running"):
        service.pause(record.id)
    with pytest.raises(ConflictError, match="not running"):
        service.unpause(record.id)


def test_restart_of_a_unit_collected_while_it_stops_starts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = make_service(tmp_path, ScriptedManager("active", gone=("stop",)))
    record = add_container(service)
    started: list[str] = []

    def start(ref: str) -> ContainerRecord:
        started.append(ref)
        return record

    monkeypatch.setattr(service.lifecycle, "start", start)
    assert service.restart(record.id) == record
    assert started == [record.id]


def test_start_waits_for_the_last_run_s_stop_hook(tmp_path: Path) -> None:
    """The unit is deactivating (its stop hook runs): with --rm, the hook removes the
    container, and start says there is none instead of failing on its files."""
    manager = ScriptedManager("deactivating")
    service = make_service(tmp_path, manager)
    record = add_container(service, auto_remove=True)
    directory = str(service.store.dir(record.id))

    def hook_ends(name: str, timeout: float | None = None) -> UnitState:
        exited.remove_as_user(str(exited.take_out_dir(directory)))
        raise GONE

    manager.wait_inactive = hook_ends  # type: ignore[method-assign]
    with pytest.raises(NotFoundError, match="no such container"):
        service.start(record.id)


def test_the_stop_hook_takes_the_directory_out_before_deleting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A --rm container vanishes whole from the store: never a directory without its
    record, or a record without its files, for ps or a concurrent rm to find."""
    service = make_service(tmp_path, ScriptedManager(None))
    record = add_container(service, auto_remove=True)
    directory = service.store.dir(record.id)
    (directory / "bundle").mkdir()
    launch = {"runtime_root": str(tmp_path / "run" / "crun"), "container_id": record.id}
    (directory / "bundle" / "launch.json").write_text(json.dumps(launch))
    seen: list[str] = []
    real = exited.remove_as_user

    def watch(path: str) -> bool:
        seen.append(path)
        assert service.store.all() == [] and not directory.exists()
        return real(path)

    monkeypatch.setattr(exited, "remove_as_user", watch)
    monkeypatch.setattr("sys.argv", ["exited", str(directory / "bundle")])
    monkeypatch.setenv("EXIT_CODE", "exited")
    monkeypatch.setenv("EXIT_STATUS", "0")
    assert exited.main() == 0
    assert seen == [str(service.store.root / f".removing-{record.id}")]
    assert list(service.store.root.iterdir()) == []
