"""units.unitrender: a ServiceSpec as unit-file lines, from the same D-Bus properties."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rctlbase.errors import UsageError
from units.properties import (
    INFINITY,
    RESOURCE_SETTINGS,
    ExecCommand,
    KillMode,
    RestartPolicy,
    ServiceSpec,
    ServiceType,
    StartLimit,
    plan_properties,
)
from units.unitfile import UnitSection, Verbatim, render_unit_file
from units.unitrender import duration_text, render_service

MINIMAL = ServiceSpec(name="rctl-web.service", exec_start=("/usr/bin/rctl", "run-unit", "web"))


def text(spec: ServiceSpec) -> str:
    lines = render_service(spec)
    return render_unit_file(
        [UnitSection("Unit", lines.unit), UnitSection("Service", lines.service)]
    )


def test_a_container_unit_as_a_file() -> None:
    spec = replace(
        MINIMAL,
        description="rctl container web (100% httpd)",
        service_type=ServiceType.NOTIFY,
        notify_access="main",
        exec_stop_post=(ExecCommand(("/usr/bin/rctl", "stopped", "a b"), ignore_failure=True),),
        environment={"A": "1", "B": "two words $HOME"},
        restart=RestartPolicy.ON_FAILURE,
        restart_usec=100_000,
        start_limit=StartLimit.max_restarts(2),
        timeout_start_usec=15 * 60 * 1_000_000,
        timeout_stop_usec=15_000_000,
        kill_mode=KillMode.MIXED,
        kill_signal=2,
        delegate=True,
        memory_max=1 << 30,
        memory_swap_max=INFINITY,
        cpu_quota_per_sec_usec=250_000,
        cpu_weight=50,
        tasks_max=INFINITY,
        syslog_identifier="web",
        log_extra_fields={"CONTAINER_NAME": "web"},
    )
    assert text(spec) == "\n".join(
        [
            "[Unit]",
            "Description=rctl container web (100%% httpd)",
            "StartLimitBurst=3",
            "StartLimitIntervalSec=infinity",
            "",
            "[Service]",
            "Type=notify",
            "NotifyAccess=main",
            "ExecStart=/usr/bin/rctl run-unit web",
            'ExecStopPost=-/usr/bin/rctl stopped "a b"',
            "Environment=A=1",
            'Environment="B=two words $HOME"',
            "Restart=on-failure",
            "RestartSec=100ms",
            "TimeoutStartSec=15min",
            "TimeoutStopSec=15",
            "KillMode=mixed",
            "KillSignal=2",
            "Delegate=yes",
            "MemoryMax=1073741824",
            "MemorySwapMax=infinity",
            "CPUQuota=25%",
            "CPUWeight=50",
            "TasksMax=infinity",
            "SyslogIdentifier=web",
            "LogExtraFields=CONTAINER_NAME=web",
            "",
        ]
    )


def test_every_property_becomes_a_line() -> None:
    # The file is rendered from plan_properties: nothing sent over the bus is left out.
    spec = replace(MINIMAL, memory_max=1, cpu_weight=1, tasks_max=1, memory_swap_max=1,
                   cpu_quota_per_sec_usec=10_000, memory_low=1, io_weight=1,
                   allowed_cpus=bytes([0b101]), cpu_quota_period_usec=200_000,
                   standard_output="null")  # fmt: skip
    lines = render_service(spec)
    keys = {key for key, _ in (*lines.unit, *lines.service)}
    assert {s.key for s in RESOURCE_SETTINGS} <= keys
    assert len(lines.unit) + len(lines.service) == len(plan_properties(spec))
    assert ("CPUQuota", Verbatim("1%")) in lines.service
    assert ("AllowedCPUs", "0 2") in lines.service
    assert ("CPUQuotaPeriodSec", "200ms") in lines.service


@pytest.mark.parametrize(
    "field", [{"stdin_fd": 0}, {"stdout_fd": 1}, {"stderr_fd": 2}, {"add_ref": True}]
)
def test_bus_only_properties_are_refused(field: dict[str, object]) -> None:
    with pytest.raises(UsageError, match="cannot be written in a unit file"):
        render_service(replace(MINIMAL, **field))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("usec", "expected"),
    [
        (0, "0"),
        (100_000, "100ms"),
        (1_500, "1500us"),
        (10_000_000, "10"),
        (90_000_000, "90"),
        (120_000_000, "2min"),
        (INFINITY, "infinity"),
    ],
)
def test_duration_text(usec: int, expected: str) -> None:
    assert duration_text(usec) == expected
