"""Golden tests of the pure translations: definition file → units and ``rctl run`` options.

Each tests/unit/golden/definitions/CASE.toml is loaded as if it were
``/home/alice/.config/rctl/definitions/CASE.toml``; CASE.expected holds, per container, its
unit file and its RunOptions (one field per line), plus the volume and network creation
options. Regenerate with ``RCTL_UPDATE_GOLDEN=1 .venv/bin/pytest
tests/unit/test_definitions_golden.py`` and review the diff.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from rootless.definitions.load import check_together, parse_file
from rootless.definitions.schema import DefinitionError, Problem
from rootless.definitions.translate import (
    network_create_options,
    render_unit,
    run_options,
    unit_name,
    volume_create_kwargs,
)

GOLDEN = Path(__file__).parent / "golden" / "definitions"
UPDATE = os.environ.get("RCTL_UPDATE_GOLDEN") == "1"
HOME = Path("/home/alice/.config/rctl/definitions")
RCTL = ["/usr/bin/rctl"]
CASES = sorted(p.stem for p in GOLDEN.glob("*.toml"))


def render_case(case: str) -> str:
    problems: list[Problem] = []
    part = parse_file(HOME / f"{case}.toml", (GOLDEN / f"{case}.toml").read_text(), problems)
    merged = check_together([part], problems)
    if problems:
        raise DefinitionError(problems)
    out = []
    for container in merged.containers:
        out.append(f"==== {unit_name(container.name)}")
        out.append(render_unit(container, RCTL))
        out.append(f"==== run options of {container.name}")
        options = run_options(container)
        for field in dataclasses.fields(options):
            value = getattr(options, field.name)
            if value != field.default:
                out.append(f"{field.name} = {value!r}")
        out.append("")
    for volume in merged.volumes:
        out.append(f"==== volume {volume.name}: {volume_create_kwargs(volume)!r}")
    for network in merged.networks:
        out.append(f"==== network {network.name}: {network_create_options(network)!r}")
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    text = render_case(case)
    path = GOLDEN / f"{case}.expected"
    if UPDATE:
        path.write_text(text)
    assert path.exists(), f"no golden file {path}: run with RCTL_UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(), f"{case} differs from {path} (RCTL_UPDATE_GOLDEN=1 rewrites)"


def test_every_expected_file_has_its_input() -> None:
    stale = [p.name for p in GOLDEN.glob("*.expected") if p.stem not in CASES]
    assert not stale, f"golden files without input: {stale}"
    assert CASES, "no golden cases found"
