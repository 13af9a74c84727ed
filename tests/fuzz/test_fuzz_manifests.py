"""Fuzzing of what registries send: manifests, indexes (and the platform choice among
their entries), image configs (and their check against the manifest). These are hostile
inputs: a refusal is an RctlError whose message is one line even when it quotes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fuzzkit import check_one_line, corpus_files
from hypothesis import given
from hypothesis import strategies as st
from jsonmut import mutated

from rctlbase.errors import RctlError
from rootless.images.manifest import (
    ImageIndex,
    ImageManifest,
    Platform,
    check_config,
    parse_image_config,
    parse_manifest,
    select_platform,
)

MANIFESTS = corpus_files("manifests")
CONFIGS = corpus_files("configs")
CONTENT_TYPES = [
    None, "", "application/json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
]  # fmt: skip
WANTED = [
    Platform("linux", "amd64"),
    Platform("linux", "arm64", "v8"),
    Platform("linux", "arm", "v6"),
]
CONFIG = parse_image_config((Path(__file__).parent / "corpus/configs/busybox.json").read_bytes())


def check_manifest(data: bytes, content_type: str | None) -> None:
    try:
        found = parse_manifest(data, content_type)
        if isinstance(found, ImageIndex):
            for wanted in WANTED:
                try:
                    select_platform(found, wanted)
                except RctlError as exc:
                    check_one_line(exc)
        else:
            assert isinstance(found, ImageManifest)
            check_config(found, CONFIG)
    except RctlError as exc:
        check_one_line(exc)


def check_config_blob(data: bytes) -> None:
    try:
        parse_image_config(data)
    except RctlError as exc:
        check_one_line(exc)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_manifest_corpus(path: Path, content_type: str | None) -> None:
    check_manifest(path.read_bytes(), content_type)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_corpus(path: Path) -> None:
    check_config_blob(path.read_bytes())


@given(st.data(), st.sampled_from(MANIFESTS), st.sampled_from(CONTENT_TYPES))
def test_fuzz_manifest(data: st.DataObject, path: Path, content_type: str | None) -> None:
    check_manifest(data.draw(mutated(json.loads(path.read_bytes()))), content_type)


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzz_manifest_bytes(data: bytes) -> None:
    check_manifest(data, None)


@given(st.data(), st.sampled_from(CONFIGS))
def test_fuzz_config(data: st.DataObject, path: Path) -> None:
    check_config_blob(data.draw(mutated(json.loads(path.read_bytes()))))
