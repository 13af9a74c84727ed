"""The asyncio side of the user's service manager: one D-Bus connection and its calls.

:class:`AsyncManager` holds a dbus-fast ``MessageBus`` connected to the session bus, sends
the ``org.freedesktop.systemd1.Manager`` calls, and turns the manager's signals
(``JobRemoved``, ``UnitRemoved``, a unit's ``PropertiesChanged``) into the ends of jobs and
units that callers wait for. D-Bus error replies are translated into rctlbase errors in
:meth:`AsyncManager.call`, where they enter. :class:`units.manager.UserManager` is the
synchronous facade the engine uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine, Iterable, Mapping
from enum import StrEnum
from typing import Any

from dbus_fast import Message, MessageType, Variant, unpack_variants
from dbus_fast.aio import MessageBus

from rctlbase.errors import ConflictError, ExternalError, NotFoundError
from units.bus import (
    BUS_DAEMON,
    MANAGER,
    MANAGER_PATH,
    PROPERTIES,
    SYSTEMD,
    UNIT,
    translate_connect_error,
    translate_dbus_error,
)
from units.properties import ServiceSpec, plan_properties, split_fds
from units.state import ENDED_STATES, UnitState, interface_of, parse_unit_state, unit_object_path

LOST = "lost the connection to the session bus while waiting for the service manager"
# Sub-states of a service whose main process still runs while it is being stopped
# (service_state_table in src/core/service.c); past them ExecStopPost= may be running.
_MAIN_STOPPING = frozenset({"stop", "stop-watchdog", "stop-sigterm"})


class KillWhom(StrEnum):
    """Which processes of a unit ``KillUnit`` signals (systemctl kill --kill-whom)."""

    MAIN = "main"
    CONTROL = "control"
    ALL = "all"


class UnitStartFailed(ExternalError):
    """The start job of a unit did not succeed; ``state`` is the unit's state, if known."""

    def __init__(
        self, message: str, *, hint: str | None, job_result: str, state: UnitState | None
    ) -> None:
        super().__init__(message, hint=hint)
        self.job_result = job_result
        self.state = state


class UnitStillActive(ConflictError):
    """A unit did not end within the time a caller was willing to wait."""


class _Props:
    """A unit's properties merged from replies and signals, the newest value winning.

    Every message from the manager carries a serial from one increasing counter (sd-bus
    numbers replies and signals alike), so comparing serials orders a ``GetAll`` snapshot
    against ``PropertiesChanged`` signals that raced with it. ``changed`` is set on every
    update and on the unit's removal.
    """

    def __init__(self) -> None:
        self.values: dict[str, tuple[int, Any]] = {}
        self.removed = False
        self.changed = asyncio.Event()
        self.read_serial = -1

    def update(self, serial: int, changed: Mapping[str, Any]) -> None:
        for key, value in changed.items():
            if key not in self.values or self.values[key][0] < serial:
                self.values[key] = (serial, value)
        self.changed.set()

    def remove(self) -> None:
        self.removed = True
        self.changed.set()

    @property
    def ended(self) -> bool:
        return self.values.get("ActiveState", (0, ""))[1] in ENDED_STATES

    @property
    def confirmed(self) -> bool:
        """Whether the current ActiveState comes from a read, not only from a signal."""
        return self.values.get("ActiveState", (0, ""))[0] == self.read_serial

    def plain(self) -> dict[str, Any]:
        return {key: value for key, (_, value) in self.values.items()}


def match_rule(**parts: str) -> str:
    return ",".join(
        ["type='signal'", f"sender='{SYSTEMD}'"] + [f"{k}='{v}'" for k, v in parts.items()]
    )


