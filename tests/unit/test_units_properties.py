"""units.properties: ServiceSpec validation and the exact StartTransientUnit properties."""

from __future__ import annotations

import signal
from dataclasses import FrozenInstanceError, replace
from typing import Any

import pytest

from rctlbase.errors import UsageError
from units.properties import (
    USEC_INFINITY,
    CollectMode,
    ExecCommand,
    KillMode,
    RestartPolicy,
    ServiceSpec,
    ServiceType,
    StartLimit,
    plan_properties,
    split_fds,
)

MINIMAL = ServiceSpec(name="rctl-web.service", exec_start=("/usr/bin/crun", "run", "web"))

FULL = ServiceSpec(
    name="rctl-web.service",
    exec_start=("/usr/bin/crun", "run", "--bundle", "/run/user/1000/rctl/web", "web"),
    description="rctl container web",
    service_type=ServiceType.NOTIFY,
    pid_file="/run/user/1000/rctl/web/pid",
    environment={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    working_directory="/var/lib/rctl",
    exec_stop_post=(
        ExecCommand(("/usr/bin/rctl", "cleanup", "web"), ignore_failure=True),
        ExecCommand(("true",)),
    ),
    restart=RestartPolicy.ON_FAILURE,
    restart_usec=100_000,
    start_limit=StartLimit.max_restarts(3),
    timeout_start_usec=90_000_000,
    timeout_stop_usec=10_000_000,
    remain_after_exit=True,
    kill_mode=KillMode.MIXED,
    kill_signal=signal.SIGINT,
    send_sighup=True,
    delegate=True,
    slice="rctl.slice",
    memory_max=512 * 2**20,
    memory_swap_max=0,
    cpu_quota_per_sec_usec=1_500_000,
    cpu_weight=200,
    tasks_max=USEC_INFINITY,
    syslog_identifier="rctl-web",
    log_extra_fields={"CONTAINER_NAME": "web", "CONTAINER_ID": "abc123", "IMAGE_NAME": "busybox"},
    stdin_fd=7,
    stdout_fd=8,
    stderr_fd=8,
    collect_mode=CollectMode.INACTIVE_OR_FAILED,
    add_ref=True,
)

FULL_PROPERTIES: list[tuple[str, tuple[str, Any]]] = [
    ("Description", ("s", "rctl container web")),
    ("Type", ("s", "notify")),
    ("PIDFile", ("s", "/run/user/1000/rctl/web/pid")),
    (
        "ExecStart",
        (
            "a(sasb)",
            [
                [
                    "/usr/bin/crun",
                    ["/usr/bin/crun", "run", "--bundle", "/run/user/1000/rctl/web", "web"],
                    False,
                ]
            ],
        ),
    ),
    (
        "ExecStopPost",
        (
            "a(sasb)",
            [
                ["/usr/bin/rctl", ["/usr/bin/rctl", "cleanup", "web"], True],
                ["true", ["true"], False],
            ],
        ),
    ),
    ("Environment", ("as", ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"])),
    ("WorkingDirectory", ("s", "/var/lib/rctl")),
    ("Restart", ("s", "on-failure")),
    ("RestartUSec", ("t", 100_000)),
    ("StartLimitBurst", ("u", 4)),
    ("StartLimitIntervalUSec", ("t", 2**64 - 1)),
    ("TimeoutStartUSec", ("t", 90_000_000)),
    ("TimeoutStopUSec", ("t", 10_000_000)),
    ("RemainAfterExit", ("b", True)),
    ("KillMode", ("s", "mixed")),
    ("KillSignal", ("i", 2)),
    ("SendSIGHUP", ("b", True)),
    ("Delegate", ("b", True)),
    ("Slice", ("s", "rctl.slice")),
    ("MemoryMax", ("t", 536_870_912)),
    ("MemorySwapMax", ("t", 0)),
    ("CPUQuotaPerSecUSec", ("t", 1_500_000)),
    ("CPUWeight", ("t", 200)),
    ("TasksMax", ("t", 2**64 - 1)),
    ("SyslogIdentifier", ("s", "rctl-web")),
    (
        "LogExtraFields",
        ("aay", [b"CONTAINER_NAME=web", b"CONTAINER_ID=abc123", b"IMAGE_NAME=busybox"]),
    ),
    ("StandardInputFileDescriptor", ("h", 7)),
    ("StandardOutputFileDescriptor", ("h", 8)),
    ("StandardErrorFileDescriptor", ("h", 8)),
    ("CollectMode", ("s", "inactive-or-failed")),
    ("AddRef", ("b", True)),
]


def test_every_property_of_a_full_spec() -> None:
    assert plan_properties(FULL) == FULL_PROPERTIES


def test_a_minimal_spec_sends_only_the_command_type_and_restart() -> None:
    assert plan_properties(MINIMAL) == [
        ("Type", ("s", "exec")),
        (
            "ExecStart",
            ("a(sasb)", [["/usr/bin/crun", ["/usr/bin/crun", "run", "web"], False]]),
        ),
        ("Restart", ("s", "no")),
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"description": "web"}, ("Description", ("s", "web"))),
        ({"service_type": ServiceType.ONESHOT}, ("Type", ("s", "oneshot"))),
        ({"pid_file": "/run/x.pid"}, ("PIDFile", ("s", "/run/x.pid"))),
        ({"environment": {"A": "b=c"}}, ("Environment", ("as", ["A=b=c"]))),
        ({"working_directory": "/srv"}, ("WorkingDirectory", ("s", "/srv"))),
        ({"restart": RestartPolicy.ALWAYS}, ("Restart", ("s", "always"))),
        ({"restart_usec": 5}, ("RestartUSec", ("t", 5))),
        ({"timeout_start_usec": 6}, ("TimeoutStartUSec", ("t", 6))),
        ({"timeout_stop_usec": 7}, ("TimeoutStopUSec", ("t", 7))),
        ({"remain_after_exit": True}, ("RemainAfterExit", ("b", True))),
        ({"kill_mode": KillMode.PROCESS}, ("KillMode", ("s", "process"))),
        ({"kill_signal": 15}, ("KillSignal", ("i", 15))),
        ({"send_sighup": True}, ("SendSIGHUP", ("b", True))),
        ({"delegate": True}, ("Delegate", ("b", True))),
        ({"slice": "a-b.slice"}, ("Slice", ("s", "a-b.slice"))),
        ({"memory_max": 1024}, ("MemoryMax", ("t", 1024))),
        ({"memory_swap_max": 2048}, ("MemorySwapMax", ("t", 2048))),
        ({"cpu_quota_per_sec_usec": 250_000}, ("CPUQuotaPerSecUSec", ("t", 250_000))),
        ({"cpu_weight": 1}, ("CPUWeight", ("t", 1))),
        ({"tasks_max": 100}, ("TasksMax", ("t", 100))),
        ({"syslog_identifier": "x"}, ("SyslogIdentifier", ("s", "x"))),
        ({"log_extra_fields": {"K": "v w"}}, ("LogExtraFields", ("aay", [b"K=v w"]))),
        ({"stdin_fd": 0}, ("StandardInputFileDescriptor", ("h", 0))),
        ({"stdout_fd": 1}, ("StandardOutputFileDescriptor", ("h", 1))),
        ({"stderr_fd": 2}, ("StandardErrorFileDescriptor", ("h", 2))),
        ({"collect_mode": CollectMode.INACTIVE}, ("CollectMode", ("s", "inactive"))),
        ({"add_ref": True}, ("AddRef", ("b", True))),
    ],
)
def test_each_field_becomes_its_property(change: dict[str, Any], expected: Any) -> None:
    props = plan_properties(replace(MINIMAL, **change))
    assert expected in props
    # Exactly one property of that name, and nothing besides the always-sent ones.
    assert [name for name, _ in props].count(expected[0]) == 1
    extra = {name for name, _ in props} - {"Type", "ExecStart", "Restart", expected[0]}
    assert extra == set()


