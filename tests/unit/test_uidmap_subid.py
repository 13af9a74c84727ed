"""Parsing /etc/subuid and /etc/subgid (uidmap.subid)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from rctlbase.errors import HostError
from uidmap.subid import IDRange, load_subids, parse_subid_line, parse_subid_text, read_subid_file

SAMPLE = """\
# subordinate uids, one range per line
alice:100000:65536

bob:165536:65536
1000:300000:1000
  # an indented comment
alice:400000:10
alice:100000
carol:abc:10
:500000:10
dave:600000:0
erin:4294967290:100
frank:1:2:3
"""


def test_idrange_is_frozen_and_slotted() -> None:
    r = IDRange(100000, 65536)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.start = 1  # type: ignore[misc]
    assert not hasattr(r, "__dict__")
    assert r.end == 165536
    assert str(r) == "100000-165535"


def test_parse_keeps_valid_lines_in_order_with_their_numbers() -> None:
    parsed = parse_subid_text(SAMPLE)
    assert [(e.owner, e.range, e.line) for e in parsed.entries] == [
        ("alice", IDRange(100000, 65536), 2),
        ("bob", IDRange(165536, 65536), 4),
        ("1000", IDRange(300000, 1000), 5),
        ("alice", IDRange(400000, 10), 7),
    ]


def test_parse_counts_malformed_lines_and_skips_comments_and_blanks() -> None:
    parsed = parse_subid_text(SAMPLE)
    # missing field, non-numeric, empty owner, zero count, past 2^32-1, extra field
    assert parsed.malformed == (8, 9, 10, 11, 12, 13)


@pytest.mark.parametrize(
    "line",
    ["alice", "alice:1", "alice:-1:10", "alice:1:+5", "alice: :5", "a:1:2:3", "alice:1:0"],
)
def test_malformed_lines_parse_to_none(line: str) -> None:
    assert parse_subid_line(line) is None


def test_whitespace_around_fields_is_tolerated() -> None:
    entry = parse_subid_line(" alice : 100000 : 65536 ", 3)
    assert entry is not None
    assert (entry.owner, entry.range, entry.line) == ("alice", IDRange(100000, 65536), 3)


def test_ranges_for_matches_name_and_numeric_uid_in_file_order() -> None:
    parsed = parse_subid_text(SAMPLE)
    assert parsed.ranges_for("alice", 1000) == (
        IDRange(100000, 65536),
        IDRange(300000, 1000),
        IDRange(400000, 10),
    )
    assert parsed.ranges_for("bob", 1001) == (IDRange(165536, 65536),)
    assert parsed.ranges_for("zoe", 1002) == ()
    assert parsed.highest_end() == 400010


def test_load_subids_reads_the_injected_path(tmp_path: Path) -> None:
    path = tmp_path / "subuid"
    path.write_text(SAMPLE)
    assert load_subids("alice", 1000, path) == (
        IDRange(100000, 65536),
        IDRange(300000, 1000),
        IDRange(400000, 10),
    )
    assert load_subids("somebody", 1000, path) == (IDRange(300000, 1000),)


def test_load_subids_logs_malformed_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "subgid"
    path.write_text("alice:100000:65536\nalice-100000-65536\n")
    with caplog.at_level(logging.WARNING, logger="rctl.uidmap"):
        assert load_subids("alice", 1000, path) == (IDRange(100000, 65536),)
    assert f"{path}: ignored malformed line(s) 2" in caplog.text


def test_missing_file_has_no_entries(tmp_path: Path) -> None:
    assert load_subids("alice", 1000, tmp_path / "absent") == ()
    assert read_subid_file(tmp_path / "absent").entries == ()


def test_unreadable_file_is_a_host_error(tmp_path: Path) -> None:
    with pytest.raises(HostError) as caught:
        read_subid_file(tmp_path)  # a directory: read fails with EISDIR
    assert caught.value.message.startswith(f"cannot read {tmp_path}")
    assert caught.value.hint is not None
