"""Rendering reports: docker-style tables for people, JSON or Go templates (``--format``)
for programs."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

import click

FORMAT_HELP = "'json', a Go template ('{{.Names}}'), or 'table TEMPLATE'."
INSPECT_FORMAT_HELP = "A Go template applied to each ('{{.State.Status}}'), or 'json'."
FORMAT_HINT = (
    "--format takes 'json', a Go template such as '{{.Names}} {{.Status}}', "
    "or 'table' and a template ('table {{.ID}}\\t{{.Names}}')"
)
INSPECT_FORMAT_HINT = "-f/--format takes a Go template such as '{{.State.Status}}', or 'json'"


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


def print_formatted(
    fmt: str | None,
    items: Sequence[Any],
    *,
    view: Callable[[Any], Any],
    default: Callable[[], None],
    as_json: Callable[[], None] | None = None,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Prints ``items`` as ``--format`` asks, the way docker does.

    No format (or ``table`` alone) is the command's own ``default`` output; ``json`` is
    ``as_json`` (the items as JSON by default); anything else is a Go template applied to
    each item's ``view`` (docker's field names), a line each. With ``headers`` (a list
    command), ``table TEMPLATE`` adds a header row and aligns the columns, and ``\\t``,
    ``\\n`` written as two characters are a tab and a newline, as in docker's formatter;
    without (inspect), the template is used as given. Nothing is printed when the template
    fails: its error (a TemplateError, one line) is raised first.
    """
    if headers is not None and fmt is not None:
        fmt = fmt.strip(" ")
    if not fmt or (headers is not None and fmt == "table"):
        default()
        return
    if fmt == "json":
        (as_json or (lambda: print_json(items)))()
        return
    from rootless.cli.gotemplate import template as gotemplate  # noqa: PLC0415 - for templates

    table = headers is not None and fmt.startswith("table")
    if headers is not None:
        fmt = fmt.removeprefix("table").strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    try:
        template = gotemplate.parse(fmt)
        rows = [view(item) for item in items]
        if table:
            assert headers is not None
            text = gotemplate.render_table(template, rows, headers)
        else:
            text = "".join(template.execute(row) + "\n" for row in rows)
    except gotemplate.TemplateError as exc:
        if exc.hint == exc.default_hint:  # the command's hint beats the class's generic one
            exc.hint = FORMAT_HINT if headers is not None else INSPECT_FORMAT_HINT
        raise
    click.echo(text, nl=False)


def print_inspected(fmt: str | None, documents: Sequence[Mapping[str, Any]], kind: str) -> None:
    """inspect's output: the documents as JSON, or ``--format``'s template on each one (as
    a Go struct of type ``kind``)."""
    from rootless.cli.views import inspect_view  # noqa: PLC0415

    print_formatted(fmt, documents, view=inspect_view(kind), default=lambda: print_json(documents))
