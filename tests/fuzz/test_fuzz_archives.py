"""Fuzzing of tar streams from others: layers and ``rctl cp`` streams (headers chosen by
hypothesis, and valid streams with bytes flipped), and ``rctl load`` archives (docker and
OCI layouts with their JSON mutated, members dropped, bytes flipped). Each is unpacked into
a scratch directory; a refusal must be an RctlError of one line."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import pytest
from fuzzkit import check_one_line, corpus_files
from hypothesis import given
from hypothesis import strategies as st
from jsonmut import mutated
from tarkit import ENTRIES, build_tar, docker_members, oci_members, pack, sample_layer

from rctlbase.errors import RctlError
from rootless.images import archiveload
from rootless.images.store import Store
from rootless.images.unpack import unpack_layer, unpack_tree

ARCHIVES = corpus_files("archives")
LAYERS = corpus_files("layers")


def check_unpack(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tree, layer = Path(tmp, "tree"), Path(tmp, "layer")
        tree.mkdir()
        layer.mkdir()
        fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
        try:
            unpack_tree(io.BytesIO(data), fd)
        except RctlError as exc:
            check_one_line(exc)
        finally:
            os.close(fd)
        try:
            unpack_layer(io.BytesIO(data), layer, create_devices=False)
        except RctlError as exc:
            check_one_line(exc)


def check_load(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            archiveload.load(Store(Path(tmp)), io.BytesIO(data))
        except RctlError as exc:
            check_one_line(exc)


def flip(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    buf = bytearray(data)
    for position, value in edits:
        buf[position % len(buf)] = value
    return bytes(buf)


EDITS = st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), min_size=1, max_size=8)


@pytest.mark.parametrize("path", LAYERS, ids=lambda p: p.name)
def test_layer_corpus(path: Path) -> None:
    check_unpack(path.read_bytes())


@pytest.mark.parametrize("path", ARCHIVES, ids=lambda p: p.name)
def test_archive_corpus(path: Path) -> None:
    check_load(path.read_bytes())


@given(st.lists(ENTRIES, max_size=6))
def test_fuzz_tar_headers(entries: list) -> None:  # type: ignore[type-arg]
    check_unpack(build_tar(entries))


@given(EDITS)
def test_fuzz_tar_bytes(edits: list[tuple[int, int]]) -> None:
    check_unpack(flip(sample_layer(), edits))


def check_mutated_archive(data: st.DataObject, layout) -> None:  # type: ignore[no-untyped-def]
    members = layout(sample_layer())
    name = data.draw(st.sampled_from([n for n in members if n != "oci-layout"]))
    try:
        doc = json.loads(members[name])
    except ValueError:  # a layer: flip its bytes instead
        members[name] = flip(members[name], data.draw(EDITS))
    else:
        members[name] = data.draw(mutated(doc))
    if data.draw(st.booleans()):
        del members[data.draw(st.sampled_from(sorted(members)))]
    check_load(pack(members))


@given(st.data())
def test_fuzz_oci_archive(data: st.DataObject) -> None:
    check_mutated_archive(data, oci_members)


@given(st.data())
def test_fuzz_docker_archive(data: st.DataObject) -> None:
    check_mutated_archive(data, docker_members)


@given(EDITS)
def test_fuzz_oci_archive_bytes(edits: list[tuple[int, int]]) -> None:
    check_load(flip(pack(oci_members(sample_layer())), edits))


@given(EDITS)
def test_fuzz_docker_archive_bytes(edits: list[tuple[int, int]]) -> None:
    check_load(flip(pack(docker_members(sample_layer())), edits))
