"""The threaded gunzip reader: same bytes as gzip, members followed, damage reported."""

from __future__ import annotations

import gzip
import io
import os
import zlib

import pytest

from rootless.images.gunzip import CHUNK, ThreadedGunzip


def read_all(reader: ThreadedGunzip, size: int) -> bytes:
    parts = []
    while chunk := reader.read(size):
        parts.append(chunk)
    return b"".join(parts)


@pytest.mark.parametrize("size", [1, 512, 10240, 1 << 22, -1])
def test_same_bytes_as_gzip_for_any_read_size(size: int) -> None:
    data = os.urandom(1 << 20) + b"x" * (3 << 20)
    with ThreadedGunzip(io.BytesIO(gzip.compress(data, 1))) as reader:
        assert read_all(reader, size) == data


def test_several_members_are_one_stream() -> None:
    blob = gzip.compress(b"first ") + gzip.compress(b"second")
    with ThreadedGunzip(io.BytesIO(blob)) as reader:
        assert reader.read() == b"first second"


def test_a_truncated_stream_raises_in_the_reader() -> None:
    blob = gzip.compress(os.urandom(100000))[:-100]
    with ThreadedGunzip(io.BytesIO(blob)) as reader, pytest.raises(zlib.error, match="truncated"):
        read_all(reader, 4096)


def test_garbage_raises() -> None:
    with ThreadedGunzip(io.BytesIO(b"not gzip at all")) as reader, pytest.raises(zlib.error):
        reader.read()


def test_closing_early_stops_the_thread() -> None:
    reader = ThreadedGunzip(io.BytesIO(gzip.compress(os.urandom(1 << 22))), depth=1)
    assert len(reader.read(10)) == 10
    reader.close()
    assert not reader._thread.is_alive()


def test_a_bomb_is_inflated_a_chunk_at_a_time() -> None:
    # 64 MiB of zeros in 64 KiB of gzip: one unbounded inflate step would hold it all.
    blob = gzip.compress(bytes(64 << 20), 9)
    assert len(blob) < 1 << 17
    with ThreadedGunzip(io.BytesIO(blob), depth=2) as reader:
        assert reader.read(1) == b"\0"
        assert len(reader._chunk) <= CHUNK
        total = 1
        while chunk := reader.read(CHUNK):
            assert len(reader._chunk) <= CHUNK
            total += len(chunk)
    assert total == 64 << 20
