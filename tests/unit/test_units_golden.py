"""Golden cases of a container's systemd settings, in the style of Quadlet's tests.

Each tests/unit/golden/units/CASE.run holds ``rctl run`` flags (the first line that is not a
comment, shell words) and CASE.toml a definition file; both hold their expectations as
``##`` comment lines:

- ``## assert-property NAME JSON``: the transient unit's D-Bus property (what
  ``StartTransientUnit`` is sent for a detached ``rctl run``, or for ``rctl apply`` of the
  definition), its value as JSON;
- ``## assert-no-property NAME``: the property is not sent (systemd's default applies);
- ``## assert-key-is SECTION KEY VALUE...``: every ``KEY=`` line of the unit file, in order
  (one VALUE per line, shell words): for a definition the generated unit, for ``rctl run``
  the unit-file rendering of its transient unit;
- ``## assert-key-missing SECTION KEY``;
- ``## assert-error TEXT``: the input is refused with a usage error containing TEXT;
- ``## assert-publish SPEC PROTOCOL HOST_IP HOST_PORTS CONTAINER_PORTS``: how a ``-p``
  value (of the flags or the definition) is parsed, without choosing host ports.

Both paths come from one ServiceSpec (``container_service``), so a case asserts both.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rctlbase.errors import UsageError
from rootless.cli.containers import run, run_options
from rootless.containers.ports import parse_publish
from rootless.containers.record import ContainerRecord
from rootless.containers.spec import ImageDefaults
from rootless.containers.unitspec import plan_spec, service_spec
from rootless.definitions.load import check_together, parse_file
from rootless.definitions.schema import DefinitionError, Problem
from rootless.definitions.translate import render_unit
from rootless.definitions.translate import run_options as definition_run_options
from rootless.models import RunOptions
from units.properties import ServiceSpec, plan_properties
from units.unitfile import UnitSection, render_unit_file
from units.unitrender import render_service

GOLDEN = Path(__file__).parent / "golden" / "units"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.suffix in (".run", ".toml"))
HOME = Path("/home/alice/.config/rctl/definitions")
LAUNCH = Path("/data/containers/c/bundle/launch.json")
IMAGE = ImageDefaults(cmd=("sh",))


@dataclass(frozen=True, slots=True)
class Rendered:
    """What one input became: D-Bus properties, a unit file's lines, the -p values."""

    properties: dict[str, Any]
    unit: dict[tuple[str, str], list[str]]
    publish: tuple[str, ...]


def parse_unit_text(text: str) -> dict[tuple[str, str], list[str]]:
    """``{(section, key): [values...]}`` of a unit file (no continuation lines)."""
    found: dict[tuple[str, str], list[str]] = {}
    section = ""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault((section, key), []).append(value)
    return found


def transient(options: RunOptions) -> ServiceSpec:
    """The unit a detached start of ``options`` asks for."""
    spec = plan_spec(options, "c", options.image, "sha256:" + "a" * 64, IMAGE, {})
    record = ContainerRecord("c" * 64, "c", "sha256:i", options.image, ("sh",), 0.0, "overlay")
    return service_spec(record, spec, LAUNCH, stdio=None)


def render_run(flags: str) -> Rendered:
    ctx = run.make_context("run", shlex.split(flags))
    params = dict(ctx.params)
    options = run_options(str(params.pop("image")), tuple(params.pop("command")), **params)
    unit = transient(options)
    lines = render_service(unit)
    text = render_unit_file(
        [UnitSection("Unit", lines.unit), UnitSection("Service", lines.service)]
    )
    properties = {name: value for name, (_, value) in plan_properties(unit)}
    return Rendered(properties, parse_unit_text(text), options.publish)


def render_definition(name: str, text: str) -> Rendered:
    problems: list[Problem] = []
    merged = check_together([parse_file(HOME / name, text, problems)], problems)
    if problems:
        raise DefinitionError(problems)
    (container,) = merged.containers
    unit = transient(definition_run_options(container))
    properties = {name: value for name, (_, value) in plan_properties(unit)}
    generated = parse_unit_text(render_unit(container, ["/usr/bin/rctl"]))
    return Rendered(properties, generated, container.ports)


def render_case(case: str, text: str) -> Rendered:
    if case.endswith(".run"):
        flags = next(line for line in text.splitlines() if line and not line.startswith("#"))
        return render_run(flags)
    return render_definition(case, text)


def assertions(text: str) -> list[list[str]]:
    """Each ``##`` line's words; a property's JSON and an error's text are one word each."""
    found = []
    for line in text.splitlines():
        if not line.startswith("## "):
            continue
        verb, _, rest = line[3:].partition(" ")
        if verb == "assert-property":
            found.append([verb, *rest.split(None, 1)])
        elif verb == "assert-error":
            found.append([verb, rest])
        else:
            found.append([verb, *shlex.split(rest)])
    return found


def check(rendered: Rendered, words: list[str]) -> None:
    verb, *args = words
    if verb == "assert-property":
        name, value = args
        assert name in rendered.properties, f"{name} is not sent"
        assert rendered.properties[name] == json.loads(value), name
    elif verb == "assert-no-property":
        assert args[0] not in rendered.properties, f"{args[0]} is sent"
    elif verb == "assert-key-is":
        section, key, *values = args
        assert rendered.unit.get((section, key)) == values, f"[{section}] {key}="
    elif verb == "assert-key-missing":
        section, key = args
        assert (section, key) not in rendered.unit, f"[{section}] {key}= is written"
    elif verb == "assert-publish":
        spec, protocol, host_ip, host_ports, container_ports = args
        assert spec in rendered.publish, f"{spec} is not published"
        port = parse_publish(spec)
        hosts = "any" if port.host_ports is None else "{}-{}".format(*port.host_ports)
        shown = (
            str(port.protocol),
            port.host_ip or "-",
            hosts,
            "{}-{}".format(*port.container_ports),
        )
        assert shown == (protocol, host_ip, host_ports, container_ports), spec
    else:
        raise AssertionError(f"unknown assertion {verb}")


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    text = (GOLDEN / case).read_text()
    checks = assertions(text)
    assert checks, f"{case} asserts nothing"
    errors = [words for words in checks if words[0] == "assert-error"]
    if errors:
        with pytest.raises(UsageError) as caught:
            render_case(case, text)
        for _, expected in errors:
            assert expected in str(caught.value), str(caught.value)
        return
    rendered = render_case(case, text)
    for words in checks:
        check(rendered, words)


def test_there_are_enough_cases_of_both_kinds() -> None:
    assert sum(c.endswith(".run") for c in CASES) >= 8
    assert sum(c.endswith(".toml") for c in CASES) >= 8
