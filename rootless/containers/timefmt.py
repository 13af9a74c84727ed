"""docker's ways of writing times: ``--since``/``--until`` values, "3 minutes ago"."""

from __future__ import annotations

import datetime
import re
import time

from rctlbase.errors import UsageError


def parse_time(text: str, flag: str) -> datetime.datetime:
    """docker's --since/--until: RFC 3339, a Unix timestamp, or a duration ago (10m, 1h30m)."""
    try:
        return datetime.datetime.fromtimestamp(float(text), datetime.UTC)
    except (ValueError, OverflowError, OSError):  # not a number, or no date (1e400, nan)
        pass
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
    except ValueError:
        pass
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not text or match is None:
        raise UsageError(
            f"invalid {flag} {text!r}",
            hint="give a timestamp (2024-01-31T10:00:00) or a duration (10m, 1h30m)",
        )
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    try:
        delta = datetime.timedelta(hours=hours, minutes=minutes, seconds=seconds)
        return datetime.datetime.now(datetime.UTC) - delta
    except OverflowError:  # before year 1
        raise UsageError(
            f"invalid {flag} {text!r}: too long ago", hint="give a shorter duration"
        ) from None


def ago(moment: float, *, suffix: bool = True) -> str:
    seconds = max(0, int(time.time() - moment))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            text = f"{n} {unit}{'s' if n > 1 else ''}"
            break
    else:
        text = (
            "Less than a second" if seconds < 1 else f"{seconds} second{'s' if seconds > 1 else ''}"
        )
    return f"{text} ago" if suffix else text
