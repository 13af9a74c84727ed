"""Go's RFC3339Nano as docker's inspect writes times, and its parsing back."""

from __future__ import annotations

import datetime
import re

import pytest

from rootless.timestamps import (
    ZERO_TIME,
    normalize_rfc3339,
    parse_rfc3339,
    rfc3339_from_ns,
    rfc3339_nano,
)

GO_RFC3339_NANO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?(Z|[+-]\d\d:\d\d)")


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (1796659462.123456, "2026-12-07T16:04:22.123456Z"),
        (1796659462.5, "2026-12-07T16:04:22.5Z"),  # Go drops the trailing zeros
        (1796659462.0, "2026-12-07T16:04:22Z"),  # and the dot of a whole second
        (1796659462.9999999, "2026-12-07T16:04:23Z"),  # rounds up into the next second
        (0.0, ZERO_TIME),
        (None, ZERO_TIME),
    ],
)
def test_rfc3339_nano(moment: float | None, text: str) -> None:
    assert rfc3339_nano(moment) == text
    assert GO_RFC3339_NANO.fullmatch(text)


def test_from_nanoseconds_keeps_every_digit() -> None:
    assert rfc3339_from_ns(1796659462_123456789) == "2026-12-07T16:04:22.123456789Z"
    assert rfc3339_from_ns(1796659462_100000000) == "2026-12-07T16:04:22.1Z"
    assert rfc3339_from_ns(0) == ZERO_TIME


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("2024-09-26T21:31:42.184454698Z", "2024-09-26T21:31:42.184454698Z"),
        ("2024-09-26T21:31:42.180000000Z", "2024-09-26T21:31:42.18Z"),
        ("2024-09-26T21:31:42+00:00", "2024-09-26T21:31:42Z"),
        ("2024-09-26T23:31:42.5+02:00", "2024-09-26T23:31:42.5+02:00"),
        ("not a time", "not a time"),
        ("", ""),
    ],
)
def test_normalize_image_times(given: str, shown: str) -> None:
    assert normalize_rfc3339(given) == shown


def test_parse_back() -> None:
    expected = datetime.datetime(2024, 9, 26, 21, 31, 42, 184454, datetime.UTC).timestamp()
    assert parse_rfc3339("2024-09-26T21:31:42.184454698Z") == expected
    assert parse_rfc3339("2024-09-26T23:31:42.184454+02:00") == expected
    assert parse_rfc3339(rfc3339_nano(1796659462.25)) == 1796659462.25
    assert parse_rfc3339("yesterday") is None
