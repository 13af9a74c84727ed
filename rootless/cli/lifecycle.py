"""``rctl wait``, ``rctl export`` and ``rctl system prune``: docker's flags and output."""

from __future__ import annotations

import os
import sys

import click

from rctlbase.errors import UsageError
from rootless.cli.session import engine

PRUNE_WARNING = "WARNING! This will remove:"


@click.command("wait")
@click.argument("containers", nargs=-1, required=True)
@click.option(
    "--condition",
    default="not-running",
    show_default=True,
    help="not-running, next-exit or removed.",
)
@click.pass_context
def wait(ctx: click.Context, containers: tuple[str, ...], condition: str) -> None:
    """Wait for containers to stop (or exit next, or be removed); print their exit codes."""
    for ref in containers:
        click.echo(engine(ctx).wait(ref, condition))


@click.command("export")
@click.argument("container")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file.")
@click.pass_context
def export(ctx: click.Context, container: str, output: str | None) -> None:
    """Write a container's filesystem as a tar archive to stdout (or -o FILE)."""
    if output is None:
        if sys.stdout.isatty():
            raise UsageError(
                "cowardly refusing to write the archive to a terminal",
                hint="use -o FILE or redirect the output",
            )
        sys.stdout.flush()
        engine(ctx).export(container, sys.stdout.fileno())
        return
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        engine(ctx).export(container, fd)
    except BaseException:
        os.close(fd)
        os.unlink(output)
        raise
    os.close(fd)


@click.command("prune")
@click.option(
    "-a", "--all", "all_images", is_flag=True, help="Every unused image, not only dangling ones."
)
@click.option("--volumes", is_flag=True, help="Unused volumes too.")
@click.option("-f", "--force", is_flag=True, help="Don't ask for confirmation.")
@click.option(
    "--filter", "filters", multiple=True, help="until=24h|TIMESTAMP, label=, label!= (docker's)."
)
@click.pass_context
def system_prune(
    ctx: click.Context, all_images: bool, volumes: bool, force: bool, filters: tuple[str, ...]
) -> None:
    """Remove stopped containers, unused networks, dangling (-a: unused) images, and
    (--volumes) unused volumes."""
    if not force and sys.stdin.isatty():
        what = [
            "all stopped containers",
            "all networks not used by at least one container",
            *(["all volumes not used by at least one container"] if volumes else []),
            "all images without at least one container associated to them"
            if all_images
            else "all dangling images",
        ]
        lines = "\n".join(f"  - {item}" for item in what)
        click.confirm(f"{PRUNE_WARNING}\n{lines}\n\nAre you sure you want to continue?", abort=True)
    report = engine(ctx).system_prune(all_images=all_images, volumes=volumes, filters=filters)
    sections = (
        ("Deleted Containers:", report.containers),
        ("Deleted Networks:", report.networks),
        ("Deleted Volumes:", report.volumes),
        ("Deleted Images:", tuple(f"deleted: {image}" for image in report.images)),
    )
    for title, items in sections:
        if items:
            click.echo("\n".join((title, *items)) + "\n")
