"""units.manager's logic against a scripted service manager on a fake bus.

``FakeSystemd`` answers the manager's calls on the in-process bus of fakebus.py, over a
real unix socket, and emits signals with serials like sd-bus's (one counter for replies
and signals), so the waiting logic (subscribe, read, confirm an end, merge by serial) runs
as it does on a real bus, through the real connection.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from fakebus import FakeBus

from rctlbase.errors import ConflictError, ExternalError, HostError, NotFoundError
from units.manager import UnitStartFailed, UnitStillActive, UserManager
from units.properties import ServiceSpec
from units.session import ManagerSession, glob_escape, match_rule
from units.state import unit_object_path
from units.wire import Message, Variant

UNIT_KEYS = {"Id", "LoadState", "ActiveState", "SubState"}
JOB = "/org/freedesktop/systemd1/job/7"
MANAGER = "org.freedesktop.systemd1.Manager"
T = TypeVar("T")
# How long a test waits for what the fake manager sends before failing: events, not
# timers, end the waits, so this only bounds a failing test on a loaded machine.
PATIENCE = 10


def variant(value: Any) -> Variant:
    if isinstance(value, bool):
        return Variant("b", value)
    if isinstance(value, int):
        return Variant("t", value)
    return Variant("s", value)


class FakeSystemd:
    """The user manager's side of the calls rctl makes, scripted per test.

    ``on_call[member](args)`` runs before the call is answered (signals it sends come
    first); ``after_reply[member]()`` runs once, its signals written with the reply;
    ``after_sent[member]()`` runs once, after the reply is written.
    """

    def __init__(self, directory: Path) -> None:
        self.units: dict[str, dict[str, Any]] = {}
        self.on_call: dict[str, Callable[[list[Any]], object]] = {}
        self.after_reply: dict[str, Callable[[], list[Message]]] = {}
        self.after_sent: dict[str, Callable[[], object]] = {}
        self.received_fds: list[int] = []
        self.bus = FakeBus(directory, self.answer)

    def calls(self) -> list[str]:
        return [m for m in self.bus.member_calls() if m != "Hello"]

    def answer(self, bus: FakeBus, msg: Message) -> bool:
        member, args = msg.member or "", list(msg.body)
        if hook := self.on_call.get(member):
            hook(args)
        if member == "GetUnit":
            if args[0] not in self.units:
                bus.send(
                    bus.error(
                        msg, "org.freedesktop.systemd1.NoSuchUnit", f"Unit {args[0]} not loaded."
                    )
                )
                return True
            reply = bus.reply(msg, "o", [unit_object_path(args[0])])
        elif member == "GetAll":
            name = next((n for n in self.units if unit_object_path(n) == msg.path), None)
            if name is None:  # systemd loads a stub for an unknown path
                props = {"LoadState": "not-found", "ActiveState": "inactive"}
            else:
                props = self.units[name]
            wanted = {
                k: v for k, v in props.items() if (k in UNIT_KEYS) == (args[0].endswith(".Unit"))
            }
            reply = bus.reply(msg, "a{sv}", [{k: variant(v) for k, v in wanted.items()}])
        elif member == "ListUnitsByPatterns":
            rows = [
                [n, "", "loaded", p.get("ActiveState", ""), "", "", unit_object_path(n), 0, "", "/"]
                for n, p in self.units.items()
            ]
            reply = bus.reply(msg, "a(ssssssouso)", [rows])
        elif member in ("StartTransientUnit", "StopUnit", "StartUnit", "RestartUnit"):
            self.received_fds += msg.unix_fds
            reply = bus.reply(msg, "o", [JOB])
        else:
            return False
        after = self.after_reply.pop(member, None)
        bus.send(reply, *(after() if after else []))
        if then := self.after_sent.pop(member, None):
            then()
        return True

    def add(self, name: str, **props: Any) -> None:
        self.units[name] = {"Id": name, "LoadState": "loaded", **props}

    def changes(self, name: str, *, really: bool = True, **changes: Any) -> list[Message]:
        """PropertiesChanged for both interfaces; ``really=False`` signals a value that is
        already outdated (the manager's state is not changed)."""
        if really:
            self.units[name].update(changes)
        return [
            self.bus.signal(
                unit_object_path(name),
                "org.freedesktop.DBus.Properties",
                "PropertiesChanged",
                "sa{sv}as",
                [
                    f"org.freedesktop.systemd1.{iface}",
                    {k: variant(v) for k, v in changes.items() if (k in UNIT_KEYS) == keys},
                    [],
                ],
            )
            for iface, keys in (("Service", False), ("Unit", True))
        ]

    def emit(self, name: str, *, really: bool = True, **changes: Any) -> None:
        self.bus.send(*self.changes(name, really=really, **changes))

    def remove(self, name: str) -> None:
        self.bus.send(self.removal(name))

    def removal(self, name: str) -> Message:
        """The unit collected: gone from the manager, and its UnitRemoved signal."""
        del self.units[name]
        return self.bus.signal(
            "/org/freedesktop/systemd1",
            MANAGER,
            "UnitRemoved",
            "so",
            [name, unit_object_path(name)],
        )

    def job_removed(self, job: str, unit: str, result: str) -> None:
        self.bus.send(self.job_removal(job, unit, result))

    def job_removal(self, job: str, unit: str, result: str) -> Message:
        return self.bus.signal(
            "/org/freedesktop/systemd1", MANAGER, "JobRemoved", "uoss", [7, job, unit, result]
        )


@pytest.fixture
def sd(tmp_path: Path) -> Iterator[FakeSystemd]:
    fake = FakeSystemd(tmp_path)
    yield fake
    fake.bus.close()


@pytest.fixture
def manager(sd: FakeSystemd) -> Iterator[UserManager]:
    with UserManager(sd.bus.address, call_timeout=5) as user_manager:
        yield user_manager


def session(manager: UserManager) -> ManagerSession:
    return manager._core()


def within(seconds: float, fn: Callable[[], T]) -> T:
    """``fn()``, failing the test instead of hanging when it does not return in time."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as exc:
            outcome.append((False, exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still waiting after {seconds} s"
    ok, value = outcome[0]
    if not ok:
        raise value
    return cast(T, value)


def later(delay: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    timer = threading.Timer(delay, fn, args, kwargs)
    timer.daemon = True
    timer.start()


def test_wait_on_an_ended_unit_returns_at_once(sd: FakeSystemd, manager: UserManager) -> None:
    sd.add(
        "a.service",
        ActiveState="failed",
        SubState="failed",
        Result="exit-code",
        ExecMainCode=1,
        ExecMainStatus=3,
    )
    state = manager.wait_inactive("a.service", timeout=PATIENCE)
    assert (state.active_state, state.result, state.exit_status) == ("failed", "exit-code", 3)
    calls = sd.calls()
    # Subscribed once, and to the unit before reading it; the per-unit match was removed.
    assert calls[:3] == ["AddMatch", "AddMatch", "Subscribe"]
    assert calls.index("AddMatch", 2) < calls.index("GetUnit")
    assert calls.count("RemoveMatch") == 1
    assert session(manager)._watches == {}
    manager.wait_inactive("a.service", timeout=PATIENCE)
    assert sd.calls().count("Subscribe") == 1


def after_the_read(sd: FakeSystemd, signals: Callable[[], list[Message]]) -> None:
    """``signals`` sent right after the wait's read of the unit (one GetAll per interface):
    a timer could fire before the wait even connected on a loaded machine."""

    def then_after_the_second() -> list[Message]:
        sd.after_reply["GetAll"] = signals
        return []

    sd.after_reply["GetAll"] = then_after_the_second


def once_the_read_is_answered(sd: FakeSystemd, action: Callable[[], object]) -> None:
    """``action()`` once the replies to the wait's read of the unit are written."""

    def then_after_the_second() -> None:
        sd.after_sent["GetAll"] = action

    sd.after_sent["GetAll"] = then_after_the_second


def test_wait_follows_signals_to_the_end(sd: FakeSystemd, manager: UserManager) -> None:
    sd.add("a.service", ActiveState="active", SubState="running", MainPID=9)
    after_the_read(
        sd,
        lambda: [
            *sd.changes("a.service", ActiveState="deactivating", SubState="stop-sigterm"),
            *sd.changes(
                "a.service",
                ActiveState="inactive",
                SubState="dead",
                Result="success",
                ExecMainCode=1,
                ExecMainStatus=0,
                MainPID=0,
            ),
        ],
    )
    state = manager.wait_inactive("a.service", timeout=PATIENCE)
    assert (state.active_state, state.sub_state, state.exit_status) == ("inactive", "dead", 0)
    assert state.main_pid == 0


def test_a_failed_blip_before_auto_restart_is_not_an_end(
    sd: FakeSystemd, manager: UserManager
) -> None:
    sd.add("a.service", ActiveState="active", SubState="running", NRestarts=0)

    def crash_and_restart() -> list[Message]:
        sd.units["a.service"].update(ActiveState="activating", SubState="auto-restart", NRestarts=1)
        # The end, once the blip was checked with a fresh read.
        after_the_read(
            sd,
            lambda: sd.changes(
                "a.service",
                ActiveState="failed",
                SubState="failed",
                Result="exit-code",
                NRestarts=1,
            ),
        )
        return sd.changes("a.service", really=False, ActiveState="failed", SubState="failed")

    after_the_read(sd, crash_and_restart)
    state = manager.wait_inactive("a.service", timeout=PATIENCE)
    assert state.n_restarts == 1
    assert state.result == "exit-code"
    assert sd.calls().count("GetAll") >= 4  # the blip was checked with a fresh read


def test_a_unit_collected_right_after_its_end_reports_what_the_signals_said(
    sd: FakeSystemd, manager: UserManager
) -> None:
    sd.add("a.service", ActiveState="active", SubState="running")

    def end_and_collect() -> list[Message]:
        ended = sd.changes(
            "a.service",
            ActiveState="failed",
            SubState="failed",
            Result="signal",
            ExecMainCode=2,
            ExecMainStatus=9,
        )
        return [*ended, sd.removal("a.service")]

    after_the_read(sd, end_and_collect)
    state = manager.wait_inactive("a.service", timeout=PATIENCE)
    assert (state.result, state.exit_status) == ("signal", 137)


def test_signals_older_than_the_read_do_not_win(sd: FakeSystemd, manager: UserManager) -> None:
    sd.add("a.service", ActiveState="active", SubState="running")

    def stale_signal(_: list[Any]) -> None:
        # A change signal sent before GetAll's reply: older than the snapshot.
        sd.emit("a.service", really=False, ActiveState="inactive", SubState="dead")

    sd.on_call["GetUnit"] = stale_signal
    with pytest.raises(UnitStillActive) as caught:
        manager.wait_inactive("a.service", timeout=0.1)
    assert caught.value.hint == "systemctl --user status a.service"
    assert isinstance(caught.value, ConflictError)
    assert session(manager)._watches == {}


def test_a_signal_newer_than_the_read_wins_even_when_handled_first(
    sd: FakeSystemd, manager: UserManager
) -> None:
    sd.add("a.service", ActiveState="active", SubState="running")
    sd.after_reply["GetAll"] = lambda: sd.changes(
        "a.service", ActiveState="inactive", SubState="dead", Result="success"
    )
    state = manager.wait_inactive("a.service", timeout=PATIENCE)
    assert (state.active_state, state.result) == ("inactive", "success")


def test_waits_fail_when_the_connection_is_lost(sd: FakeSystemd, manager: UserManager) -> None:
    sd.add("a.service", ActiveState="active", SubState="running")
    core = session(manager)
    once_the_read_is_answered(sd, sd.bus.drop)
    with pytest.raises(ExternalError) as caught:
        within(PATIENCE, lambda: manager.wait_inactive("a.service", timeout=PATIENCE))
    assert "lost the connection" in caught.value.message
    assert caught.value.hint == "systemctl --user status a.service"

    with pytest.raises(ExternalError):  # a job started after the loss
        within(PATIENCE, lambda: core.stop("a.service", timeout=None))

    # The facade connects again for the next call.
    assert manager.unit_state("a.service") is not None
    assert sd.bus.connections == 2


def test_a_job_wait_fails_when_the_connection_is_lost(
    sd: FakeSystemd, manager: UserManager
) -> None:
    sd.add("a.service", ActiveState="active", SubState="running")
    sd.after_sent["StopUnit"] = sd.bus.drop  # the job started, never ends
    with pytest.raises(ExternalError) as caught:
        within(PATIENCE, lambda: manager.stop("a.service"))
    assert "lost the connection" in caught.value.message


def test_wait_on_an_unknown_unit(manager: UserManager) -> None:
    with pytest.raises(NotFoundError):
        manager.wait_inactive("nope.service", timeout=PATIENCE)
    assert session(manager)._watches == {}


def test_unit_state_of_unknown_and_collected_units_is_none(
    sd: FakeSystemd, manager: UserManager
) -> None:
    assert manager.unit_state("nope.service") is None
    sd.add("a.service", ActiveState="active", SubState="running", MainPID=5)
    state = manager.unit_state("a.service")
    assert state is not None
    assert state.main_pid == 5
    with pytest.raises(NotFoundError):
        manager.properties("nope.service")
    assert manager.properties("a.service")["MainPID"] == 5


@pytest.mark.parametrize("early", [True, False])
def test_start_waits_for_the_job_even_when_its_removal_comes_first(
    sd: FakeSystemd, manager: UserManager, early: bool
) -> None:
    spec = ServiceSpec(name="a.service", exec_start=("true",))
    if early:
        sd.on_call["StartTransientUnit"] = lambda _: sd.job_removed(JOB, "a.service", "done")
    else:
        sd.after_sent["StartTransientUnit"] = lambda: sd.job_removed(JOB, "a.service", "done")
    assert within(PATIENCE, lambda: manager.start_transient(spec, wait=True)) == JOB
    core = session(manager)
    assert core._job_waiters == {}
    assert core._early_jobs == {}


def failing_start(sd: FakeSystemd, status: int) -> Callable[[list[Any]], None]:
    """StartTransientUnit's effect: the unit failed with ``status`` (CLD_EXITED), then
    its start job is removed as failed."""

    def fail(_: list[Any]) -> None:
        sd.add(
            "a.service",
            ActiveState="failed",
            SubState="failed",
            Result="exit-code",
            ExecMainCode=1,
            ExecMainStatus=status,
        )
        sd.after_sent["StartTransientUnit"] = lambda: sd.job_removed(JOB, "a.service", "failed")

    return fail


def test_a_failed_start_job_reports_the_unit_result(sd: FakeSystemd, manager: UserManager) -> None:
    spec = ServiceSpec(name="a.service", exec_start=("/nope",))
    sd.on_call["StartTransientUnit"] = failing_start(sd, 203)
    with pytest.raises(UnitStartFailed) as caught:
        within(PATIENCE, lambda: manager.start_transient(spec, wait=True))
    error = caught.value
    assert (
        error.message == "unit a.service failed to start (job failed, result exit-code, status 203)"
    )
    assert error.hint == "see its log: journalctl --user -u a.service"
    assert error.job_result == "failed"
    assert error.state is not None
    assert error.state.exec_main_status == 203


def test_a_program_that_exited_before_its_start_was_seen_did_start(
    sd: FakeSystemd, manager: UserManager
) -> None:
    spec = ServiceSpec(name="a.service", exec_start=("sh", "-c", "exit 3"))
    sd.on_call["StartTransientUnit"] = failing_start(sd, 3)
    assert within(PATIENCE, lambda: manager.start_transient(spec, wait=True)) == JOB


def test_start_passes_the_stdio_descriptors(sd: FakeSystemd, manager: UserManager) -> None:
    read_end, write_end = os.pipe()
    try:
        spec = ServiceSpec(
            name="a.service", exec_start=("true",), stdout_fd=write_end, stderr_fd=write_end
        )
        assert manager.start_transient(spec, wait=False) == JOB
        call = next(c for c in sd.bus.calls if c.member == "StartTransientUnit")
        props = {name: value for name, value in call.body[2]}
        assert props["StandardOutputFileDescriptor"].value == 0  # an index into the fds
        assert len(sd.received_fds) == 1  # sent once, for both properties
        os.write(sd.received_fds[0], b"through the bus")
        assert os.read(read_end, 100) == b"through the bus"
    finally:
        for fd in (read_end, write_end, *sd.received_fds):
            os.close(fd)


@pytest.mark.parametrize(("sub_state", "killed"), [("stop-sigterm", True), ("stop-post", False)])
def test_stop_kills_after_the_timeout_only_while_the_main_process_runs(
    sd: FakeSystemd, manager: UserManager, sub_state: str, killed: bool
) -> None:
    sd.add("a.service", ActiveState="deactivating", SubState=sub_state)
    # The job ends only after the read that follows the timeout, so the stop always
    # decides on it (and kills or not) first.
    after_the_read(sd, lambda: [sd.job_removal(JOB, "a.service", "done")])
    within(PATIENCE, lambda: manager.stop("a.service", timeout=0.01))
    assert ("KillUnit" in sd.calls()) == killed
    if killed:
        kill = next(c for c in sd.bus.calls if c.member == "KillUnit")
        assert kill.body == ["a.service", "main", 9]  # never ExecStopPost=, see session.stop


def test_a_kill_from_another_thread_while_waiting(sd: FakeSystemd, manager: UserManager) -> None:
    """rctl run's relay: the main thread waits, a signal handler's thread kills."""
    sd.add("a.service", ActiveState="active", SubState="running")
    sd.on_call["KillUnit"] = lambda _: sd.emit(
        "a.service", ActiveState="failed", SubState="failed", Result="signal"
    )
    killer = threading.Thread(target=manager.kill, args=("a.service", 15), daemon=True)
    once_the_read_is_answered(sd, killer.start)  # the wait is waiting for signals then
    state = within(PATIENCE, lambda: manager.wait_inactive("a.service", timeout=PATIENCE))
    killer.join(5)
    assert state.result == "signal"
    kill = next(c for c in sd.bus.calls if c.member == "KillUnit")
    assert kill.body == ["a.service", "main", 15]


def test_list_units_reads_every_matching_unit(sd: FakeSystemd, manager: UserManager) -> None:
    sd.add("rctl-b.service", ActiveState="active", SubState="running", MainPID=2)
    sd.add("rctl-a.service", ActiveState="failed", SubState="failed", Result="exit-code")
    sd.on_call["GetUnit"] = lambda args: (
        sd.units.pop("rctl-b.service") if args[0] == "rctl-b.service" else None
    )  # collected between the listing and the read
    states = manager.list_units("rctl-")
    assert [s.name for s in states] == ["rctl-a.service"]
    listing = next(c for c in sd.bus.calls if c.member == "ListUnitsByPatterns")
    assert listing.body == [[], ["rctl-*"]]


def test_error_replies_become_rctl_errors_with_hints(sd: FakeSystemd, manager: UserManager) -> None:
    def refuse(bus: FakeBus, msg: Message) -> bool:
        if msg.member != "FreezeUnit":
            return False
        bus.send(bus.error(msg, "org.freedesktop.DBus.Error.NotSupported", ""))
        return True

    sd.bus.on_call = refuse
    with pytest.raises(HostError) as caught:
        manager.freeze("a.service")
    assert caught.value.message == (
        "can't freeze unit a.service: org.freedesktop.DBus.Error.NotSupported"
    )
    assert caught.value.hint is not None
    assert "cgroup v2 freezer" in caught.value.hint


def test_calls_time_out(tmp_path: Path) -> None:
    never_answers = FakeBus(tmp_path, lambda bus, msg: msg.member != "Hello")
    with (
        never_answers,
        UserManager(never_answers.address, call_timeout=0.1) as manager,
        pytest.raises(ExternalError) as caught,
    ):
        manager.reset_failed("a.service")
    assert caught.value.message == (
        "can't reset unit a.service: no answer from the service manager within 0.1 s"
    )


def test_match_rules_and_glob_escaping() -> None:
    assert match_rule(path="/p", member="M") == (
        "type='signal',sender='org.freedesktop.systemd1',path='/p',member='M'"
    )
    assert glob_escape("rctl-a*b?[c]\\") == "rctl-a\\*b\\?\\[c\\]\\\\"


def test_stop_with_a_huge_timeout_waits_without_overflowing(
    sd: FakeSystemd, manager: UserManager
) -> None:
    # poll(2) and Condition.wait() refuse such a timeout (OverflowError, a traceback).
    sd.add("a.service", ActiveState="deactivating", SubState="stop-sigterm")
    # After the job is known; the delay lets the stop wait on it first, as a rule.
    sd.after_sent["StopUnit"] = lambda: later(0.2, sd.job_removed, JOB, "a.service", "done")
    within(PATIENCE, lambda: manager.stop("a.service", timeout=99999999999999.0))
    assert "KillUnit" not in sd.calls()
