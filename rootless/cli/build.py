"""Images made from containers and Dockerfiles: ``commit``, ``diff``."""

from __future__ import annotations

import click

from rootless.cli.images import engine
from rootless.models import CommitOptions


@click.command("commit")
@click.argument("container")
@click.argument("name", required=False)
@click.option(
    "-c",
    "--change",
    "changes",
    multiple=True,
    help='Dockerfile instruction for the new image, e.g. --change "CMD [\\"sh\\"]".',
)
@click.option("-m", "--message", default="", help="Commit message (the history's comment).")
@click.option("-a", "--author", default="", help='Author, e.g. "Jane <jane@example.com>".')
@click.option(
    "-p/-P",
    "--pause/--no-pause",
    default=True,
    help="Freeze the container while its layer is read (default: yes, as docker).",
)
@click.option(
    "-q", "--quiet", is_flag=True, help="Accepted for podman's sake: only the ID is printed."
)
@click.pass_context
def commit(
    ctx: click.Context,
    container: str,
    name: str | None,
    changes: tuple[str, ...],
    message: str,
    author: str,
    pause: bool,
    quiet: bool,
) -> None:
    """Create an image from a container's changes (running or stopped)."""
    del quiet
    options = CommitOptions(container, name, changes, message, author, pause)
    image = engine(ctx).commit(options)
    click.echo(image.id)


@click.command("diff")
@click.argument("container")
@click.pass_context
def diff(ctx: click.Context, container: str) -> None:
    """List what a container changed in its image: A added, C changed, D deleted."""
    for change in engine(ctx).diff(container):
        click.echo(f"{change.kind} {change.path}")
