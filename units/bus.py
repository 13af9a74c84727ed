"""Where the user's session bus is, and the translation of D-Bus failures.

Two parts, each small:

- where the session bus is (:func:`resolve_bus_address`) and why it can't be reached
  (:func:`translate_connect_error`), with hints a user can act on;
- D-Bus error names of systemd and the bus daemon → rctlbase errors
  (:func:`translate_dbus_error`), applied where a reply enters.

The connection itself is :mod:`units.connection`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, unquote

from rctlbase.errors import (
    ConflictError,
    ExternalError,
    HostError,
    NotFoundError,
    RctlError,
)
from units.wire import AuthError, InvalidAddressError

SYSTEMD = "org.freedesktop.systemd1"
MANAGER_PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
UNIT = "org.freedesktop.systemd1.Unit"
PROPERTIES = "org.freedesktop.DBus.Properties"
BUS_DAEMON = "org.freedesktop.DBus"

LINGER_HINT = (
    "log in with a real session (ssh or a console, not su/sudo) or enable linger: "
    "loginctl enable-linger $USER"
)
DBUS_SOCKET_HINT = (
    "start the user's D-Bus: systemctl --user start dbus.socket "
    "(install dbus-user-session if the unit is missing)"
)

# Error names of src/libsystemd/sd-bus/bus-common-errors.h and the bus daemon.
_ERROR_CLASSES: Mapping[str, type[RctlError]] = {
    "org.freedesktop.systemd1.NoSuchUnit": NotFoundError,
    "org.freedesktop.systemd1.NoSuchJob": NotFoundError,
    "org.freedesktop.DBus.Error.UnknownObject": NotFoundError,
    "org.freedesktop.systemd1.UnitExists": ConflictError,
    "org.freedesktop.systemd1.UnitInactive": ConflictError,
    # KillUnit of a unit whose main process ended meanwhile ("No main process to kill").
    "org.freedesktop.systemd1.NoSuchProcess": ConflictError,
    "org.freedesktop.systemd1.UnitBusy": ConflictError,
    "org.freedesktop.systemd1.UnitMasked": ConflictError,
    "org.freedesktop.systemd1.JobTypeNotApplicable": ConflictError,
    "org.freedesktop.systemd1.OnlyByDependency": ConflictError,
    "org.freedesktop.systemd1.TransactionIsDestructive": ConflictError,
    "org.freedesktop.systemd1.TransactionJobsConflicting": ConflictError,
    "org.freedesktop.systemd1.TransactionOrderIsCyclic": ConflictError,
    "org.freedesktop.DBus.Error.NotSupported": HostError,
    "org.freedesktop.DBus.Error.ServiceUnknown": HostError,
    "org.freedesktop.DBus.Error.NameHasNoOwner": HostError,
}

_HINTS: Mapping[str, str] = {
    "org.freedesktop.systemd1.UnitExists": (
        "a unit of that name exists: systemctl --user stop {unit}; "
        "systemctl --user reset-failed {unit}"
    ),
    "org.freedesktop.systemd1.UnitInactive": "start it first: it is not running",
    "org.freedesktop.systemd1.UnitBusy": "a job of the unit is running; try again",
    "org.freedesktop.DBus.Error.ServiceUnknown": (
        "the user's systemd manager is not on the session bus: " + LINGER_HINT
    ),
    "org.freedesktop.DBus.Error.NameHasNoOwner": (
        "the user's systemd manager is not on the session bus: " + LINGER_HINT
    ),
    "org.freedesktop.DBus.Error.NoReply": "the manager may be overloaded; try again",
}


def resolve_bus_address(env: Mapping[str, str]) -> str:
    """The session bus address: ``DBUS_SESSION_BUS_ADDRESS``, else ``$XDG_RUNTIME_DIR/bus``.

    Raises HostError when neither is set (no login session and no linger).
    """
    address = env.get("DBUS_SESSION_BUS_ADDRESS", "")
    if address:
        return address
    runtime_dir = env.get("XDG_RUNTIME_DIR", "")
    if not runtime_dir:
        raise HostError(
            "can't find the user's session bus: XDG_RUNTIME_DIR is not set", hint=LINGER_HINT
        )
    # D-Bus addresses %-escape every byte outside [-0-9A-Za-z_/.\*] (D-Bus spec, "Addresses").
    return "unix:path=" + quote(f"{runtime_dir}/bus", safe="/-_.\\*")


def parse_unix_address(address: str) -> str | bytes:
    """The socket of the first ``unix:`` entry of a D-Bus address.

    A ``path=`` gives a filesystem path (str), an ``abstract=`` an abstract socket name
    (bytes starting with NUL). Raises InvalidAddressError when there is no such entry.
    """
    for entry in address.split(";"):
        transport, _, options = entry.partition(":")
        if transport != "unix":
            continue
        for option in options.split(","):
            key, _, value = option.partition("=")
            if key == "path":
                return unquote(value)
            if key == "abstract":
                return b"\0" + unquote(value).encode()
    raise InvalidAddressError(f"no unix:path= or unix:abstract= entry in {address!r}")


def bus_socket_path(address: str) -> str | None:
    """The socket path of the first ``unix:`` entry of a D-Bus address, if it is a path."""
    try:
        target = parse_unix_address(address)
    except InvalidAddressError:
        return None
    return target if isinstance(target, str) else None


def translate_connect_error(exc: BaseException, address: str) -> RctlError:
    """Turn a failure to connect to or authenticate on ``address`` into an RctlError."""
    path = bus_socket_path(address)
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        if path and not Path(path).exists():
            problem = f"{path} does not exist"
        elif path:
            problem = f"{path} refuses connections"
        else:
            problem = f"{address}: {exc}"
        return HostError(
            f"can't connect to the user's session bus: {problem}", hint=DBUS_SOCKET_HINT
        )
    if isinstance(exc, PermissionError):
        return HostError(
            f"can't connect to the session bus at {path or address}: permission denied",
            hint="run rctl as the user who owns the session (not via sudo)",
        )
    if isinstance(exc, AuthError):
        return ExternalError(
            f"the session bus at {address} refused authentication: {exc}",
            hint="is DBUS_SESSION_BUS_ADDRESS another user's bus?",
        )
    if isinstance(exc, InvalidAddressError):
        return HostError(
            f"invalid session bus address {address!r}: {exc}",
            hint="fix or unset DBUS_SESSION_BUS_ADDRESS",
        )
    return ExternalError(
        f"can't connect to the user's session bus at {address}: {exc}",
        hint="is the session bus running? 'systemctl --user status dbus' tells; "
        "a logged-in or lingering user (loginctl enable-linger) has one",
    )


def translate_dbus_error(
    error_name: str,
    text: str,
    action: str,
    *,
    unit: str = "",
    hints: Mapping[str, str] | None = None,
) -> RctlError:
    """Map a D-Bus error reply to an RctlError whose message starts with ``action``.

    ``hints`` (error name → hint) override the default hints; ``{unit}`` is filled in.
    """
    cls = _ERROR_CLASSES.get(error_name, ExternalError)
    chosen = (hints or {}).get(error_name) or _HINTS.get(error_name)
    message = f"{action}: {text}" if text else f"{action}: {error_name}"
    return cls(message, hint=chosen.format(unit=unit or "UNIT") if chosen else None)
