"""Times as docker writes them in inspect documents: Go's ``time.RFC3339Nano``.

Go prints up to nine fractional digits and drops the trailing zeros (``.5`` not
``.500000000``, no fraction at all for a whole second); its zero time is
``0001-01-01T00:00:00Z``. Python's datetime stops at microseconds, so image configs'
nanosecond times are parsed here by hand to keep their digits.
"""

from __future__ import annotations

import datetime
import re

ZERO_TIME = "0001-01-01T00:00:00Z"

_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?\d*([Zz]|[+-]\d{2}:\d{2})"
)


def rfc3339_nano(moment: float | None) -> str:
    """A Unix time in UTC as Go's RFC3339Nano (``2026-12-07T16:04:22.123456Z``); a
    missing time (None, 0) is Go's zero time, as docker shows a container never started."""
    if not moment:
        return ZERO_TIME
    # A float of today's Unix time holds about a tenth of a microsecond: digits past the
    # microsecond would be noise.
    micros = round(moment * 1_000_000)
    return _format(micros // 1_000_000, micros % 1_000_000 * 1000)


def rfc3339_from_ns(nanoseconds: int) -> str:
    """Nanoseconds since the epoch (exact, unlike a float) as Go's RFC3339Nano."""
    if nanoseconds <= 0:
        return ZERO_TIME
    return _format(nanoseconds // 1_000_000_000, nanoseconds % 1_000_000_000)


def _format(seconds: int, nanos: int) -> str:
    when = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    fraction = f".{nanos:09d}".rstrip("0").rstrip(".")
    return when.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def normalize_rfc3339(text: str) -> str:
    """An RFC 3339 time from an image as Go prints it after parsing: the fraction without
    trailing zeros, the zone kept (``Z`` for UTC). Text that isn't one is kept as it is."""
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        return text
    date, clock, fraction, zone = match.groups()
    fraction = f".{fraction}".rstrip("0").rstrip(".") if fraction else ""
    zone = "Z" if zone in ("Z", "z", "+00:00") else zone
    return f"{date}T{clock}{fraction}{zone}"


def parse_rfc3339(text: str) -> float | None:
    """The Unix time of an RFC 3339 text (sub-microsecond digits dropped); None if it
    isn't one."""
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        return None
    date, clock, fraction, zone = match.groups()
    micros = (fraction or "0")[:6].ljust(6, "0")
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        when = datetime.datetime.fromisoformat(f"{date}T{clock}.{micros}{zone}")
    except ValueError:
        return None
    return when.timestamp()
