"""Volume commands: ``rctl volume create``, ``ls``, ``inspect``, ``rm``, ``prune``."""

from __future__ import annotations

import sys

import click

from rootless.cli.render import (
    FORMAT_HELP,
    INSPECT_FORMAT_HELP,
    print_formatted,
    print_inspected,
    print_json,
    table,
)
from rootless.cli.session import engine


def _pairs(values: tuple[str, ...], flag: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, _, val = value.partition("=")
        if not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint=flag)
        out[key] = val
    return out


@click.command("create")
@click.argument("name", required=False)
@click.option("-l", "--label", "labels", multiple=True, help="Set a label (KEY=VALUE).")
@click.option("-o", "--opt", "opts", multiple=True, help="Driver option: o=uid=N,gid=N.")
@click.option("-d", "--driver", default="local", show_default=True, help="Volume driver.")
@click.pass_context
def create(
    ctx: click.Context, name: str | None, labels: tuple[str, ...], opts: tuple[str, ...],
    driver: str,
) -> None:  # fmt: skip
    """Create a volume (a random name when NAME is not given)."""
    record = engine(ctx).volumes.create(name, _pairs(labels, "--label"), opts, driver)
    click.echo(record.name)


@click.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Print only names.")
@click.option("--format", "fmt", help=FORMAT_HELP)
@click.option(
    "-f", "--filter", "filters", multiple=True, help="name=, label=KEY[=VALUE], dangling=, driver=."
)
@click.pass_context
def ls(ctx: click.Context, quiet: bool, fmt: str | None, filters: tuple[str, ...]) -> None:
    """List volumes."""
    from rootless.cli.views import VOLUME_HEADERS, volume_row  # noqa: PLC0415

    records = engine(ctx).volumes.reports(filters)
    if quiet:
        for record in records:
            click.echo(record.name)
        return
    documents = [record.to_docker() for record in records]
    print_formatted(
        fmt,
        documents,
        view=volume_row,
        default=lambda: table(["DRIVER", "VOLUME NAME"], [[r.driver, r.name] for r in records]),
        as_json=lambda: print_json(documents),
        headers=VOLUME_HEADERS,
    )


@click.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", help=INSPECT_FORMAT_HELP)
@click.pass_context
def inspect(ctx: click.Context, names: tuple[str, ...], fmt: str | None) -> None:
    """Show volumes as JSON."""
    volumes = engine(ctx).volumes
    print_inspected(fmt, [volumes.inspect(name).to_docker() for name in names], "volume")


@click.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Also remove the containers using the volumes.")
@click.pass_context
def rm(ctx: click.Context, names: tuple[str, ...], force: bool) -> None:
    """Remove volumes (refused while a container uses one, unless -f)."""
    for name in engine(ctx).volumes.remove(names, force=force):
        click.echo(name)


@click.command("prune")
@click.option("-f", "--force", is_flag=True, help="Don't ask for confirmation.")
@click.option("--filter", "filters", multiple=True, help="label=, label!= (docker's).")
@click.pass_context
def prune(ctx: click.Context, force: bool, filters: tuple[str, ...]) -> None:
    """Remove every volume no container uses."""
    if not force and sys.stdin.isatty():
        click.confirm("WARNING! This will remove all volumes not used by a container. Continue?",
                      abort=True)  # fmt: skip
    for name in engine(ctx).volumes.prune(filters):
        click.echo(name)
