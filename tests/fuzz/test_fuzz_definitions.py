"""Fuzzing of TOML definition files (``rctl apply``): the corpus files with their values
changed (any TOML value at any place), and with their text cut or spliced. A file is
accepted, or refused with problems (one line each); then each accepted container is
translated as ``apply`` and ``generate systemd`` would (run options, unit file)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import tomli_w
from fuzzkit import corpus_files
from hypothesis import given
from hypothesis import strategies as st
from jsonmut import TOML, changed

from rctlbase.errors import RctlError
from rootless.definitions.load import check_together, parse_file
from rootless.definitions.schema import Problem
from rootless.definitions.translate import render_unit, run_options

FILES = corpus_files("definitions")


def check_definition(text: str) -> None:
    problems: list[Problem] = []
    found = parse_file(Path("/defs/fuzz.toml"), text, problems)
    merged = check_together([found], problems)
    for problem in problems:
        line = str(problem)
        if "\\" not in text and "'''" not in text and '"""' not in text:
            assert "\n" not in line, f"multi-line problem: {line!r}"
    if problems:
        return
    for container in merged.containers:
        try:
            run_options(container)
            render_unit(container, ["/usr/bin/rctl"])
        except RctlError:
            pass


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_corpus(path: Path) -> None:
    check_definition(path.read_text())


@given(st.data(), st.sampled_from(FILES))
def test_fuzz_values(data: st.DataObject, path: Path) -> None:
    doc = data.draw(changed(tomllib.loads(path.read_text()), TOML))
    if not isinstance(doc, dict):
        return
    check_definition(tomli_w.dumps(doc))


@given(st.data(), st.sampled_from(FILES))
def test_fuzz_text(data: st.DataObject, path: Path) -> None:
    text = path.read_text()
    cut = data.draw(st.integers(0, len(text)))
    insert = data.draw(
        st.text(max_size=20) | st.sampled_from(['"', "[", "]]", "=", "\n[container.x]\n"])
    )
    check_definition(text[:cut] + insert + text[cut + data.draw(st.integers(0, 10)) :])
