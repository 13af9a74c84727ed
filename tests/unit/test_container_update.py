"""``update``: the body as a change, checked, saved, and applied live to a running unit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from rctlbase.errors import UsageError
from rootless.api.http import NotServed
from rootless.api.translate import Body
from rootless.api.update import change_of
from rootless.containers.update import update_container
from rootless.models import ContainerUpdate
from units.properties import Property


def test_body_becomes_a_change() -> None:
    body = Body({"Memory": 67108864, "MemorySwap": -1, "NanoCpus": 500_000_000,
                 "CpuShares": 0, "PidsLimit": 50, "BlkioWeight": 0,
                 "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}}, "")  # fmt: skip
    assert change_of(body) == ContainerUpdate(
        memory=67108864, memory_swap=-1, cpus=0.5, pids_limit=50, restart="on-failure:2"
    )
    assert change_of(Body({"RestartPolicy": {"Name": ""}}, "")) == ContainerUpdate()
    with pytest.raises(NotServed, match="CpusetCpus"):
        change_of(Body({"CpusetCpus": "0"}, ""))


@dataclass
class Record:
    id: str = "c" * 64
    name: str = "box"
    unit: str = "rctl-" + "c" * 64 + ".service"


@dataclass
class State:
    active_state: str


@dataclass
class Fake:
    active: bool
    inputs: dict[str, Any] = field(
        default_factory=lambda: {
            "restart": "no",
            "stop_timeout": 10,
            "stop_signal": None,
            "limits": {"memory": 128 << 20},
        }
    )
    set: list[tuple[str, list[Property]]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    @property
    def store(self) -> Fake:
        return self

    @property
    def manager(self) -> Fake:
        return self

    def get(self, ref: str) -> Record:
        return Record()

    def load_unit_inputs(self, container_id: str) -> dict[str, Any]:
        return self.inputs

    def save_unit_inputs(self, container_id: str, raw: dict[str, Any]) -> None:
        self.inputs = raw

    def unit_state(self, unit: str) -> State | None:
        return State("active") if self.active else None

    def set_properties(self, unit: str, props: list[Property]) -> None:
        self.set.append((unit, props))

    def event(self, record: Record, action: str) -> None:
        self.events.append(action)


def test_a_running_unit_gets_the_limits_and_the_inputs_are_saved() -> None:
    fake = Fake(active=True)
    change = ContainerUpdate(memory=64 << 20, cpus=0.5, pids_limit=50, restart="always")
    update_container(cast(Any, fake), "box", change)
    ((unit, props),) = fake.set
    assert unit == Record.unit
    assert dict(props) == {
        "MemoryMax": ("t", 64 << 20),
        "CPUQuotaPerSecUSec": ("t", 500_000),
        "TasksMax": ("t", 50),
    }
    assert fake.inputs["restart"] == "always"
    assert fake.inputs["limits"]["memory"] == 64 << 20
    assert fake.inputs["limits"]["pids_limit"] == 50
    assert fake.events == ["update"]


def test_a_stopped_container_only_saves_and_bad_values_change_nothing() -> None:
    fake = Fake(active=False)
    update_container(cast(Any, fake), "box", ContainerUpdate(cpu_shares=2048))
    assert fake.set == []
    assert fake.inputs["limits"]["cpu_shares"] == 2048
    before = dict(fake.inputs)
    with pytest.raises(UsageError):
        update_container(cast(Any, fake), "box", ContainerUpdate(memory=1024))
    with pytest.raises(UsageError):
        update_container(cast(Any, fake), "box", ContainerUpdate(restart="sometimes"))
    assert fake.inputs == before
