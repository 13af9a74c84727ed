"""A :class:`~units.properties.ServiceSpec` as the lines of a unit file (pure).

A transient unit gets its settings as the D-Bus properties of
:func:`~units.properties.plan_properties`; a generated unit file must say the same. So the
file is rendered from those very properties, not from the spec's fields a second time: each
property becomes the unit-file setting systemd documents for it (systemd.service(5),
systemd.unit(5), systemd.kill(5), systemd.exec(5), systemd.resource-control(5)). Where the
names or units differ the file's are used: ``TimeoutStopUSec`` microseconds become
``TimeoutStopSec=`` (a plain number is seconds), ``CPUQuotaPerSecUSec`` becomes a
``CPUQuota=`` percentage, and ``StartLimit*`` goes to ``[Unit]``.

The properties only a bus client can send (``Std*FileDescriptor``, which pass a descriptor,
and ``AddRef``, which ties the unit to the client's connection) have no unit-file form: a
spec holding one is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rctlbase.errors import UsageError
from units.properties import INFINITY, RESOURCE_SETTINGS, ServiceSpec, plan_properties
from units.unitfile import Value, Verbatim, quote_argv, quote_word

USEC = 1_000_000
_RESOURCE_KEYS = {s.property: s.key for s in RESOURCE_SETTINGS}
# [Unit] settings; every other property is a [Service] one.
_UNIT_SECTION = frozenset(
    {"Description", "StartLimitBurst", "StartLimitIntervalUSec", "BindsTo", "After"}
)
_BUS_ONLY = frozenset(
    {
        "StandardInputFileDescriptor",
        "StandardOutputFileDescriptor",
        "StandardErrorFileDescriptor",
        "AddRef",
    }
)

Line = tuple[str, Value]


@dataclass(frozen=True, slots=True)
class UnitLines:
    """The ``[Unit]`` and ``[Service]`` settings of a spec, in plan_properties' order."""

    unit: tuple[Line, ...]
    service: tuple[Line, ...]


def duration_text(usec: int) -> str:
    """A ``*Sec=`` value: ``infinity``, whole minutes (``15min``), seconds (a plain number,
    systemd's default unit), else milliseconds or microseconds (systemd.time(7))."""
    if usec == INFINITY:
        return "infinity"
    if usec % USEC:
        return f"{usec // 1000}ms" if usec % 1000 == 0 else f"{usec}us"
    seconds = usec // USEC
    return f"{seconds // 60}min" if seconds >= 60 and seconds % 60 == 0 else str(seconds)


def _amount(value: int) -> str:
    return "infinity" if value == INFINITY else str(value)


def _percent(usec_per_sec: int) -> Verbatim:
    # CPUQuota= does not expand specifiers: its '%' is written as it is.
    return Verbatim(f"{usec_per_sec / 10_000:g}%")


def _assignment(text: str) -> Verbatim:
    # Environment= and LogExtraFields= split words on spaces and unquote them, expand
    # specifiers but not variables.
    return Verbatim(quote_word(text, variables=False))


def _lines(name: str, signature: str, value: Any) -> list[Line]:
    if name in _BUS_ONLY:
        raise UsageError(
            f"{name} cannot be written in a unit file",
            hint="a descriptor or a client's reference goes over the bus only",
        )
    key = _RESOURCE_KEYS.get(name) or (
        name.removesuffix("USec") + "Sec" if name.endswith("USec") else name
    )
    values: list[Value]
    if signature == "a(sasb)":  # ExecStart=, ExecStopPost=: "-" ignores a failure
        values = [Verbatim(("-" if fail else "") + quote_argv(argv).text)
                  for _, argv, fail in value]  # fmt: skip
    elif name in ("BindsTo", "After"):
        values = [" ".join(value)]
    elif name in ("Environment", "LogExtraFields"):
        values = [_assignment(v.decode() if isinstance(v, bytes) else v) for v in value]
    elif name == "CPUQuotaPerSecUSec":
        values = [_percent(value)]
    elif name == "AllowedCPUs":  # the bus's mask; the file takes a list of CPUs
        values = [" ".join(str(i) for i in range(len(value) * 8) if value[i // 8] >> i % 8 & 1)]
    elif name in _RESOURCE_KEYS:
        values = [_amount(value)]
    elif name.endswith("USec"):
        values = [duration_text(value)]
    elif signature == "b":
        values = ["yes" if value else "no"]
    else:
        values = [str(value)]
    return [(key, v) for v in values]


def render_service(spec: ServiceSpec) -> UnitLines:
    """``spec``'s settings as unit-file lines: what :func:`plan_properties` sends, said the
    way a unit file says it (UsageError for a bus-only property)."""
    unit: list[Line] = []
    service: list[Line] = []
    for name, (signature, value) in plan_properties(spec):
        (unit if name in _UNIT_SECTION else service).extend(_lines(name, signature, value))
    return UnitLines(tuple(unit), tuple(service))
