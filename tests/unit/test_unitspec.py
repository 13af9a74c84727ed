"""A container's unit (rootless.containers.unitspec): how it is stopped, its limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from rootless.containers.record import ContainerRecord
from rootless.containers.spec import ContainerSpec, ImageDefaults
from rootless.containers.unitspec import (
    DEFAULT_STOP_TIMEOUT,
    container_service,
    plan_spec,
    plan_unit_settings,
    service_spec,
)
from rootless.models import RunOptions
from units.properties import INFINITY, KillMode, plan_properties
from units.unitfile import Verbatim
from units.unitrender import render_service

RECORD = ContainerRecord("c" * 64, "c", "sha256:i", "img", ("true",), 0.0, "overlay")
LAUNCH = Path("/data/containers/c/bundle/launch.json")


def kill_mode(*, tty: bool, stdio: tuple[int, int, int] | None) -> str:
    spec = ContainerSpec(name="c", image_ref="img", image_id="sha256:i", command=("true",), tty=tty)
    properties = dict(plan_properties(service_spec(RECORD, spec, LAUNCH, stdio=stdio)))
    return str(properties["KillMode"][1])


def test_the_stop_signal_goes_to_the_container_alone() -> None:
    # The network helper and the relay keep serving while the container shuts down.
    assert kill_mode(tty=False, stdio=None) == KillMode.MIXED
    assert kill_mode(tty=True, stdio=None) == KillMode.MIXED
    assert kill_mode(tty=True, stdio=(0, 1, 2)) == KillMode.MIXED  # the CLI holds the terminal


def test_an_attached_runs_output_copier_is_waited_for() -> None:
    # mixed would SIGKILL it as soon as the container ended, before it drained the pipes.
    assert kill_mode(tty=False, stdio=(0, 1, 2)) == KillMode.CONTROL_GROUP


def properties_of(options: RunOptions) -> dict[str, object]:
    spec = plan_spec(options, "c", "img", "sha256:i", ImageDefaults(cmd=("sh",)), {})
    return {k: v for k, (_, v) in plan_properties(service_spec(RECORD, spec, LAUNCH, stdio=None))}


@pytest.mark.parametrize("value", ["-1", "0"])
def test_pids_limit_unlimited_lifts_systemds_default(value: str) -> None:
    # docker's -1 (and 0) is unlimited; sending nothing would leave DefaultTasksMax=.
    assert properties_of(RunOptions(image="img", pids_limit=value))["TasksMax"] == INFINITY


def test_without_pids_limit_systemds_default_applies() -> None:
    assert "TasksMax" not in properties_of(RunOptions(image="img"))
    assert properties_of(RunOptions(image="img", pids_limit="64"))["TasksMax"] == 64


def test_memory_swap_is_swap_alone_and_minus_one_is_unlimited() -> None:
    props = properties_of(RunOptions(image="img", memory="256m", memory_swap="1g"))
    assert (props["MemoryMax"], props["MemorySwapMax"]) == (256 << 20, 768 << 20)
    unlimited = properties_of(RunOptions(image="img", memory="256m", memory_swap="-1"))
    assert unlimited["MemorySwapMax"] == INFINITY


def test_transient_and_generated_units_share_their_settings() -> None:
    # One translation: the generated unit is the rendering of container_service's spec.
    inputs = plan_unit_settings(
        RunOptions(image="img", restart="on-failure:2", cpus="0.5", cpu_shares=2048,
                   stop_timeout=7, stop_signal="SIGQUIT")
    )  # fmt: skip
    unit = container_service(
        inputs,
        name="rctl-c.service",
        description="c",
        exec_start=("/usr/bin/rctl", "container", "run-unit", "c"),
        exec_stop_post=(),
        kill_mode=KillMode.MIXED,
        syslog_identifier="c",
    )
    lines = render_service(unit)
    assert ("StartLimitBurst", "3") in lines.unit
    for line in [("Restart", "on-failure"), ("RestartSec", "100ms"), ("TimeoutStopSec", "7"),
                 ("KillSignal", "3"), ("CPUWeight", "200")]:  # fmt: skip
        assert line in lines.service
    assert ("CPUQuota", Verbatim("50%")) in lines.service
    props = dict(plan_properties(unit))
    assert props["CPUQuotaPerSecUSec"] == ("t", 500_000)
    assert props["TimeoutStopUSec"] == ("t", 7_000_000)
    assert plan_unit_settings(RunOptions(image="img")).stop_timeout == DEFAULT_STOP_TIMEOUT
