"""units.bus and the connection side of units.manager: addresses, error translation."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from dbus_fast import AuthError

from rctlbase.errors import ConflictError, ExternalError, HostError, NotFoundError
from units.bus import (
    bus_socket_path,
    resolve_bus_address,
    translate_connect_error,
    translate_dbus_error,
)
from units.manager import UserManager


def test_address_from_the_environment_wins() -> None:
    env = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/x/bus", "XDG_RUNTIME_DIR": "/run/user/1"}
    assert resolve_bus_address(env) == "unix:path=/x/bus"


def test_address_falls_back_to_the_runtime_dir() -> None:
    assert resolve_bus_address({"XDG_RUNTIME_DIR": "/run/user/1000"}) == (
        "unix:path=/run/user/1000/bus"
    )
    # Bytes outside the D-Bus "optionally escaped" set are %-escaped.
    assert resolve_bus_address({"XDG_RUNTIME_DIR": "/run/a b,c"}) == (
        "unix:path=/run/a%20b%2Cc/bus"
    )


def test_no_runtime_dir_hints_at_linger() -> None:
    with pytest.raises(HostError) as caught:
        resolve_bus_address({"DBUS_SESSION_BUS_ADDRESS": ""})
    assert "XDG_RUNTIME_DIR" in caught.value.message
    assert caught.value.hint is not None
    assert "loginctl enable-linger" in caught.value.hint


def test_bus_socket_path() -> None:
    assert bus_socket_path("unix:path=/run/a%20b/bus") == "/run/a b/bus"
    assert bus_socket_path("tcp:host=x;unix:guid=1,path=/s") == "/s"
    assert bus_socket_path("unix:abstract=/tmp/dbus-x") is None


def test_missing_socket_hints_at_dbus_socket(tmp_path: Path) -> None:
    address = f"unix:path={tmp_path}/bus"
    error = translate_connect_error(FileNotFoundError(2, "nope"), address)
    assert isinstance(error, HostError)
    assert f"{tmp_path}/bus does not exist" in error.message
    assert error.hint is not None
    assert "systemctl --user start dbus.socket" in error.hint
    assert "dbus-user-session" in error.hint


def test_other_connect_failures() -> None:
    assert isinstance(translate_connect_error(PermissionError(), "unix:path=/x"), HostError)
    assert isinstance(translate_connect_error(AuthError("no"), "unix:path=/x"), ExternalError)
    assert isinstance(translate_connect_error(OSError("boom"), "unix:path=/x"), ExternalError)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("org.freedesktop.systemd1.NoSuchUnit", NotFoundError),
        ("org.freedesktop.DBus.Error.UnknownObject", NotFoundError),
        ("org.freedesktop.systemd1.UnitExists", ConflictError),
        ("org.freedesktop.systemd1.UnitInactive", ConflictError),
        ("org.freedesktop.systemd1.TransactionIsDestructive", ConflictError),
        ("org.freedesktop.DBus.Error.NotSupported", HostError),
        ("org.freedesktop.DBus.Error.ServiceUnknown", HostError),
        ("org.freedesktop.DBus.Error.InvalidArgs", ExternalError),
        ("com.example.Whatever", ExternalError),
    ],
)
def test_dbus_errors_map_to_rctl_errors(name: str, cls: type[Exception]) -> None:
    error = translate_dbus_error(name, "the text", "can't do it")
    assert type(error) is cls
    assert error.message == "can't do it: the text"


def test_unit_exists_hint_names_the_unit() -> None:
    error = translate_dbus_error(
        "org.freedesktop.systemd1.UnitExists", "Unit x exists", "can't start", unit="x.service"
    )
    assert error.hint is not None
    assert "systemctl --user reset-failed x.service" in error.hint


def test_hints_can_be_overridden_per_error_name() -> None:
    error = translate_dbus_error(
        "org.freedesktop.DBus.Error.NotSupported",
        "",
        "can't freeze",
        hints={"org.freedesktop.DBus.Error.NotSupported": "use cgroup v2"},
    )
    assert error.hint == "use cgroup v2"
    assert error.message == "can't freeze: org.freedesktop.DBus.Error.NotSupported"


def test_manager_without_a_bus_socket_is_a_host_error(tmp_path: Path) -> None:
    with (
        UserManager(env={"XDG_RUNTIME_DIR": str(tmp_path)}) as manager,
        pytest.raises(HostError) as caught,
    ):
        manager.unit_state("x.service")
    assert "does not exist" in caught.value.message


def test_manager_with_a_dead_bus_socket_is_a_host_error(tmp_path: Path) -> None:
    path = tmp_path / "bus"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))  # bound but never listening: connect() is refused
        with UserManager(f"unix:path={path}") as manager, pytest.raises(HostError) as caught:
            manager.list_units("rctl-")
    assert "refuses connections" in caught.value.message


def test_manager_without_runtime_dir_is_a_host_error() -> None:
    with UserManager(env={}) as manager, pytest.raises(HostError) as caught:
        manager.unit_state("x.service")
    assert caught.value.hint is not None
    assert "enable-linger" in caught.value.hint
