"""A container's transient unit (rootless.containers.unitspec.service_spec): how it is stopped."""

from __future__ import annotations

from pathlib import Path

from rootless.containers.record import ContainerRecord
from rootless.containers.spec import ContainerSpec
from rootless.containers.unitspec import service_spec
from units.properties import KillMode, plan_properties

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