def test_exec_stop_post_with_ignore_failure() -> None:
    spec = replace(MINIMAL, exec_stop_post=(ExecCommand(("/bin/rm", "-rf", "/x"), True),))
    assert ("ExecStopPost", ("a(sasb)", [["/bin/rm", ["/bin/rm", "-rf", "/x"], True]])) in (
        plan_properties(spec)
    )


def test_start_limit_for_on_failure_n_counts_the_first_start() -> None:
    assert StartLimit.max_restarts(0) == StartLimit(burst=1, interval_usec=USEC_INFINITY)
    assert StartLimit.max_restarts(5).burst == 6
    props = dict(plan_properties(replace(MINIMAL, start_limit=StartLimit.unlimited())))
    assert props["StartLimitBurst"] == ("u", 0)
    assert props["StartLimitIntervalUSec"] == ("t", 0)
    with pytest.raises(UsageError):
        StartLimit.max_restarts(-1)


def test_split_fds_moves_descriptors_out_of_band() -> None:
    props, fds = split_fds(plan_properties(FULL))
    assert fds == [7, 8]
    as_dict = dict(props)
    assert as_dict["StandardInputFileDescriptor"] == ("h", 0)
    assert as_dict["StandardOutputFileDescriptor"] == ("h", 1)
    assert as_dict["StandardErrorFileDescriptor"] == ("h", 1)
    assert as_dict["MemoryMax"] == ("t", 536_870_912)  # others untouched


