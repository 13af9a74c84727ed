"""Fuzzing of smaller parsers of others' text: registry response headers and error bodies
(WWW-Authenticate, Link, Retry-After, ``{"errors": ...}``) and seccomp profiles given with
``--security-opt seccomp=FILE``. Accepted, or refused with an RctlError of one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fuzzkit import check_one_line, corpus_files
from hypothesis import given
from hypothesis import strategies as st
from jsonmut import mutated

from rctlbase.errors import RctlError
from rootless.containers.seccomp import parse_seccomp_profile
from rootless.images.auth import parse_challenge
from rootless.images.registry import parse_errors, parse_next_link, parse_retry_after

PROFILES = corpus_files("seccomp")
HEADER = st.lists(
    st.sampled_from(['Bearer ', 'Basic ', 'realm=', '"', 'https://a/token', ',', 'service=', 'scope=',
                     "repository:x:pull", "\\", " ", "=", '<https://a/v2?n=1>; rel="next"', "1e400",
                     "nan", "-5", "inf"]),
    max_size=10,
).map("".join)  # fmt: skip


@given(HEADER | st.text(max_size=80))
def test_fuzz_headers(value: str) -> None:
    parse_challenge(value)
    parse_next_link(value)
    seconds = parse_retry_after(value)
    assert seconds is None or seconds >= 0
    parse_errors(value.encode())


def check_profile(text: str) -> None:
    try:
        parse_seccomp_profile(text)
    except RctlError as exc:
        check_one_line(exc)


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_seccomp_corpus(path: Path) -> None:
    check_profile(path.read_text())


@given(st.data(), st.sampled_from(PROFILES))
def test_fuzz_seccomp(data: st.DataObject, path: Path) -> None:
    check_profile(data.draw(mutated(json.loads(path.read_text()))).decode())
