"""UserManager's start, restart and is-active and its transient timers, against the
scripted manager of test_units_manager.py; the timer's properties, planned purely; and no
``systemctl``/``systemd-run`` program left in the domain code."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from test_units_manager import JOB, PATIENCE, FakeSystemd, manager, sd, within

from rctlbase.errors import UsageError
from rootless.containers.health import HealthConfig, timer_spec
from units.manager import UnitStartFailed, UserManager
from units.properties import CollectMode, ServiceSpec
from units.timer import TimerSpec, plan_timer_properties

__all__ = ["manager", "sd"]  # the fixtures, used by name
ROOT = Path(__file__).resolve().parents[2]


def body_of(sd: FakeSystemd, member: str) -> list[Any]:
    return list(next(c for c in sd.bus.calls if c.member == member).body)


@pytest.mark.parametrize(("method", "member"), [("start", "StartUnit"), ("restart", "RestartUnit")])
def test_start_and_restart_wait_for_their_job(
    sd: FakeSystemd, manager: UserManager, method: str, member: str
) -> None:
    sd.after_sent[member] = lambda: sd.job_removed(JOB, "a.service", "done")
    assert within(PATIENCE, lambda: getattr(manager, method)("a.service")) == JOB
    assert body_of(sd, member) == ["a.service", "replace"]


def test_a_restart_without_waiting_returns_the_job(sd: FakeSystemd, manager: UserManager) -> None:
    assert within(PATIENCE, lambda: manager.restart("a.service", wait=False)) == JOB
    assert "Subscribe" not in sd.calls()  # no job to follow


def test_a_failed_start_job_says_so(sd: FakeSystemd, manager: UserManager) -> None:
    def fail(_: list[Any]) -> None:
        sd.add("a.service", ActiveState="failed", SubState="failed", Result="exit-code")
        sd.after_sent["StartUnit"] = lambda: sd.job_removed(JOB, "a.service", "failed")

    sd.on_call["StartUnit"] = fail
    with pytest.raises(UnitStartFailed, match=r"unit a.service failed to start \(job failed"):
        within(PATIENCE, lambda: manager.start("a.service"))


@pytest.mark.parametrize(
    ("active_state", "active"),
    [("active", True), ("reloading", True), ("activating", False), ("failed", False)],
)
def test_is_active_as_systemctl_says(
    sd: FakeSystemd, manager: UserManager, active_state: str, active: bool
) -> None:
    sd.add("a.timer", ActiveState=active_state, SubState="x")
    assert manager.is_active("a.timer") is active
    assert manager.is_active("unknown.timer") is False


def check_timer() -> TimerSpec:
    service = ServiceSpec(name="c-healthcheck.service", exec_start=("/usr/bin/rctl", "x"))
    return TimerSpec(
        name="c-healthcheck.timer",
        service=service,
        on_active_usec=2_000_000,
        on_unit_active_usec=2_000_000,
        accuracy_usec=100_000,
        binds_to=("c.service",),
        after=("c.service",),
        collect_mode=CollectMode.INACTIVE_OR_FAILED,
    )


def test_a_transient_timer_starts_with_its_service(sd: FakeSystemd, manager: UserManager) -> None:
    sd.after_sent["StartTransientUnit"] = lambda: sd.job_removed(JOB, "c-healthcheck.timer", "done")
    assert within(PATIENCE, lambda: manager.start_transient_timer(check_timer())) == JOB
    name, mode, props, aux = body_of(sd, "StartTransientUnit")
    assert (name, mode) == ("c-healthcheck.timer", "fail")
    assert {key: value.value for key, value in props}["BindsTo"] == ["c.service"]
    assert [unit for unit, _ in aux] == ["c-healthcheck.service"]
    service = {key: value.value for key, value in aux[0][1]}
    assert [list(entry) for entry in service["ExecStart"]] == [
        ["/usr/bin/rctl", ["/usr/bin/rctl", "x"], False]
    ]


def test_timer_properties_are_systemd_run_s() -> None:
    assert plan_timer_properties(check_timer()) == [
        ("TimersMonotonic", ("a(st)", [["OnActiveSec", 2_000_000], ["OnUnitActiveSec", 2_000_000]])),
        ("AccuracyUSec", ("t", 100_000)),
        ("BindsTo", ("as", ["c.service"])),
        ("After", ("as", ["c.service"])),
        ("CollectMode", ("s", "inactive-or-failed")),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "c.service"}, "not a valid unit name"),
        ({"name": "d-healthcheck.timer"}, "is not the service of"),
        ({"on_active_usec": None, "on_unit_active_usec": None}, "no trigger"),
        ({"accuracy_usec": -1}, "out of range"),
        ({"binds_to": ("c/service",)}, "not a unit name"),
    ],
)
def test_timer_specs_are_checked(changes: dict[str, Any], message: str) -> None:
    fields = {slot: getattr(check_timer(), slot) for slot in TimerSpec.__slots__}
    with pytest.raises(UsageError, match=message):
        TimerSpec(**{**fields, **changes})


def test_the_healthcheck_timer_of_a_container() -> None:
    config = HealthConfig(test=("CMD", "true"), interval=0.5, timeout=1.0)
    env = {"XDG_DATA_HOME": "/d", "HOME": "/h"}
    spec = timer_spec("rctl-abc.service", "abc", config, env)
    assert spec.name == "rctl-abc-healthcheck.timer"
    assert (spec.on_active_usec, spec.on_unit_active_usec) == (1_000_000, 500_000)
    assert spec.binds_to == spec.after == ("rctl-abc.service",)
    assert spec.service.name == "rctl-abc-healthcheck.service"
    assert spec.service.exec_start[1:] == ("healthcheck", "run", "abc")
    assert dict(spec.service.environment) == {"XDG_DATA_HOME": "/d"}
    assert spec.service.collect_mode is CollectMode.INACTIVE_OR_FAILED


# Asking a program its version is not driving the manager (rctl version's report).
UNIT_PROGRAMS = {"systemctl", "systemd-run"}
MAY_RUN = {"rootless/system.py"}


def unit_programs(root: Path) -> list[str]:
    """``FILE:LINE`` of every string literal naming systemctl or systemd-run as a program
    in the domain code (hints and docstrings quote them in longer strings)."""
    found = []
    for path in sorted((root / "rootless").rglob("*.py")):
        rel = str(path.relative_to(root))
        if rel in MAY_RUN:
            continue
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if isinstance(node, ast.Constant) and node.value in UNIT_PROGRAMS:
                found.append(f"{rel}:{node.lineno}: {node.value}")
    return found


def test_domain_code_drives_units_over_d_bus_only(tmp_path: Path) -> None:
    assert unit_programs(ROOT) == []
    (tmp_path / "rootless").mkdir()
    (tmp_path / "rootless" / "x.py").write_text('ARGV = ["systemctl", "--user", "start"]\n')
    assert unit_programs(tmp_path) == ["rootless/x.py:1: systemctl"]