def test_split_fds_without_descriptors() -> None:
    props = plan_properties(MINIMAL)
    assert split_fds(props) == (props, [])


def test_spec_is_immutable_including_its_mappings() -> None:
    env = {"A": "1"}
    spec = replace(MINIMAL, environment=env)
    env["B"] = "2"
    assert dict(spec.environment) == {"A": "1"}
    with pytest.raises(TypeError):
        spec.environment["C"] = "3"  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        spec.name = "other.service"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "web"}, "name"),
        ({"name": "web.socket"}, "name"),
        ({"name": ".service"}, "name"),
        ({"name": "we b.service"}, "name"),
        ({"name": "x" * 250 + ".service"}, "name"),
        ({"exec_start": ()}, "exec_start"),
        ({"exec_start": ("",)}, "exec_start"),
        ({"exec_start": ("./run.sh",)}, "exec_start"),
        ({"exec_start": ("/bin/echo", "a\0b")}, "exec_start"),
        ({"environment": {"A=B": "c"}}, "environment"),
        ({"environment": {"": "c"}}, "environment"),
        ({"log_extra_fields": {"container_name": "web"}}, "log_extra_fields"),
        ({"log_extra_fields": {"_PID": "1"}}, "log_extra_fields"),
        ({"log_extra_fields": {"1ABC": "1"}}, "log_extra_fields"),
        ({"log_extra_fields": {"A": "x\0"}}, "log_extra_fields"),
        ({"working_directory": "srv"}, "working_directory"),
        ({"pid_file": "x.pid"}, "pid_file"),
        ({"slice": "rctl"}, "slice"),
        ({"syslog_identifier": ""}, "syslog_identifier"),
        ({"memory_max": -1}, "memory_max"),
        ({"tasks_max": 2**64}, "tasks_max"),
        ({"stdout_fd": -1}, "stdout_fd"),
        ({"cpu_weight": 0}, "cpu_weight"),
        ({"cpu_weight": 10001}, "cpu_weight"),
        ({"kill_signal": 0}, "kill_signal"),
        ({"start_limit": StartLimit(burst=-1, interval_usec=0)}, "start_limit"),
        ({"service_type": ServiceType.ONESHOT, "restart": RestartPolicy.ALWAYS}, "restart"),
    ],
)
def test_invalid_specs_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(UsageError) as caught:
        replace(MINIMAL, **change)
    assert caught.value.message.startswith(f"{field}:")


def test_valid_edge_values_are_accepted() -> None:
    spec = replace(
        MINIMAL,
        name="rctl-a_b:c@1.service",
        exec_start=("sh", "-c", "exit 3"),
        log_extra_fields={"A": "", "B2_C": "x\ny"},
        cpu_weight=10000,
        kill_signal=signal.SIGRTMAX,
        service_type=ServiceType.ONESHOT,
        restart=RestartPolicy.ON_FAILURE,
    )
    assert ("LogExtraFields", ("aay", [b"A=", b"B2_C=x\ny"])) in plan_properties(spec)


@pytest.mark.parametrize(
    "field", ["description", "syslog_identifier", "working_directory", "pid_file"]
)
@pytest.mark.parametrize("char", ["\n", "\r", "\x1b"])
def test_one_line_settings_refuse_control_characters(field: str, char: str) -> None:
    # The manager writes these into the transient unit's file without C escapes: a line
    # break there would be a setting of its own at the next daemon-reload.
    with pytest.raises(UsageError, match=field):
        changes: dict[str, Any] = {field: f"/x{char}ExecStartPre=/bin/evil"}
        replace(MINIMAL, **changes)


def test_environment_values_may_hold_tabs_and_newlines_only() -> None:
    replace(MINIMAL, environment={"A": "one\ttwo\nthree"})
    with pytest.raises(UsageError, match="environment"):
        replace(MINIMAL, environment={"A": "x\ry"})
