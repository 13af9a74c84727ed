"""``rctl stats`` and ``rctl events``: watching containers, in docker's shapes.

``stats`` prints docker's table (``--format`` templates see docker's row fields ``.ID``,
``.Name``, ``.CPUPerc``, ``.MemUsage``...), refreshed in place on a terminal, as a block per
reading otherwise, once with ``--no-stream``. ``events`` prints docker's line per event
(``TIME TYPE ACTION ID (k=v, ...)``), or a template over docker's message fields.
"""

from __future__ import annotations

import datetime
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

from rootless.cli.render import FORMAT_HINT, human_size
from rootless.cli.session import engine

if TYPE_CHECKING:
    from rootless.cli.gotemplate.values import Struct

STATS_HEADERS = {
    "Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}  # fmt: skip
STATS_TABLE = (
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}"
    "\t{{.BlockIO}}\t{{.PIDs}}"
)
STATS_FORMAT_HELP = "'json', a Go template ('{{.Name}} {{.MemUsage}}'), or 'table TEMPLATE'."
EVENTS_FORMAT_HELP = "'json', or a Go template ('{{.Type}} {{.Action}} {{.Actor.ID}}')."


def binary_size(size: float) -> str:
    """docker's units.BytesSize: binary units, four significant digits (1.5MiB)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.4g}{unit}"
        size /= 1024
    return f"{size:.4g}TiB"


def stats_row(reading: Any, given: str, *, no_trunc: bool) -> Struct:
    """docker's statsContext over one reading (``given``: the name the user typed)."""
    from rootless.cli.gotemplate.values import Struct  # noqa: PLC0415

    rx, tx = reading.net_io()
    if reading.running:
        cpu, mem_perc = f"{reading.cpu_percent():.2f}%", f"{reading.memory_percent():.2f}%"
        usage = f"{binary_size(reading.memory_used())} / {binary_size(reading.memory_limit)}"
    else:
        cpu, mem_perc, usage = "0.00%", "0.00%", "0B / 0B"
    return Struct(
        "stats row",
        {
            "Container": given or (reading.id if no_trunc else reading.id[:12]),
            "ID": reading.id if no_trunc else reading.id[:12],
            "Name": reading.name,
            "CPUPerc": cpu,
            "MemUsage": usage,
            "MemPerc": mem_perc,
            "NetIO": f"{human_size(rx)} / {human_size(tx)}",
            "BlockIO": f"{human_size(reading.block_read)} / {human_size(reading.block_write)}",
            "PIDs": str(reading.pids),
        },
        json_sorted=True,
    )


def render_stats(fmt: str | None, rows: Sequence[Struct]) -> str:
    """The text of one reading: the table, a template per row, or a JSON line per row."""
    from rootless.cli.gotemplate import template as gotemplate  # noqa: PLC0415

    fmt = (fmt or "").strip(" ")
    if fmt == "json":
        return "".join(json.dumps(row.data(), sort_keys=True) + "\n" for row in rows)
    if not fmt or fmt == "table":
        fmt = STATS_TABLE
    is_table = fmt.startswith("table")
    fmt = fmt.removeprefix("table").strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    try:
        parsed = gotemplate.parse(fmt)
        if is_table:
            return gotemplate.render_table(parsed, rows, STATS_HEADERS)
        return "".join(parsed.execute(row) + "\n" for row in rows)
    except gotemplate.TemplateError as exc:
        if exc.hint == exc.default_hint:
            exc.hint = FORMAT_HINT.replace("{{.Names}} {{.Status}}", "{{.Name}} {{.CPUPerc}}")
        raise


@click.command("stats")
@click.argument("containers", nargs=-1)
@click.option("-a", "--all", "all_containers", is_flag=True, help="Stopped containers too.")
@click.option("--no-stream", is_flag=True, help="One reading, then exit.")
@click.option("--no-trunc", is_flag=True, help="Full container IDs.")
@click.option("--format", "fmt", help=STATS_FORMAT_HELP)
@click.pass_context
def stats(
    ctx: click.Context,
    containers: tuple[str, ...],
    all_containers: bool,
    no_stream: bool,
    no_trunc: bool,
    fmt: str | None,
) -> None:
    """Show containers' CPU, memory, network, block I/O and process counts."""
    render_stats(fmt, [])  # a bad template fails before the first reading
    readings = engine(ctx).stats(containers, all_containers=all_containers)
    given = dict(zip(containers, containers, strict=True))

    def text(batch: Iterable[Any]) -> str:
        rows = [stats_row(r, _given(r, given), no_trunc=no_trunc) for r in batch]
        return render_stats(fmt, rows)

    if no_stream:
        click.echo(text(next(readings)), nl=False)
        return
    if sys.stdout.isatty():
        _live(readings, text)
        return
    try:
        for batch in readings:
            click.echo(text(batch), nl=False)
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass


