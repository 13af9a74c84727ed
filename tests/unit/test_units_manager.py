"""units.manager's logic against a scripted service manager (no bus).

``FakeSystemd`` replaces the one method that talks to the bus (``AsyncManager.call``) and
delivers signals through the real handler, with serials like sd-bus's, so the waiting
logic (subscribe, read, confirm an end, merge by serial) runs as it does on a real bus.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, cast

import pytest
from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from rctlbase.errors import ConflictError, ExternalError, NotFoundError
from units.asyncmanager import (
    AsyncManager,
    UnitStartFailed,
    UnitStillActive,
    glob_escape,
    match_rule,
)
from units.properties import ServiceSpec
from units.state import unit_object_path

UNIT_KEYS = {"Id", "LoadState", "ActiveState", "SubState"}


class FakeBus:
    connected = True

    def add_message_handler(self, handler: object) -> None:
        self.handler = handler

    def disconnect(self) -> None:
        self.connected = False


def variant(value: Any) -> Variant:
    if isinstance(value, bool):
        return Variant("b", value)
    if isinstance(value, int):
        return Variant("t", value)
    return Variant("s", value)


class FakeSystemd(AsyncManager):
    def __init__(self) -> None:
        super().__init__(cast(MessageBus, FakeBus()), call_timeout=5)
        self.serial = 0
        self.units: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.on_call: dict[str, Any] = {}
        self.after_reply: dict[str, Any] = {}

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial

    def reply(self, signature: str = "", body: list[Any] | None = None) -> Message:
        return Message(
            message_type=MessageType.METHOD_RETURN,
            reply_serial=1,
            serial=self.next_serial(),
            signature=signature,
            body=body or [],
        )

    async def call(
        self,
        member: str,
        signature: str = "",
        body: Iterable[Any] = (),
        *,
        action: str,
        path: str = "",
        interface: str = "",
        destination: str = "",
        unix_fds: Iterable[int] = (),
        unit: str = "",
        hints: Mapping[str, str] | None = None,
    ) -> Message:
        args = list(body)
        self.calls.append(member)
        await asyncio.sleep(0)
        if hook := self.on_call.get(member):
            hook(args)
        if member == "GetUnit":
            if args[0] not in self.units:
                raise NotFoundError(f"{action}: Unit {args[0]} not loaded.")
            return self.reply("o", [unit_object_path(args[0])])
        if member == "GetAll":
            name = next((n for n in self.units if unit_object_path(n) == path), None)
            if name is None:  # systemd loads a stub for an unknown path
                props = {"LoadState": "not-found", "ActiveState": "inactive"}
            else:
                props = self.units[name]
            wanted = {
                k: v for k, v in props.items() if (k in UNIT_KEYS) == (args[0].endswith(".Unit"))
            }
            reply = self.reply("a{sv}", [{k: variant(v) for k, v in wanted.items()}])
            if hook := self.after_reply.pop(member, None):
                hook()  # a signal sent after the reply, handled before the caller resumes
            return reply
        if member in ("StartTransientUnit", "StopUnit"):
            return self.reply("o", ["/org/freedesktop/systemd1/job/7"])
        return self.reply()

    def add(self, name: str, **props: Any) -> None:
        self.units[name] = {"Id": name, "LoadState": "loaded", **props}

    def emit(self, name: str, *, really: bool = True, **changes: Any) -> None:
        """PropertiesChanged for both interfaces; ``really=False`` signals a value that is
        already outdated (the manager's state is not changed)."""
        if really:
            self.units[name].update(changes)
        for iface, keys in (("Service", False), ("Unit", True)):
            part = {k: variant(v) for k, v in changes.items() if (k in UNIT_KEYS) == keys}
            self._on_message(
                Message(
                    message_type=MessageType.SIGNAL,
                    path=unit_object_path(name),
                    interface="org.freedesktop.DBus.Properties",
                    member="PropertiesChanged",
                    signature="sa{sv}as",
                    body=[f"org.freedesktop.systemd1.{iface}", part, []],
                    serial=self.next_serial(),
                )
            )

    def remove(self, name: str) -> None:
        del self.units[name]
        self._on_message(
            Message(
                message_type=MessageType.SIGNAL,
                path="/org/freedesktop/systemd1",
                interface="org.freedesktop.systemd1.Manager",
                member="UnitRemoved",
                signature="so",
                body=[name, unit_object_path(name)],
                serial=self.next_serial(),
            )
        )

    def job_removed(self, job: str, unit: str, result: str) -> None:
        self._on_message(
            Message(
                message_type=MessageType.SIGNAL,
                path="/org/freedesktop/systemd1",
                interface="org.freedesktop.systemd1.Manager",
                member="JobRemoved",
                signature="uoss",
                body=[7, job, unit, result],
                serial=self.next_serial(),
            )
        )


def later(delay: float, fn: Any, *args: Any, **kwargs: Any) -> None:
    asyncio.get_running_loop().call_later(delay, lambda: fn(*args, **kwargs))


def test_wait_on_an_ended_unit_returns_at_once() -> None:
    async def scenario() -> None:
        sd = FakeSystemd()
        sd.add(
            "a.service",
            ActiveState="failed",
            SubState="failed",
            Result="exit-code",
            ExecMainCode=1,
            ExecMainStatus=3,
        )
        state = await sd.wait_inactive("a.service", timeout=1)
        assert (state.active_state, state.result, state.exit_status) == ("failed", "exit-code", 3)
        # Subscribed before reading, and the per-unit match was removed afterwards.
        assert sd.calls.index("AddMatch") < sd.calls.index("GetUnit")
        assert sd.calls.count("RemoveMatch") == 1
        assert sd._watches == {}

    asyncio.run(scenario())


def test_wait_follows_signals_to_the_end() -> None:
    async def scenario() -> None:
        sd = FakeSystemd()
        sd.add("a.service", ActiveState="active", SubState="running", MainPID=9)
        later(0.01, sd.emit, "a.service", ActiveState="deactivating", SubState="stop-sigterm")
        later(
            0.02,
            sd.emit,
            "a.service",
            ActiveState="inactive",
            SubState="dead",
            Result="success",
            ExecMainCode=1,
            ExecMainStatus=0,
            MainPID=0,
        )
        state = await sd.wait_inactive("a.service", timeout=2)
        assert (state.active_state, state.sub_state, state.exit_status) == ("inactive", "dead", 0)
        assert state.main_pid == 0

    asyncio.run(scenario())


def test_a_failed_blip_before_auto_restart_is_not_an_end() -> None:
    async def scenario() -> None:
        sd = FakeSystemd()
        sd.add("a.service", ActiveState="active", SubState="running", NRestarts=0)

        def crash_and_restart() -> None:
            sd.units["a.service"].update(
                ActiveState="activating", SubState="auto-restart", NRestarts=1
            )
            sd.emit("a.service", really=False, ActiveState="failed", SubState="failed")

        later(0.01, crash_and_restart)
        later(
            0.05,
            sd.emit,
            "a.service",
            ActiveState="failed",
            SubState="failed",
            Result="exit-code",
            NRestarts=1,
        )
        state = await sd.wait_inactive("a.service", timeout=2)
        assert state.n_restarts == 1
        assert state.result == "exit-code"
        assert sd.calls.count("GetAll") >= 4  # the blip was checked with a fresh read

    asyncio.run(scenario())


def test_a_unit_collected_right_after_its_end_reports_what_the_signals_said() -> None:
    async def scenario() -> None:
        sd = FakeSystemd()
        sd.add("a.service", ActiveState="active", SubState="running")

        def end_and_collect() -> None:
            sd.emit(
                "a.service",
                ActiveState="failed",
                SubState="failed",
                Result="signal",
                ExecMainCode=2,
                ExecMainStatus=9,
            )
            sd.remove("a.service")

        later(0.01, end_and_collect)
        state = await sd.wait_inactive("a.service", timeout=2)
        assert (state.result, state.exit_status) == ("signal", 137)

    asyncio.run(scenario())


def test_signals_older_than_the_read_do_not_win() -> None:
    async def scenario() -> None:
        sd = FakeSystemd()
        sd.add("a.service", ActiveState="active", SubState="running")

        def stale_signal(_: list[Any]) -> None:
            # A change signal sent before GetAll's reply: older than the snapshot.
            sd.emit("a.service", really=False, ActiveState="inactive", SubState="dead")

        sd.on_call["GetUnit"] = stale_signal
        with pytest.raises(UnitStillActive) as caught:
            await sd.wait_inactive("a.service", timeout=0.05)
        assert caught.value.hint == "systemctl --user status a.service"
        assert isinstance(caught.value, ConflictError)

    asyncio.run(scenario())


def test_a_signal_newer_than_the_read_wins_even_when_handled_first() -> None:
    async def scenario() -> None:
        sd = FakeSystemd()
        sd.add("a.service", ActiveState="active", SubState="running")
        sd.after_reply["GetAll"] = lambda: sd.emit(
            "a.service", ActiveState="inactive", SubState="dead", Result="success"
        )
        state = await sd.wait_inactive("a.service", timeout=1)
        assert (state.active_state, state.result) == ("inactive", "success")

    asyncio.run(scenario())


def test_waits_fail_when_the_connection_is_lost() -> None:
    async def scenario() -> None:
        sd = FakeSystemd()
        sd.add("a.service", ActiveState="active", SubState="running")
        gone = asyncio.get_running_loop().create_future()
        sd.watch_disconnect(gone)
        later(0.01, gone.set_result, None)
        with pytest.raises(ExternalError) as caught:
            await asyncio.wait_for(sd.wait_inactive("a.service", timeout=None), 2)
        assert "lost the connection" in caught.value.message

        with pytest.raises(ExternalError):  # a job started after the loss
            await asyncio.wait_for(sd.stop("a.service", timeout=None), 2)

    async def while_a_job_runs() -> None:
        sd = FakeSystemd()
        sd.add("a.service", ActiveState="active", SubState="running")
        gone = asyncio.get_running_loop().create_future()
        sd.watch_disconnect(gone)
        later(0.05, gone.set_result, None)
        with pytest.raises(ExternalError):
            await asyncio.wait_for(sd.stop("a.service", timeout=None), 2)

    asyncio.run(scenario())
    asyncio.run(while_a_job_runs())


def test_wait_on_an_unknown_unit() -> None:
    async def scenario() -> None:
        sd = FakeSystemd()
        with pytest.raises(NotFoundError):
            await sd.wait_inactive("nope.service", timeout=1)
        assert sd._watches == {}

    asyncio.run(scenario())


def test_unit_state_of_unknown_and_collected_units_is_none() -> None:
    async def scenario() -> None:
        sd = FakeSystemd()
        assert await sd.unit_state("nope.service") is None
        sd.add("a.service", ActiveState="active", SubState="running", MainPID=5)
        state = await sd.unit_state("a.service")
        assert state is not None
        assert state.main_pid == 5

    asyncio.run(scenario())


def test_start_waits_for_the_job_even_when_its_removal_comes_first() -> None:
    spec = ServiceSpec(name="a.service", exec_start=("true",))

    async def scenario(early: bool) -> None:
        sd = FakeSystemd()
        job = "/org/freedesktop/systemd1/job/7"
        if early:
            sd.on_call["StartTransientUnit"] = lambda _: sd.job_removed(job, "a.service", "done")
        else:
            later(0.01, sd.job_removed, job, "a.service", "done")
        assert await asyncio.wait_for(sd.start_transient(spec, wait=True), 1) == job
        assert sd._job_waiters == {}
        assert sd._early_jobs == {}

    asyncio.run(scenario(early=True))
    asyncio.run(scenario(early=False))


def test_a_failed_start_job_reports_the_unit_result() -> None:
    spec = ServiceSpec(name="a.service", exec_start=("/nope",))

    async def scenario() -> None:
        sd = FakeSystemd()

        def fail(_: list[Any]) -> None:
            sd.add(
                "a.service",
                ActiveState="failed",
                SubState="failed",
                Result="exit-code",
                ExecMainCode=1,
                ExecMainStatus=203,
            )
            later(0.01, sd.job_removed, "/org/freedesktop/systemd1/job/7", "a.service", "failed")

        sd.on_call["StartTransientUnit"] = fail
        with pytest.raises(UnitStartFailed) as caught:
            await sd.start_transient(spec, wait=True)
        error = caught.value
        assert (
            error.message
            == "unit a.service failed to start (job failed, result exit-code, status 203)"
        )
        assert error.hint == "see its log: journalctl --user -u a.service"
        assert error.job_result == "failed"
        assert error.state is not None
        assert error.state.exec_main_status == 203

    asyncio.run(scenario())


def test_a_program_that_exited_before_its_start_was_seen_did_start() -> None:
    spec = ServiceSpec(name="a.service", exec_start=("sh", "-c", "exit 3"))

    async def scenario() -> str:
        sd = FakeSystemd()

        def exit_at_once(_: list[Any]) -> None:
            sd.add(
                "a.service",
                ActiveState="failed",
                SubState="failed",
                Result="exit-code",
                ExecMainCode=1,
                ExecMainStatus=3,
            )
            later(0.01, sd.job_removed, "/org/freedesktop/systemd1/job/7", "a.service", "failed")

        sd.on_call["StartTransientUnit"] = exit_at_once
        return await sd.start_transient(spec, wait=True)

    assert asyncio.run(scenario()) == "/org/freedesktop/systemd1/job/7"


def test_stop_kills_after_the_timeout_only_while_the_main_process_runs() -> None:
    async def scenario(sub_state: str) -> list[str]:
        sd = FakeSystemd()
        sd.add("a.service", ActiveState="deactivating", SubState=sub_state)
        later(0.1, sd.job_removed, "/org/freedesktop/systemd1/job/7", "a.service", "done")
        await sd.stop("a.service", timeout=0.01)
        return sd.calls

    assert "KillUnit" in asyncio.run(scenario("stop-sigterm"))
    assert "KillUnit" not in asyncio.run(scenario("stop-post"))


def testmatch_rules_and_glob_escaping() -> None:
    assert match_rule(path="/p", member="M") == (
        "type='signal',sender='org.freedesktop.systemd1',path='/p',member='M'"
    )
    assert glob_escape("rctl-a*b?[c]\\") == "rctl-a\\*b\\?\\[c\\]\\\\"
