"""A transient timer and the service it starts, as ``StartTransientUnit`` properties.

:class:`TimerSpec` describes a ``.timer`` unit with monotonic triggers (``OnActiveSec=``,
``OnUnitActiveSec=``), its accuracy and its dependencies, and carries the
:class:`~units.properties.ServiceSpec` of the service of the same name that it starts:
the manager creates both in one ``StartTransientUnit`` call, the service as an auxiliary
unit. :func:`plan_timer_properties` is the pure translation, with the names and
signatures ``systemd-run --on-active=… --timer-property=…`` sends (src/run/run.c and
src/shared/bus-unit-util.c of systemd 252: ``TimersMonotonic`` ``a(st)`` whose bases are
the unit-file names ``OnActiveSec``…, which the manager's timer_base_from_string() reads,
with microseconds). systemd 252 refuses ``RemainAfterElapsed`` on a transient timer (newer
systemd-run sends it): rctl's timers repeat and end with the unit they are bound to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rctlbase.errors import UsageError
from units.properties import (
    INFINITY,
    CollectMode,
    Property,
    ServiceSpec,
    check_unit_name,
    plan_properties,
)
from units.unitfile import unit_name_problem

_HINT = "this is a bug in rctl's timer settings; run with --debug and report it"


@dataclass(frozen=True, slots=True)
class TimerSpec:
    """A transient ``.timer`` unit and its service, validated on construction.

    Durations are microseconds; ``None`` leaves a trigger out. ``binds_to`` and ``after``
    name units the timer stops with and is ordered after (``BindsTo=``, ``After=``).
    """

    name: str
    service: ServiceSpec
    description: str = ""
    on_active_usec: int | None = None
    on_unit_active_usec: int | None = None
    accuracy_usec: int | None = None
    binds_to: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    collect_mode: CollectMode | None = None

    def __post_init__(self) -> None:
        check_unit_name("name", self.name, ".timer")
        if self.service.name != self.name.removesuffix(".timer") + ".service":
            # A timer starts the service of its own name unless told otherwise (Unit=).
            raise UsageError(
                f"service: {self.service.name} is not the service of {self.name}", hint=_HINT
            )
        for what in ("on_active_usec", "on_unit_active_usec", "accuracy_usec"):
            value = getattr(self, what)
            if value is not None and not 0 <= value <= INFINITY:
                raise UsageError(f"{what}: {value} is out of range", hint=_HINT)
        if self.on_active_usec is None and self.on_unit_active_usec is None:
            raise UsageError("the timer has no trigger", hint=_HINT)
        for unit in (*self.binds_to, *self.after):
            if unit_name_problem(unit) is not None:
                raise UsageError(f"binds_to/after: {unit!r} is not a unit name", hint=_HINT)
        service = self.service
        if (service.stdin_fd, service.stdout_fd, service.stderr_fd) != (None, None, None):
            # Descriptors travel with the call; the manager hands them to the unit started
            # now, not to a service a timer starts later.
            raise UsageError("service: a timer's service takes no descriptors", hint=_HINT)


def plan_timer_properties(spec: TimerSpec) -> list[Property]:
    """The timer's ``StartTransientUnit`` properties, in a stable order."""
    props: list[Property] = []

    def add(name: str, signature: str, value: Any, when: bool = True) -> None:
        if when:
            props.append((name, (signature, value)))

    add("Description", "s", spec.description, bool(spec.description))
    triggers = [
        [name, usec]
        for name, usec in (
            ("OnActiveSec", spec.on_active_usec),
            ("OnUnitActiveSec", spec.on_unit_active_usec),
        )
        if usec is not None
    ]
    add("TimersMonotonic", "a(st)", triggers)
    add("AccuracyUSec", "t", spec.accuracy_usec, spec.accuracy_usec is not None)
    add("BindsTo", "as", list(spec.binds_to), bool(spec.binds_to))
    add("After", "as", list(spec.after), bool(spec.after))
    add("CollectMode", "s", str(spec.collect_mode), spec.collect_mode is not None)
    return props


def plan_timer_units(spec: TimerSpec) -> tuple[list[Property], list[tuple[str, list[Property]]]]:
    """The timer's properties and its auxiliary service's, as ``StartTransientUnit`` takes
    them (``a(sv)`` and ``a(sa(sv))``)."""
    return plan_timer_properties(spec), [(spec.service.name, plan_properties(spec.service))]
