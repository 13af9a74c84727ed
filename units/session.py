"""One connection's worth of talking to the user's service manager: calls, jobs, waits.

:class:`ManagerSession` sends the ``org.freedesktop.systemd1.Manager`` calls over a
:class:`~units.connection.Connection` and turns the manager's signals (``JobRemoved``,
``UnitRemoved``, a unit's ``PropertiesChanged``) into the ends of jobs and units that
callers wait for. D-Bus error replies are translated into rctlbase errors in
:meth:`ManagerSession.call`, where they enter. Its state (subscriptions, jobs, watched
units) belongs to one connection; :class:`units.manager.UserManager`, the facade the
engine uses, makes a new session when it has to reconnect.

Signals are handled in whichever thread reads the connection, with the connection's lock
held; the state they update is read and written under that same lock.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
import time
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from rctlbase.errors import ConflictError, ExternalError, NotFoundError
from units.bus import (
    BUS_DAEMON,
    MANAGER,
    MANAGER_PATH,
    PROPERTIES,
    SYSTEMD,
    UNIT,
    translate_dbus_error,
)
from units.connection import Connection, ConnectionLost
from units.properties import Property, ServiceSpec, plan_properties, split_fds
from units.state import ENDED_STATES, UnitState, interface_of, parse_unit_state, unit_object_path
from units.timer import TimerSpec, plan_timer_units
from units.wire import Message, MessageType, Variant, unpack_variants

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
    against ``PropertiesChanged`` signals that raced with it. ``version`` counts updates
    (and the unit's removal), so a waiter can tell that something happened.
    """

    def __init__(self) -> None:
        self.values: dict[str, tuple[int, Any]] = {}
        self.removed = False
        self.version = 0
        self.read_serial = -1

    def update(self, serial: int, changed: Mapping[str, Any]) -> None:
        for key, value in changed.items():
            if key not in self.values or self.values[key][0] < serial:
                self.values[key] = (serial, value)
        self.version += 1

    def remove(self) -> None:
        self.removed = True
        self.version += 1

    @property
    def ended(self) -> bool:
        return self.values.get("ActiveState", (0, ""))[1] in ENDED_STATES

    @property
    def confirmed(self) -> bool:
        """Whether the current ActiveState comes from a read, not only from a signal."""
        return self.values.get("ActiveState", (0, ""))[0] == self.read_serial

    def plain(self) -> dict[str, Any]:
        return {key: value for key, (_, value) in self.values.items()}


class _Job:
    """A queued job of the manager; ``result`` is set when JobRemoved names it."""

    def __init__(self, path: str, result: str | None = None) -> None:
        self.path = path
        self.result = result


def match_rule(**parts: str) -> str:
    return ",".join(
        ["type='signal'", f"sender='{SYSTEMD}'"] + [f"{k}='{v}'" for k, v in parts.items()]
    )