def glob_escape(text: str) -> str:
    """Escape fnmatch(3) metacharacters, for ListUnitsByPatterns."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class AsyncManager:
    """The asyncio side: one connection, its signal handlers and the systemd calls."""

    def __init__(self, bus: MessageBus, call_timeout: float) -> None:
        self.bus = bus
        self.call_timeout = call_timeout
        self._signals: asyncio.Task[None] | None = None
        self._calls_in_flight = 0
        self._early_jobs: dict[str, str] = {}
        self._job_waiters: dict[str, asyncio.Future[str]] = {}
        self._watches: dict[str, list[_Props]] = {}
        self.lost = False
        bus.add_message_handler(self._on_message)

    @classmethod
    async def connect(cls, address: str, call_timeout: float) -> AsyncManager:
        bus = MessageBus(bus_address=address, negotiate_unix_fd=True)
        try:
            await asyncio.wait_for(bus.connect(), call_timeout)
        except Exception as exc:
            raise translate_connect_error(exc, address) from exc
        core = cls(bus, call_timeout)
        core.watch_disconnect(bus.wait_for_disconnect())  # type: ignore[no-untyped-call]
        return core

    def watch_disconnect(self, disconnected: Coroutine[Any, Any, None]) -> None:
        """Fail every wait once the connection is gone: no signal will ever end them."""

        async def watch() -> None:
            with contextlib.suppress(Exception):
                await disconnected
            self.lost = True
            for waiter in list(self._job_waiters.values()):
                if not waiter.done():
                    waiter.set_exception(ExternalError(LOST))
            for watches in self._watches.values():
                for props in watches:
                    props.changed.set()

        self._disconnect_task = asyncio.ensure_future(watch())

    async def call(
        self,
        member: str,
        signature: str = "",
        body: Iterable[Any] = (),
        *,
        action: str,
        path: str = MANAGER_PATH,
        interface: str = MANAGER,
        destination: str = SYSTEMD,
        unix_fds: Iterable[int] = (),
        unit: str = "",
        hints: Mapping[str, str] | None = None,
    ) -> Message:
        """Call a method and return its reply; an error reply raises an RctlError."""
        msg = Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=list(body),
            unix_fds=list(unix_fds),
        )
        try:
            reply = await asyncio.wait_for(self.bus.call(msg), self.call_timeout)
        except TimeoutError as exc:
            raise ExternalError(
                f"{action}: no answer from the service manager within {self.call_timeout:g} s"
            ) from exc
        except Exception as exc:
            raise ExternalError(f"{action}: D-Bus failure: {exc}") from exc
        if reply.message_type == MessageType.ERROR:
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            raise translate_dbus_error(reply.error_name or "", text, action, unit=unit, hints=hints)
        return reply

    def _on_message(self, msg: Message) -> None:
        if msg.message_type != MessageType.SIGNAL:
            return
        if msg.member == "JobRemoved" and msg.interface == MANAGER:
            _, job, _, result = msg.body
            waiter = self._job_waiters.pop(job, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(result)
            elif self._calls_in_flight:
                self._early_jobs[job] = result
        elif msg.member == "PropertiesChanged" and msg.path in self._watches:
            changed = {key: unpack_variants(v) for key, v in msg.body[1].items()}
            for watch in self._watches[msg.path]:
                watch.update(msg.serial, changed)
        elif msg.member == "UnitRemoved" and msg.interface == MANAGER:
            for watch in self._watches.get(msg.body[1], []):
                watch.remove()

    async def ensure_signals(self) -> None:
        """Receive JobRemoved and UnitRemoved, and ask the manager to send signals at all
        (it emits them only while some client is subscribed: Subscribe() in
        org.freedesktop.systemd1(5))."""
        if self._signals is None:
            self._signals = asyncio.ensure_future(self._subscribe())
        await asyncio.shield(self._signals)

    async def _subscribe(self) -> None:
        await asyncio.gather(
            self.add_match(match_rule(interface=MANAGER, member="JobRemoved")),
            self.add_match(match_rule(interface=MANAGER, member="UnitRemoved")),
            self.call("Subscribe", action="can't subscribe to the service manager's signals"),
        )

    async def add_match(self, rule: str, remove: bool = False) -> None:
        await self.call(
            "RemoveMatch" if remove else "AddMatch",
            "s",
            [rule],
            action="can't watch the service manager's signals",
            destination=BUS_DAEMON,
            path="/org/freedesktop/DBus",
            interface=BUS_DAEMON,
        )

    async def start_job(
        self, call: Coroutine[Any, Any, Message]
    ) -> tuple[str, asyncio.Future[str]]:
        """Run a method that queues a job; return its path and a future of its result.

        JobRemoved may in principle overtake the reply that names the job, so removals
        seen while such a call is in flight are kept until the reply is read.
        """
        await self.ensure_signals()
        self._calls_in_flight += 1
        try:
            job: str = (await call).body[0]
        finally:
            self._calls_in_flight -= 1
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        if job in self._early_jobs:
            done.set_result(self._early_jobs.pop(job))
        elif self.lost:
            done.set_exception(ExternalError(LOST))
        else:
            self._job_waiters[job] = done
            done.add_done_callback(lambda _: self._job_waiters.pop(job, None))
        if not self._calls_in_flight:
            self._early_jobs.clear()
        return job, done

    async def properties(self, name: str, path: str) -> list[tuple[dict[str, Any], int]]:
        """The properties of the unit's Unit interface, then of its type's interface, each
        with the serial of the reply that carried them."""
        interfaces = [UNIT] + [i for i in [interface_of(name)] if i]
        replies = await asyncio.gather(
            *(
                self.call(
                    "GetAll",
                    "s",
                    [iface],
                    action=f"can't read the properties of unit {name}",
                    path=path,
                    interface=PROPERTIES,
                    unit=name,
                )
                for iface in interfaces
            )
        )
        return [(unpack_variants(reply.body[0]), reply.serial) for reply in replies]

    async def merged_properties(self, name: str) -> dict[str, Any] | None:
        """All properties of a loaded unit in one mapping, or None when it is not loaded."""
        path = await self.unit_path(name)
        if path is None:
            return None
        try:
            snapshots = await self.properties(name, path)
        except NotFoundError:
            return None
        merged = {key: value for props, _ in snapshots for key, value in props.items()}
        # GetAll on the path of a unit collected meanwhile loads a "not-found" stub.
        return None if merged.get("LoadState") == "not-found" else merged

    async def unit_path(self, name: str) -> str | None:
        try:
            reply = await self.call("GetUnit", "s", [name], action=f"no unit {name}", unit=name)
        except NotFoundError:
            return None
        path: str = reply.body[0]
        return path

    async def unit_state(self, name: str) -> UnitState | None:
        props = await self.merged_properties(name)
        return None if props is None else parse_unit_state(name, props)

    async def start_transient(self, spec: ServiceSpec, wait: bool) -> str:
        props, fds = split_fds(plan_properties(spec))
        body = [spec.name, "fail", [[n, Variant(sig, value)] for n, (sig, value) in props], []]
        call = self.call(
            "StartTransientUnit",
            "ssa(sv)a(sa(sv))",
            body,
            action=f"can't start unit {spec.name}",
            unix_fds=fds,
            unit=spec.name,
        )
        if not wait:
            job: str = (await call).body[0]
            return job
        job, done = await self.start_job(call)
        result = await done
        if result != "done":
            state = await self.unit_state(spec.name)
            # A program that ran and ended before the manager saw its exec() succeed fails
            # the job of a Type=exec service, but it did start: its status is the result.
            if result == "failed" and state is not None and state.main_ran:
                return job
            detail = f"job {result}"
            if state is not None and state.result:
                detail += f", result {state.result}"
            if state is not None and state.exit_status is not None:
                detail += f", status {state.exit_status}"
            raise UnitStartFailed(
                f"unit {spec.name} failed to start ({detail})",
                hint=f"see its log: journalctl --user -u {spec.name}",
                job_result=result,
                state=state,
            )
        return job

    async def wait_inactive(self, name: str, timeout: float | None) -> UnitState:
        await self.ensure_signals()
        path = unit_object_path(name)
        rule = match_rule(path=path, interface=PROPERTIES, member="PropertiesChanged")
        await self.add_match(rule)  # before reading the state: no change can slip by
        watch = _Props()
        self._watches.setdefault(path, []).append(watch)
        try:
            if not await self._refresh(name, path, watch):
                raise NotFoundError(f"no unit {name}")
            await asyncio.wait_for(self._until_ended(name, path, watch), timeout)
        except TimeoutError as exc:
            raise UnitStillActive(
                f"unit {name} is still active after {timeout:g} s",
                hint=f"systemctl --user status {name}",
            ) from exc
        finally:
            self._watches[path].remove(watch)
            if not self._watches[path]:
                del self._watches[path]
            await self.add_match(rule, remove=True)
        return parse_unit_state(name, watch.plain())

    async def _until_ended(self, name: str, path: str, watch: _Props) -> None:
        """Wait for an end that a read of the unit confirms.

        Up to systemd 253 a service that restarts passes through ``failed`` for an instant
        (service_enter_dead() before auto-restart) and a signal may say so; an end that
        only a signal reported is checked with a fresh read before it counts.
        """
        while not watch.removed:
            if self.lost:
                raise ExternalError(LOST, hint=f"systemctl --user status {name}")
            if watch.ended:
                if watch.confirmed or not await self._refresh(name, path, watch):
                    return  # (or collected right after it ended: the signals told the end)
                continue
            watch.changed.clear()
            await watch.changed.wait()

    async def _refresh(self, name: str, path: str, watch: _Props) -> bool:
        """Merge a fresh read of the unit into ``watch``; False if the unit is gone."""
        if await self.unit_path(name) is None:
            return False
        try:
            snapshots = await self.properties(name, path)
        except NotFoundError:
            return False
        # GetAll on the path of a unit collected meanwhile loads a "not-found" stub.
        if snapshots[0][0].get("LoadState") == "not-found":
            return False
        for props, serial in snapshots:
            watch.update(serial, props)
        watch.read_serial = snapshots[0][1]
        return True

    async def stop(self, name: str, timeout: float | None) -> UnitState | None:
        _, done = await self.start_job(
            self.call(
                "StopUnit", "ss", [name, "replace"], action=f"can't stop unit {name}", unit=name
            )
        )
        if timeout is not None:
            try:
                await asyncio.wait_for(asyncio.shield(done), timeout)
            except TimeoutError:
                state = await self.unit_state(name)
                # Kill the whole unit only while its main process still runs: later,
                # ExecStopPost= (rctl's cleanup) may be running and must finish.
                if state is not None and state.sub_state in _MAIN_STOPPING:
                    await self.kill(name, signal.SIGKILL, KillWhom.ALL)
        await done
        return await self.unit_state(name)

    async def kill(self, name: str, signum: int, whom: KillWhom) -> None:
        await self.call(
            "KillUnit",
            "ssi",
            [name, str(whom), int(signum)],
            action=f"can't signal unit {name}",
            unit=name,
        )

    async def list_units(self, prefix: str) -> list[UnitState]:
        reply = await self.call(
            "ListUnitsByPatterns",
            "asas",
            [[], [glob_escape(prefix) + "*"]],
            action="can't list units",
        )
        names = sorted(row[0] for row in reply.body[0])
        states = await asyncio.gather(*(self.unit_state(n) for n in names))
        return [state for state in states if state is not None]

    async def close(self) -> None:
        self.bus.disconnect()
        for waiter in self._job_waiters.values():
            waiter.cancel()
