"""The user's systemd service manager, driven over D-Bus: transient units and their states.

:class:`UserManager` is what the engine uses, and it is synchronous all the way down, like
the engine and the CLI: a blocking D-Bus connection (:mod:`units.connection`, speaking
dbus-fast's wire format through :mod:`units.wire`) and the manager's calls, signals and
waits over it (:mod:`units.session`). No asyncio and no dbus-fast package ``__init__``:
that import chain cost about 45 ms per command, more than the whole D-Bus exchange.

One long-lived connection per facade rather than one per call — connecting is cheap
(socket, SASL, ``Hello``: about 1 ms in the test host), but:

- signal subscriptions survive between calls, so ``start_transient`` followed by
  ``wait_inactive`` can't miss the unit's end;
- ``AddRef`` references belong to the connection: a unit started with ``add_ref`` stays
  loaded (its exit status readable) until :meth:`UserManager.release` or until this
  process's connection closes, even with ``CollectMode=inactive-or-failed``.

It connects on first use and again on the next call after the connection was lost (the
waits in progress then fail). Threads may share a facade: ``rctl run`` waits for its unit
in the main thread while a signal relay thread calls :meth:`UserManager.kill`; the
connection serializes writes and lets one thread read for all (see
:mod:`units.connection`).

Collecting ended units: rctl starts its units with ``collect_mode=inactive-or-failed``
so that neither a clean exit nor a failure leaves a unit behind (a name can then be reused
at once), and with ``add_ref`` when it follows the unit to its end (``rctl run`` attached,
``--rm``) so the result is still readable when the end is reported.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from rctlbase.errors import NotFoundError
from units.bus import resolve_bus_address, translate_connect_error
from units.connection import Connection
from units.properties import Property, ServiceSpec
from units.session import KillWhom, ManagerSession, UnitStartFailed, UnitStillActive
from units.state import UnitState
from units.timer import TimerSpec

__all__ = ["KillWhom", "UnitStartFailed", "UnitStillActive", "UserManager"]

NOT_SUPPORTED = "org.freedesktop.DBus.Error.NotSupported"
FREEZE_HINT = "freezing needs the cgroup v2 freezer (unified hierarchy, Linux 5.2 or later)"


class UserManager:
    """The user's service manager on the session bus, synchronously.

    Connects on first use (``DBUS_SESSION_BUS_ADDRESS``, else ``$XDG_RUNTIME_DIR/bus``);
    use it as a context manager or call :meth:`close`. Not fork-safe: make one per process.
    Method calls time out after ``call_timeout`` seconds; waits take their own timeout.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        call_timeout: float = 30.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._address = address
        self._env = os.environ if env is None else env
        self._call_timeout = call_timeout
        self._lock = threading.Lock()
        self._session: ManagerSession | None = None

    def __enter__(self) -> UserManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _core(self) -> ManagerSession:
        """The session of the current connection; connects when there is none or it is lost."""
        with self._lock:
            if self._session is None or self._session.lost:
                if self._session is not None:
                    self._session.close()  # the socket of the lost connection
                    self._session = None
                address = self._address or resolve_bus_address(self._env)
                try:
                    conn = Connection.open(address, self._call_timeout)
                except Exception as exc:
                    raise translate_connect_error(exc, address) from exc
                self._session = ManagerSession(conn, self._call_timeout)
            return self._session

    def close(self) -> None:
        """Disconnect, which drops this process's ``AddRef`` references."""
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def start_transient(self, spec: ServiceSpec, *, wait: bool = True) -> str:
        """Start ``spec`` as a transient unit (job mode ``fail``); return the job's path.

        With ``wait``, return only once the start job finished. A job result other than
        ``done`` raises UnitStartFailed with the unit's result and a journalctl hint, unless
        the main program did run and already ended (a quick ``exit 3``): that is a start,
        and its status is read with :meth:`unit_state` (keep the unit with ``add_ref``).
        A unit of that name that is loaded already raises ConflictError.
        """
        return self._core().start_transient(spec, wait)

    def start_transient_timer(self, spec: TimerSpec) -> str:
        """Start ``spec`` as a transient timer with its service (job mode ``fail``, as
        ``systemd-run --on-active=…``); return once the timer's start job finished. A
        loaded unit of either name raises ConflictError."""
        return self._core().start_transient_timer(spec)

    def start(self, name: str, *, wait: bool = True) -> str:
        """Start a loaded or installed unit (``systemctl --user start``); return the job's
        path. With ``wait``, once the job finished: UnitStartFailed unless it is done."""
        return self._core().start_unit("StartUnit", name, wait)

    def restart(self, name: str, *, wait: bool = True) -> str:
        """Restart the unit, or start it when it is not running (``systemctl --user
        restart``; ``wait=False`` is ``--no-block``)."""
        return self._core().start_unit("RestartUnit", name, wait)

    def is_active(self, name: str) -> bool:
        """Whether the unit is active or reloading (``systemctl --user is-active``'s
        success); a unit that is not loaded is not."""
        state = self._core().unit_state(name)
        return state is not None and state.active_state in ("active", "reloading")

    def unit_state(self, name: str) -> UnitState | None:
        """The unit's current state, or None when the manager has no such unit loaded."""
        return self._core().unit_state(name)

    def properties(self, name: str) -> dict[str, Any]:
        """Every property of the unit's Unit and type interfaces, as plain values.

        For diagnostics and tests (reading back ``MemoryMax``...); callers that act on
        a unit use :meth:`unit_state`. Raises NotFoundError for an unknown unit.
        """
        props = self._core().merged_properties(name)
        if props is None:
            raise NotFoundError(
                f"no unit {name}",
                hint="'systemctl --user list-units --all' lists the units there are",
            )
        return props

    def wait_inactive(self, name: str, timeout: float | None = None) -> UnitState:
        """Block until the unit is inactive or failed (or unloaded); return its final state.

        Subscribes to the unit's changes before reading its state, so an end between the
        two is not missed. Raises NotFoundError for an unknown unit and UnitStillActive
        after ``timeout`` seconds.
        """
        return self._core().wait_inactive(name, timeout)

    def stop(self, name: str, timeout: float | None = None) -> UnitState | None:
        """Stop the unit and wait for the stop job; return its state (None if collected).

        The unit's own ``TimeoutStopUSec`` escalates to SIGKILL; ``timeout`` (seconds,
        like ``docker stop -t``) kills all its processes earlier if its main process
        still runs by then.
        """
        return self._core().stop(name, timeout)

    def kill(self, name: str, signum: int, whom: KillWhom = KillWhom.MAIN) -> None:
        """Send ``signum`` to the unit's main process, control process or all processes."""
        self._core().kill(name, signum, whom)

    def set_properties(self, name: str, props: list[Property]) -> None:
        """Change settings of a running unit (``systemctl --user set-property --runtime``):
        resource limits such as ``MemoryMax``, ``TasksMax``, ``CPUQuotaPerSecUSec``."""
        self._core().set_properties(name, props)

    def reset_failed(self, name: str) -> None:
        """Forget that the unit failed (and reset its start-limit counter)."""
        self._simple("ResetFailedUnit", name, f"can't reset unit {name}")

    def release(self, name: str) -> None:
        """Drop the reference ``ServiceSpec.add_ref`` took, so the unit can be collected."""
        self._simple("UnrefUnit", name, f"can't release unit {name}")

    def freeze(self, name: str) -> None:
        """Freeze every process of the unit (cgroup freezer; ``docker pause``).

        Raises HostError when the host's cgroups can't freeze, ConflictError when the
        unit is not running.
        """
        self._simple("FreezeUnit", name, f"can't freeze unit {name}")

    def thaw(self, name: str) -> None:
        """Thaw a frozen unit (``docker unpause``)."""
        self._simple("ThawUnit", name, f"can't thaw unit {name}")

    def list_units(self, prefix: str) -> list[UnitState]:
        """The states of all loaded units whose names start with ``prefix``, by name."""
        return self._core().list_units(prefix)

    def _simple(self, member: str, name: str, action: str) -> None:
        """Call a Manager method that takes a unit name and returns nothing."""
        hints = {NOT_SUPPORTED: FREEZE_HINT} if member in ("FreezeUnit", "ThawUnit") else None
        self._core().call(member, "s", [name], action=action, unit=name, hints=hints)
