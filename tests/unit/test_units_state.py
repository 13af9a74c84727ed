"""units.state: reading a unit's D-Bus properties into UnitState, object paths."""

from __future__ import annotations

import pytest

from units.state import UnitState, interface_of, parse_unit_state, unit_object_path


def test_parse_a_service_that_exited_with_status_3() -> None:
    props = {
        "Id": "rctl-web.service",
        "LoadState": "loaded",
        "ActiveState": "failed",
        "SubState": "failed",
        "Description": "web",
        "FreezerState": "running",
        "Result": "exit-code",
        "MainPID": 0,
        "ExecMainCode": 1,
        "ExecMainStatus": 3,
        "NRestarts": 2,
        "InvocationID": bytes.fromhex("0011223344556677889900aabbccddeeff"[:32]),
        "ControlGroup": "/user.slice/x",
        "ActiveEnterTimestamp": 10,
        "InactiveEnterTimestamp": 20,
        "ExecMainStartTimestamp": 11,
        "ExecMainExitTimestamp": 19,
        "MemoryMax": 2**64 - 1,  # others are ignored
    }
    state = parse_unit_state("rctl-web.service", props)
    assert state == UnitState(
        name="rctl-web.service",
        load_state="loaded",
        active_state="failed",
        sub_state="failed",
        description="web",
        freezer_state="running",
        result="exit-code",
        main_pid=0,
        exec_main_code=1,
        exec_main_status=3,
        n_restarts=2,
        invocation_id="0011223344556677889900aabbccddee",
        control_group="/user.slice/x",
        active_enter_usec=10,
        inactive_enter_usec=20,
        exec_main_start_usec=11,
        exec_main_exit_usec=19,
    )
    assert state.ended
    assert state.exit_status == 3


def test_partial_properties_parse_with_neutral_defaults() -> None:
    state = parse_unit_state("a.service", {"ActiveState": "active", "MainPID": 42})
    assert state.name == "a.service"
    assert state.active_state == "active"
    assert state.main_pid == 42
    assert state.result == ""
    assert state.invocation_id == ""
    assert not state.ended
    assert state.exit_status is None


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [(0, 0, None), (1, 0, 0), (1, 203, 203), (2, 9, 137), (3, 11, 139)],
)
def test_exit_status_like_a_shell(code: int, status: int, expected: int | None) -> None:
    state = UnitState(
        "a.service", "loaded", "inactive", "dead", exec_main_code=code, exec_main_status=status
    )
    assert state.exit_status == expected


@pytest.mark.parametrize(
    ("active", "ended"),
    [
        ("inactive", True),
        ("failed", True),
        ("active", False),
        ("activating", False),
        ("deactivating", False),
        ("reloading", False),
    ],
)
def test_ended_states(active: str, ended: bool) -> None:
    assert UnitState("a.service", "loaded", active, "x").ended is ended


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("rctl-web.service", "rctl_2dweb_2eservice"),
        ("dbus.service", "dbus_2eservice"),
        ("a1@b:c\\d.service", "a1_40b_3ac_5cd_2eservice"),
        ("1x.service", "_31x_2eservice"),
        ("", "_"),
    ],
)
def test_unit_object_path_escapes_like_systemd(name: str, path: str) -> None:
    assert unit_object_path(name) == "/org/freedesktop/systemd1/unit/" + path


def test_interface_of_unit_types() -> None:
    assert interface_of("a.service") == "org.freedesktop.systemd1.Service"
    assert interface_of("a.scope") == "org.freedesktop.systemd1.Scope"
    assert interface_of("a.slice") == "org.freedesktop.systemd1.Slice"
    assert interface_of("a.bogus") is None


@pytest.mark.parametrize(
    ("pid", "code", "status", "ran"),
    [
        (7, 0, 0, True),  # running
        (0, 1, 0, True),
        (0, 1, 3, True),
        (0, 1, 199, True),
        (0, 1, 203, False),  # EXIT_EXEC: the program was not found or not executable
        (0, 1, 200, False),  # EXIT_CHDIR
        (0, 1, 245, False),  # EXIT_BPF
        (0, 1, 246, True),
        (0, 2, 9, True),
        (0, 3, 11, True),
        (0, 0, 0, False),  # never forked
    ],
)
def test_main_ran(pid: int, code: int, status: int, ran: bool) -> None:
    state = UnitState(
        "a.service",
        "loaded",
        "failed",
        "failed",
        main_pid=pid,
        exec_main_code=code,
        exec_main_status=status,
    )
    assert state.main_ran is ran
