"""The user's systemd service manager, driven over D-Bus: transient units and their states.

:class:`UserManager` is a synchronous facade (the engine and the CLI are synchronous) over
dbus-fast's asyncio ``MessageBus``. The bus runs on a private event loop in a daemon thread
(:class:`~units.bus.LoopThread`), connected on first use and kept for the facade's
lifetime. One long-lived connection rather than ``asyncio.run`` per call — connecting is
cheap (socket, SASL, ``Hello``: about 1 ms in the test host; a warm call 0.3 ms), but:

- signal subscriptions survive between calls, so ``start_transient`` followed by
  ``wait_inactive`` can't miss the unit's end;
- ``AddRef`` references belong to the connection: a unit started with ``add_ref`` stays
  loaded (its exit status readable) until :meth:`UserManager.release` or until this
  process's connection closes, even with ``CollectMode=inactive-or-failed``;
- it also works when the caller runs an asyncio loop of its own (the REST API).

Collecting ended units: rctl starts its units with ``collect_mode=inactive-or-failed``
so that neither a clean exit nor a failure leaves a unit behind (a name can then be reused
at once), and with ``add_ref`` when it follows the unit to its end (``rctl run`` attached,
``--rm``) so the result is still readable when the end is reported.

The asyncio side (the connection, calls, signals, error translation) is
:mod:`units.asyncmanager`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from rctlbase.errors import NotFoundError
from units.asyncmanager import AsyncManager, KillWhom, UnitStartFailed, UnitStillActive
from units.bus import LoopThread, resolve_bus_address
from units.properties import ServiceSpec
from units.state import UnitState

__all__ = ["KillWhom", "UnitStartFailed", "UnitStillActive", "UserManager"]

T = TypeVar("T")

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
        self._thread: LoopThread | None = None
        self._core: AsyncManager | None = None

    def __enter__(self) -> UserManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, use: Callable[[AsyncManager], Coroutine[Any, Any, T]]) -> T:
        if self._thread is None:
            self._thread = LoopThread()
        if self._core is None or not self._core.bus.connected:
            address = self._address or resolve_bus_address(self._env)
            self._core = self._thread.run(AsyncManager.connect(address, self._call_timeout))
        return self._thread.run(use(self._core))

    def close(self) -> None:
        """Disconnect (dropping ``AddRef`` references) and stop the loop thread."""
        if self._thread is None:
            return
        if self._core is not None:
            self._thread.run(self._core.close())
            self._core = None
        self._thread.close()
        self._thread = None

    def start_transient(self, spec: ServiceSpec, *, wait: bool = True) -> str:
        """Start ``spec`` as a transient unit (job mode ``fail``); return the job's path.

        With ``wait``, return only once the start job finished. A job result other than
        ``done`` raises UnitStartFailed with the unit's result and a journalctl hint, unless
        the main program did run and already ended (a quick ``exit 3``): that is a start,
        and its status is read with :meth:`unit_state` (keep the unit with ``add_ref``).
        A unit of that name that is loaded already raises ConflictError.
        """
        return self._run(lambda core: core.start_transient(spec, wait))

    def unit_state(self, name: str) -> UnitState | None:
        """The unit's current state, or None when the manager has no such unit loaded."""
        return self._run(lambda core: core.unit_state(name))

    def properties(self, name: str) -> dict[str, Any]:
        """Every property of the unit's Unit and type interfaces, as plain values.

        For diagnostics and tests (reading back ``MemoryMax``...); callers that act on
        a unit use :meth:`unit_state`. Raises NotFoundError for an unknown unit.
        """

        async def read(core: AsyncManager) -> dict[str, Any]:
            props = await core.merged_properties(name)
            if props is None:
                raise NotFoundError(f"no unit {name}")
            return props

        return self._run(read)

    def wait_inactive(self, name: str, timeout: float | None = None) -> UnitState:
        """Block until the unit is inactive or failed (or unloaded); return its final state.

        Subscribes to the unit's changes before reading its state, so an end between the
        two is not missed. Raises NotFoundError for an unknown unit and UnitStillActive
        after ``timeout`` seconds.
        """
        return self._run(lambda core: core.wait_inactive(name, timeout))

    def stop(self, name: str, timeout: float | None = None) -> UnitState | None:
        """Stop the unit and wait for the stop job; return its state (None if collected).

        The unit's own ``TimeoutStopUSec`` escalates to SIGKILL; ``timeout`` (seconds,
        like ``docker stop -t``) kills all its processes earlier if its main process
        still runs by then.
        """
        return self._run(lambda core: core.stop(name, timeout))

    def kill(self, name: str, signum: int, whom: KillWhom = KillWhom.MAIN) -> None:
        """Send ``signum`` to the unit's main process, control process or all processes."""
        self._run(lambda core: core.kill(name, signum, whom))

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
        return self._run(lambda core: core.list_units(prefix))

    def _simple(self, member: str, name: str, action: str) -> None:
        """Call a Manager method that takes a unit name and returns nothing."""
        hints = {NOT_SUPPORTED: FREEZE_HINT} if member in ("FreezeUnit", "ThawUnit") else None

        async def call(core: AsyncManager) -> None:
            await core.call(member, "s", [name], action=action, unit=name, hints=hints)

        self._run(call)
