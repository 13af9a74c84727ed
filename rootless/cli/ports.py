"""``rctl port CONTAINER [PRIVATE_PORT[/PROTO]]``: a container's published ports."""

from __future__ import annotations

import click

from rootless.cli.session import engine


@click.command("port")
@click.argument("container")
@click.argument("private_port", required=False)
@click.pass_context
def port(ctx: click.Context, container: str, private_port: str | None) -> None:
    """List port mappings, or the host addresses of one container port."""
    for line in engine(ctx).containers.port(container, private_port):
        click.echo(line)
