"""Rendering reports: docker-style tables for people, JSON for programs, progress on a TTY."""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

import click


def human_size(size: float) -> str:
    """Bytes the way docker prints them (decimal units: 1.2MB, 4.56GB)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.3g}{unit}" if unit != "B" else f"{int(size)}B"
        size /= 1000
    return f"{size}TB"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns separated by at least three spaces, like docker's tabwriter."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    for row in [headers, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        click.echo("   ".join(cells).rstrip())


def to_jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    click.echo(json.dumps(to_jsonable(value), indent=4, sort_keys=False))


def age(created: str, now: datetime.datetime | None = None) -> str:
    """``2 hours ago`` from an RFC 3339 timestamp, like docker's CREATED column."""
    if not created:
        return "N/A"
    try:
        when = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return created
    now = now or datetime.datetime.now(datetime.UTC)
    seconds = int((now - when).total_seconds())
    for unit, length in (("year", 31536000), ("month", 2592000), ("week", 604800),
                         ("day", 86400), ("hour", 3600), ("minute", 60)):  # fmt: skip
        if seconds >= length:
            count = seconds // length
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "Less than a minute ago" if seconds >= 0 else created
