"""What the service manager says about a unit, as a typed value.

:class:`UnitState` is read from the D-Bus properties of a unit (the ``Unit`` interface and,
for services, the ``Service`` interface; see org.freedesktop.systemd1(5)).
:func:`parse_unit_state` is the pure translation, :func:`unit_object_path` the pure
name → object path rule, both unit-tested without a bus.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# si_code values of waitid(2) that systemd reports as ExecMainCode (see siginfo.h).
CLD_EXITED = 1
CLD_KILLED = 2
CLD_DUMPED = 3

# systemd's own exit statuses for a failure while setting up a process, before its
# program ran (systemd.exec(5), "Process Exit Codes": 200 EXIT_CHDIR ... 245 EXIT_BPF).
SETUP_FAILURE_STATUSES = range(200, 246)

# ActiveState values in which no process of the unit runs or is about to be started.
ENDED_STATES = frozenset({"inactive", "failed"})

UNIT_PATH_PREFIX = "/org/freedesktop/systemd1/unit/"


@dataclass(frozen=True, slots=True)
class UnitState:
    """A unit's state at one moment.

    ``result`` is the service's ``Result`` (``success``, ``exit-code``, ``signal``,
    ``timeout``, ``start-limit-hit``...), empty for units that are not services.
    ``exec_main_code``/``exec_main_status`` describe how the main process ended:
    code CLD_EXITED with the exit status, or CLD_KILLED/CLD_DUMPED with the signal
    number; code 0 means it has not ended (or never ran).
    """

    name: str
    load_state: str
    active_state: str
    sub_state: str
    description: str = ""
    freezer_state: str = ""
    result: str = ""
    main_pid: int = 0
    exec_main_code: int = 0
    exec_main_status: int = 0
    n_restarts: int = 0
    invocation_id: str = ""
    control_group: str = ""
    active_enter_usec: int = 0
    inactive_enter_usec: int = 0
    exec_main_start_usec: int = 0
    exec_main_exit_usec: int = 0

    @property
    def ended(self) -> bool:
        """No process of the unit runs and none is about to start (inactive or failed)."""
        return self.active_state in ENDED_STATES

    @property
    def main_ran(self) -> bool:
        """Whether the main program got executed (it may have ended since): it runs, was
        killed, or exited with a status that is not one of systemd's setup failures."""
        if self.main_pid > 0 or self.exec_main_code in (CLD_KILLED, CLD_DUMPED):
            return True
        return (
            self.exec_main_code == CLD_EXITED
            and self.exec_main_status not in SETUP_FAILURE_STATUSES
        )

    @property
    def exit_status(self) -> int | None:
        """The main process's status the way a shell reports it: its exit status, or
        128 + the signal that killed it; None when it has not ended."""
        if self.exec_main_code == CLD_EXITED:
            return self.exec_main_status
        if self.exec_main_code in (CLD_KILLED, CLD_DUMPED):
            return 128 + self.exec_main_status
        return None


def parse_unit_state(name: str, props: Mapping[str, Any]) -> UnitState:
    """Build a UnitState from the merged properties of a unit's interfaces.

    Missing properties take neutral defaults, so a partial set (e.g. what
    PropertiesChanged signals carried before the unit was collected) still parses.
    """

    def integer(key: str) -> int:
        value = props.get(key, 0)
        return value if isinstance(value, int) else 0

    def text(key: str) -> str:
        value = props.get(key, "")
        return value if isinstance(value, str) else ""

    invocation = props.get("InvocationID", b"")
    return UnitState(
        name=text("Id") or name,
        load_state=text("LoadState"),
        active_state=text("ActiveState"),
        sub_state=text("SubState"),
        description=text("Description"),
        freezer_state=text("FreezerState"),
        result=text("Result"),
        main_pid=integer("MainPID"),
        exec_main_code=integer("ExecMainCode"),
        exec_main_status=integer("ExecMainStatus"),
        n_restarts=integer("NRestarts"),
        invocation_id=bytes(invocation).hex() if isinstance(invocation, bytes | list) else "",
        control_group=text("ControlGroup"),
        active_enter_usec=integer("ActiveEnterTimestamp"),
        inactive_enter_usec=integer("InactiveEnterTimestamp"),
        exec_main_start_usec=integer("ExecMainStartTimestamp"),
        exec_main_exit_usec=integer("ExecMainExitTimestamp"),
    )


def unit_object_path(name: str) -> str:
    """The object path of unit ``name``, as systemd's bus_label_escape() makes it.

    ASCII letters stay, and digits except in the first place; every other byte becomes
    ``_`` and two lower-case hex digits (``rctl-web.service`` → ``.../rctl_2dweb_2eservice``).
    """
    label = "".join(
        chr(b) if (65 <= b <= 90 or 97 <= b <= 122) or (i > 0 and 48 <= b <= 57) else f"_{b:02x}"
        for i, b in enumerate(os.fsencode(name))
    )
    return UNIT_PATH_PREFIX + (label or "_")


def interface_of(name: str) -> str | None:
    """The type-specific D-Bus interface of a unit (``....Service`` for ``x.service``)."""
    kind = name.rpartition(".")[2]
    known = {"service", "socket", "target", "device", "mount", "automount", "swap", "timer"}
    known |= {"path", "slice", "scope"}
    return f"org.freedesktop.systemd1.{kind.capitalize()}" if kind in known else None