def glob_escape(text: str) -> str:
    """Escape fnmatch(3) metacharacters, for ListUnitsByPatterns."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def check_reply(
    reply: Message, action: str, *, unit: str = "", hints: Mapping[str, str] | None = None
) -> None:
    """Raise the RctlError that an error reply stands for (translate_dbus_error)."""
    if reply.message_type == MessageType.ERROR:
        text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
        raise translate_dbus_error(reply.error_name or "", text, action, unit=unit, hints=hints)


def _changed(watch: _Props, seen: int) -> bool:
    return watch.version != seen


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def _present(reply: Message, action: str, unit: str) -> bool:
    """Whether a reply about a unit has its answer: False when it says there is no such
    unit (NotFoundError); other errors raise."""
    try:
        check_reply(reply, action, unit=unit)
    except NotFoundError:
        return False
    return True


def _start_failed(name: str, result: str | None, state: UnitState | None) -> UnitStartFailed:
    """The error of a start job that ended with ``result``, not ``done``."""
    detail = f"job {result}"
    if state is not None and state.result:
        detail += f", result {state.result}"
    if state is not None and state.exit_status is not None:
        detail += f", status {state.exit_status}"
    return UnitStartFailed(
        f"unit {name} failed to start ({detail})",
        hint=f"see its log: journalctl --user -u {name}",
        job_result=str(result),
        state=state,
    )


class ManagerSession:
    """The service manager's calls over one connection, with its signal handling."""

    def __init__(self, conn: Connection, call_timeout: float) -> None:
        self.conn = conn
        self.call_timeout = call_timeout
        self._subscribed = False
        self._subscribing = threading.Lock()
        self._calls_in_flight = 0
        self._early_jobs: dict[str, str] = {}
        self._job_waiters: dict[str, _Job] = {}
        self._watches: dict[str, list[_Props]] = {}
        conn.add_signal_handler(self._on_signal)

    @property
    def lost(self) -> bool:
        return self.conn.lost

    def message(
        self,
        member: str,
        signature: str = "",
        body: Iterable[Any] = (),
        *,
        path: str = MANAGER_PATH,
        interface: str = MANAGER,
        destination: str = SYSTEMD,
        unix_fds: Iterable[int] = (),
    ) -> Message:
        return Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=list(body),
            unix_fds=list(unix_fds),
        )

    def call(
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
        msg = self.message(
            member,
            signature,
            body,
            path=path,
            interface=interface,
            destination=destination,
            unix_fds=unix_fds,
        )
        return self.call_all([msg], action=action, unit=unit, hints=hints)[0]

    def call_all(
        self,
        messages: list[Message],
        *,
        action: str,
        unit: str = "",
        hints: Mapping[str, str] | None = None,
    ) -> list[Message]:
        """Send every call at once, then collect their replies in order.

        The first error reply raises (translated); the calls get ``call_timeout`` together.
        """
        replies = self.exchange(messages, action)
        for reply in replies:
            check_reply(reply, action, unit=unit, hints=hints)
        return replies

    def exchange(self, messages: list[Message], action: str) -> list[Message]:
        """Send every call at once and return their replies, error replies included."""
        serials: list[int] = []
        try:
            serials = [self.conn.send(msg) for msg in messages]
            deadline = _deadline(self.call_timeout)
            return [self.conn.wait_reply(serial, deadline) for serial in serials]
        except TimeoutError as exc:
            raise ExternalError(
                f"{action}: no answer from the service manager within {self.call_timeout:g} s",
                hint="the service manager is busy or hung ('systemctl --user status'); try again",
            ) from exc
        except Exception as exc:
            raise ExternalError(
                f"{action}: D-Bus failure: {exc}",
                hint="run with --debug; 'systemctl --user status' shows the manager's state",
            ) from exc
        finally:
            self.conn.forget(serials)

    def _on_signal(self, msg: Message) -> None:
        """Route a signal to the jobs and units waited for (connection lock held)."""
        if msg.member == "JobRemoved" and msg.interface == MANAGER:
            _, job, _, result = msg.body
            waiter = self._job_waiters.pop(job, None)
            if waiter is not None:
                waiter.result = result
            elif self._calls_in_flight:
                self._early_jobs[job] = result
        elif msg.member == "PropertiesChanged" and msg.path in self._watches:
            changed = {key: unpack_variants(v) for key, v in msg.body[1].items()}
            for watch in self._watches[msg.path]:
                watch.update(msg.serial, changed)
        elif msg.member == "UnitRemoved" and msg.interface == MANAGER:
            for watch in self._watches.get(msg.body[1], []):
                watch.remove()

    def ensure_signals(self) -> None:
        """Receive JobRemoved and UnitRemoved, and ask the manager to send signals at all
        (it emits them only while some client is subscribed: Subscribe() in
        org.freedesktop.systemd1(5)). Once per connection; the three calls go at once."""
        with self._subscribing:
            if self._subscribed:
                return
            self.call_all(
                [
                    self.match_message(match_rule(interface=MANAGER, member="JobRemoved")),
                    self.match_message(match_rule(interface=MANAGER, member="UnitRemoved")),
                    self.message("Subscribe"),
                ],
                action="can't subscribe to the service manager's signals",
            )
            self._subscribed = True

    def match_message(self, rule: str, remove: bool = False) -> Message:
        return self.message(
            "RemoveMatch" if remove else "AddMatch",
            "s",
            [rule],
            destination=BUS_DAEMON,
            path="/org/freedesktop/DBus",
            interface=BUS_DAEMON,
        )

    def add_match(self, rule: str, remove: bool = False) -> None:
        self.call_all(
            [self.match_message(rule, remove)], action="can't watch the service manager's signals"
        )

    def start_job(self, msg: Message, action: str, unit: str) -> _Job:
        """Call a method that queues a job; return the job, whose result a signal sets.

        JobRemoved may in principle overtake the reply that names the job, so removals
        seen while such a call is in flight are kept until the reply is read.
        """
        self.ensure_signals()
        with self.conn.lock:
            self._calls_in_flight += 1
        try:
            path: str = self.call_all([msg], action=action, unit=unit)[0].body[0]
        finally:
            with self.conn.lock:
                self._calls_in_flight -= 1
        with self.conn.lock:
            job = _Job(path, self._early_jobs.pop(path, None))
            if job.result is None:
                self._job_waiters[path] = job
            if not self._calls_in_flight:
                self._early_jobs.clear()
        return job

    def wait_job(self, job: _Job, timeout: float | None = None) -> str | None:
        """The job's result, or None after ``timeout``; ExternalError(LOST) if the bus goes."""
        try:
            if self.conn.wait_until(lambda: job.result is not None, _deadline(timeout)):
                return job.result
            return None
        except ConnectionLost as exc:
            raise ExternalError(
                LOST, hint="the session bus went away (did the session end?): try again"
            ) from exc
        finally:
            if job.result is not None or self.lost:
                with self.conn.lock:
                    self._job_waiters.pop(job.path, None)

    def properties(self, name: str, path: str) -> list[tuple[dict[str, Any], int]]:
        """The properties of the unit's Unit interface, then of its type's interface, each
        with the serial of the reply that carried them (the calls go at once)."""
        interfaces = [UNIT] + [i for i in [interface_of(name)] if i]
        replies = self.call_all(
            [
                self.message("GetAll", "s", [iface], path=path, interface=PROPERTIES)
                for iface in interfaces
            ],
            action=f"can't read the properties of unit {name}",
            unit=name,
        )
        return [(unpack_variants(reply.body[0]), reply.serial) for reply in replies]

    def merged_properties(self, name: str) -> dict[str, Any] | None:
        """All properties of a loaded unit in one mapping, or None when it is not loaded."""
        path = self.unit_path(name)
        if path is None:
            return None
        try:
            snapshots = self.properties(name, path)
        except NotFoundError:
            return None
        merged = {key: value for props, _ in snapshots for key, value in props.items()}
        # GetAll on the path of a unit collected meanwhile loads a "not-found" stub.
        return None if merged.get("LoadState") == "not-found" else merged

    def unit_path(self, name: str) -> str | None:
        try:
            reply = self.call("GetUnit", "s", [name], action=f"no unit {name}", unit=name)
        except NotFoundError:
            return None
        path: str = reply.body[0]
        return path

    def unit_state(self, name: str) -> UnitState | None:
        props = self.merged_properties(name)
        return None if props is None else parse_unit_state(name, props)

    def start_transient(self, spec: ServiceSpec, wait: bool) -> str:
        props, fds = split_fds(plan_properties(spec))
        body = [spec.name, "fail", [[n, Variant(sig, value)] for n, (sig, value) in props], []]
        msg = self.message("StartTransientUnit", "ssa(sv)a(sa(sv))", body, unix_fds=fds)
        action = f"can't start unit {spec.name}"
        if not wait:
            path: str = self.call_all([msg], action=action, unit=spec.name)[0].body[0]
            return path
        job = self.start_job(msg, action, spec.name)
        result = self.wait_job(job)
        if result != "done":
            state = self.unit_state(spec.name)
            # A program that ran and ended before the manager saw its exec() succeed fails
            # the job of a Type=exec service, but it did start: its status is the result.
            if result == "failed" and state is not None and state.main_ran:
                return job.path
            raise _start_failed(spec.name, result, state)
        return job.path

    def set_properties(self, name: str, props: list[Property]) -> None:
        """``SetUnitProperties`` at runtime (not kept across a daemon-reload)."""
        body = [name, True, [[n, Variant(sig, value)] for n, (sig, value) in props]]
        self.call("SetUnitProperties", "sba(sv)", body, action=f"can't update unit {name}",
                  unit=name)  # fmt: skip

    def start_unit(self, member: str, name: str, wait: bool) -> str:
        """``StartUnit`` or ``RestartUnit`` (job mode ``replace``, as systemctl's); with
        ``wait``, until the job finished, UnitStartFailed unless it is ``done``."""
        msg = self.message(member, "ss", [name, "replace"])
        action = f"can't {'restart' if member == 'RestartUnit' else 'start'} unit {name}"
        if not wait:
            path: str = self.call_all([msg], action=action, unit=name)[0].body[0]
            return path
        job = self.start_job(msg, action, name)
        result = self.wait_job(job)
        if result != "done":
            raise _start_failed(name, result, self.unit_state(name))
        return job.path

    def start_transient_timer(self, spec: TimerSpec) -> str:
        """Start a transient timer with its service (an auxiliary unit of the same call)
        and wait for the timer's start job."""
        timer, aux = plan_timer_units(spec)
        wire = [[n, Variant(sig, value)] for n, (sig, value) in timer]
        units = [[name, [[n, Variant(sig, v)] for n, (sig, v) in props]] for name, props in aux]
        body = [spec.name, "fail", wire, units]
        msg = self.message("StartTransientUnit", "ssa(sv)a(sa(sv))", body)
        job = self.start_job(msg, f"can't start unit {spec.name}", spec.name)
        result = self.wait_job(job)
        if result != "done":
            raise _start_failed(spec.name, result, self.unit_state(spec.name))
        return job.path

    def wait_inactive(self, name: str, timeout: float | None) -> UnitState:
        self.ensure_signals()
        path = unit_object_path(name)
        rule = match_rule(path=path, interface=PROPERTIES, member="PropertiesChanged")
        self.add_match(rule)  # before reading the state: no change can slip by
        watch = _Props()
        with self.conn.lock:
            self._watches.setdefault(path, []).append(watch)
        try:
            if not self._refresh(name, path, watch):
                raise NotFoundError(
                    f"no unit {name}",
                    hint="'systemctl --user list-units --all' lists the units there are",
                )
            if not self._until_ended(name, path, watch, _deadline(timeout)):
                raise UnitStillActive(
                    f"unit {name} is still active after {timeout:g} s",
                    hint=f"systemctl --user status {name}",
                )
        finally:
            with self.conn.lock:
                self._watches[path].remove(watch)
                if not self._watches[path]:
                    del self._watches[path]
            if not self.lost:
                self.add_match(rule, remove=True)
        with self.conn.lock:
            return parse_unit_state(name, watch.plain())

    def _until_ended(self, name: str, path: str, watch: _Props, deadline: float | None) -> bool:
        """Wait for an end that a read of the unit confirms; False at ``deadline``.

        Up to systemd 253 a service that restarts passes through ``failed`` for an instant
        (service_enter_dead() before auto-restart) and a signal may say so; an end that
        only a signal reported is checked with a fresh read before it counts.
        """
        lost = ExternalError(LOST, hint=f"systemctl --user status {name}")
        while True:
            with self.conn.lock:
                removed, ended, confirmed = watch.removed, watch.ended, watch.confirmed
                seen = watch.version
            if removed:
                return True
            if self.lost:
                raise lost
            if ended:
                if confirmed or not self._refresh(name, path, watch):
                    return True  # (or collected right after it ended: the signals told the end)
                continue
            if deadline is not None and time.monotonic() >= deadline:
                return False
            try:
                self.conn.wait_until(functools.partial(_changed, watch, seen), deadline)
            except ConnectionLost as exc:
                raise lost from exc

    def _refresh(self, name: str, path: str, watch: _Props) -> bool:
        """Merge a fresh read of the unit into ``watch``; False if the unit is gone."""
        if self.unit_path(name) is None:
            return False
        try:
            snapshots = self.properties(name, path)
        except NotFoundError:
            return False
        # GetAll on the path of a unit collected meanwhile loads a "not-found" stub.
        if snapshots[0][0].get("LoadState") == "not-found":
            return False
        with self.conn.lock:
            for props, serial in snapshots:
                watch.update(serial, props)
            watch.read_serial = snapshots[0][1]
        return True

    def stop(self, name: str, timeout: float | None) -> UnitState | None:
        msg = self.message("StopUnit", "ss", [name, "replace"])
        job = self.start_job(msg, f"can't stop unit {name}", name)
        if timeout is not None and self.wait_job(job, timeout) is None:
            state = self.unit_state(name)
            # SIGKILL for the main process alone, while it still runs: once it is dead
            # systemd ends the rest itself (KillMode=mixed: SIGKILL; control-group: they
            # had the stop signal, then TimeoutStopSec=). A signal to the whole unit could
            # reach ExecStopPost= (rctl's cleanup), which starts as soon as the main
            # process is gone: between reading the state and the kill.
            if state is not None and state.sub_state in _MAIN_STOPPING:
                with contextlib.suppress(ConflictError):  # the main process ended meanwhile
                    self.kill(name, signal.SIGKILL, KillWhom.MAIN)
        self.wait_job(job)
        return self.unit_state(name)

    def kill(self, name: str, signum: int, whom: KillWhom) -> None:
        self.call(
            "KillUnit",
            "ssi",
            [name, str(whom), int(signum)],
            action=f"can't signal unit {name}",
            unit=name,
        )

    def list_units(self, prefix: str) -> list[UnitState]:
        """Every loaded unit named ``prefix*``: its GetUnit calls, then its GetAll calls,
        each batch sent at once (a unit collected meanwhile is left out)."""
        reply = self.call(
            "ListUnitsByPatterns",
            "asas",
            [[], [glob_escape(prefix) + "*"]],
            action="can't list units",
        )
        names = sorted(row[0] for row in reply.body[0])
        paths = self.exchange(
            [self.message("GetUnit", "s", [name]) for name in names], "can't list units"
        )
        loaded: dict[str, str] = {}
        for name, found in zip(names, paths, strict=True):
            if _present(found, f"no unit {name}", name):
                loaded[name] = found.body[0]
        reads = [(name, [UNIT] + [i for i in [interface_of(name)] if i]) for name in loaded]
        replies = iter(
            self.exchange(
                [
                    self.message("GetAll", "s", [iface], path=loaded[name], interface=PROPERTIES)
                    for name, interfaces in reads
                    for iface in interfaces
                ],
                "can't list units",
            )
        )
        states = []
        for name, interfaces in reads:
            merged: dict[str, Any] = {}
            present = True
            for reply in [next(replies) for _ in interfaces]:
                if _present(reply, f"can't read the properties of unit {name}", name):
                    merged.update(unpack_variants(reply.body[0]))
                else:
                    present = False
            # GetAll on the path of a unit collected meanwhile loads a "not-found" stub.
            if present and merged.get("LoadState") != "not-found":
                states.append(parse_unit_state(name, merged))
        return states

    def close(self) -> None:
        self.conn.close()
