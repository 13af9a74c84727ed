"""Network commands: ``rctl network create|ls|inspect|rm|prune|connect|disconnect``."""

from __future__ import annotations

import sys

import click

from rootless.cli.render import (
    FORMAT_HELP,
    INSPECT_FORMAT_HELP,
    print_formatted,
    print_inspected,
    table,
)
from rootless.cli.session import engine
from rootless.models import NetworkCreateOptions


@click.command("create")
@click.argument("name")
@click.option("--subnet", help="IPv4 subnet in CIDR form (default: the first free 10.89.N.0/24).")
@click.option("--gateway", help="The bridge's address in the subnet (default: its first host).")
@click.option("--internal", is_flag=True, help="No route out of the network.")
@click.option("-l", "--label", "labels", multiple=True, help="Set a label (KEY=VALUE).")
@click.option("-d", "--driver", default="bridge", show_default=True, help="Only bridge.")
@click.pass_context
def create(
    ctx: click.Context,
    name: str,
    subnet: str | None,
    gateway: str | None,
    internal: bool,
    labels: tuple[str, ...],
    driver: str,
) -> None:
    """Create a bridge network."""
    options = NetworkCreateOptions(name, subnet, gateway, internal, labels, driver)
    click.echo(engine(ctx).networks.create(options).name)


@click.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Print only names.")
@click.option("--format", "fmt", help=FORMAT_HELP)
@click.option(
    "-f", "--filter", "filters", multiple=True, help="name=, id=, label=, driver=, type=, scope=."
)
@click.pass_context
def ls(ctx: click.Context, quiet: bool, fmt: str | None, filters: tuple[str, ...]) -> None:
    """List networks."""
    from rootless.cli.views import NETWORK_HEADERS, network_row  # noqa: PLC0415

    rows = engine(ctx).networks.summaries(filters, builtin=True)
    if quiet:
        for row in rows:
            click.echo(row.name)
        return
    print_formatted(
        fmt,
        rows,
        view=network_row,
        default=lambda: table(
            ["NETWORK ID", "NAME", "DRIVER", "SUBNET", "INTERNAL"],
            [[r.id[:12], r.name, r.driver, r.subnet, str(r.internal).lower()] for r in rows],
        ),
        headers=NETWORK_HEADERS,
    )


@click.command("inspect")
@click.argument("networks", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", help=INSPECT_FORMAT_HELP)
@click.pass_context
def inspect(ctx: click.Context, networks: tuple[str, ...], fmt: str | None) -> None:
    """Show networks' configuration and attached containers as JSON."""
    documents = [engine(ctx).networks.inspect(ref).to_docker() for ref in networks]
    print_inspected(fmt, documents, "network")


@click.command("rm")
@click.argument("networks", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Remove the containers using them too.")
@click.pass_context
def rm(ctx: click.Context, networks: tuple[str, ...], force: bool) -> None:
    """Remove networks (refused while a container uses one, unless -f)."""
    for name in engine(ctx).networks.remove(networks, force=force):
        click.echo(name)


@click.command("prune")
@click.option("-f", "--force", is_flag=True, help="Don't ask for confirmation.")
@click.option(
    "--filter", "filters", multiple=True, help="until=24h|TIMESTAMP, label=, label!= (docker's)."
)
@click.pass_context
def prune(ctx: click.Context, force: bool, filters: tuple[str, ...]) -> None:
    """Remove every network no container uses."""
    if not force and sys.stdin.isatty():
        click.confirm("WARNING! This will remove all networks not used by containers.", abort=True)
    for name in engine(ctx).networks.prune(filters):
        click.echo(name)


@click.command("connect")
@click.argument("network")
@click.argument("container")
@click.option("--alias", "aliases", multiple=True, help="Another name on this network.")
@click.pass_context
def connect(ctx: click.Context, network: str, container: str, aliases: tuple[str, ...]) -> None:
    """Connect a container to a network (now if it runs, else at its next start)."""
    engine(ctx).networks.connect(network, container, aliases)


@click.command("disconnect")
@click.argument("network")
@click.argument("container")
@click.pass_context
def disconnect(ctx: click.Context, network: str, container: str) -> None:
    """Disconnect a container from a network."""
    engine(ctx).networks.disconnect(network, container)