def _given(reading: Any, given: dict[str, str]) -> str:
    """The name the user typed for this reading's container (docker's .Container)."""
    for ref in given:
        if ref in (reading.name, reading.id) or reading.id.startswith(ref):
            return ref
    return ""


def _live(readings: Iterable[Any], text: Callable[[Iterable[Any]], str]) -> None:
    """Each reading replaces the one before on the terminal, until Ctrl-C."""
    from rich.console import Console  # noqa: PLC0415 - only on a terminal
    from rich.live import Live  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    with Live(console=Console(highlight=False), auto_refresh=False, transient=False) as live:
        try:
            for batch in readings:
                live.update(Text(text(batch).rstrip("\n")), refresh=True)
        except KeyboardInterrupt:
            pass


def event_line(message: dict[str, Any]) -> str:
    """docker's line: ``TIME TYPE ACTION ID (k=v, k=v)``, the time local and nanosecond."""
    nano = int(message["timeNano"])
    when = datetime.datetime.fromtimestamp(nano // 1_000_000_000).astimezone()
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{nano % 1_000_000_000:09d}"
    offset = when.strftime("%z")
    stamp += "Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}"
    actor = message["Actor"]
    line = f"{stamp} {message['Type']} {message['Action']} {actor['ID']}"
    attributes = sorted(actor["Attributes"].items())
    if attributes:
        line += " (" + ", ".join(f"{k}={v}" for k, v in attributes) + ")"
    return line


def event_struct(message: dict[str, Any]) -> Struct:
    """docker's events.Message as a Go struct (its Go field names)."""
    from rootless.cli.gotemplate.values import Struct  # noqa: PLC0415

    actor = message["Actor"]
    return Struct(
        "events.Message",
        {
            "Status": message.get("status", ""),
            "ID": message.get("id", ""),
            "From": message.get("from", ""),
            "Type": message["Type"],
            "Action": message["Action"],
            "Actor": Struct(
                "events.Actor", {"ID": actor["ID"], "Attributes": dict(actor["Attributes"])}
            ),
            "Scope": message["scope"],
            "Time": message["time"],
            "TimeNano": message["timeNano"],
        },
    )


@click.command("events")
@click.option("--since", help="Show events since (timestamp, RFC 3339 or 10m ago).")
@click.option("--until", help="Stop at (timestamp, RFC 3339 or 10m ago).")
@click.option("-f", "--filter", "filters", multiple=True, help="container=, event=, image=, "
              "label=, network=, type=, volume=, scope= (docker's).")  # fmt: skip
@click.option("--format", "fmt", help=EVENTS_FORMAT_HELP)
@click.pass_context
def events(
    ctx: click.Context,
    since: str | None,
    until: str | None,
    filters: tuple[str, ...],
    fmt: str | None,
) -> None:
    """Show what happens to containers, images, volumes and networks (until Ctrl-C)."""
    show = _event_printer(fmt)
    stream = engine(ctx).events(since, until, filters)
    try:
        for event in stream:
            click.echo(show(event.to_docker()))
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass


def _event_printer(fmt: str | None) -> Callable[[dict[str, Any]], str]:
    if not fmt:
        return event_line
    if re.fullmatch(r"json|\{\{-?\s*json\s+\.\s*-?\}\}", fmt.strip()):
        # docker marshals the message with its JSON names (timeNano, scope...), which
        # differ from the Go field names templates see (.TimeNano, .Scope).
        return json.dumps
    from rootless.cli.gotemplate import template as gotemplate  # noqa: PLC0415

    try:
        parsed = gotemplate.parse(fmt)
    except gotemplate.TemplateError as exc:
        exc.hint = "--format takes 'json' or a Go template such as '{{.Type}} {{.Action}}'"
        raise
    return lambda message: parsed.execute(event_struct(message))
