"""``rctl auto-update``: pull newer images of labelled containers, restart, roll back."""

from __future__ import annotations

import dataclasses
import json

import click

from rootless.cli.render import table
from rootless.cli.session import engine

COLUMNS = ("UNIT", "CONTAINER", "IMAGE", "POLICY", "UPDATED")


@click.command("auto-update")
@click.option("--dry-run", is_flag=True, help="Say which containers would update; change nothing.")
@click.option(
    "--rollback/--no-rollback",
    default=True,
    show_default=True,
    help="Go back to the previous image when the unit fails on the new one.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=120,
    show_default=True,
    help="Seconds a restarted unit has to be active (and healthy, with a healthcheck).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def auto_update(
    ctx: click.Context, dry_run: bool, rollback: bool, timeout: float, fmt: str
) -> None:
    """Update the images of containers labelled io.rctl.autoupdate=registry|local.

    Containers run by units of definition files (auto_update = "registry") are restarted
    on the new image; one whose unit does not start, or whose healthcheck does not pass,
    within the timeout goes back to its previous image. Exits 1 when any update failed.
    rctl-auto-update.timer runs this daily once enabled:
    systemctl --user enable --now rctl-auto-update.timer
    """
    reports = engine(ctx).auto_update(dry_run=dry_run, rollback=rollback, timeout=timeout)
    if fmt == "json":
        click.echo(json.dumps([dataclasses.asdict(r) for r in reports], indent=2))
    else:
        table(COLUMNS, [(r.unit, r.container, r.image, r.policy, r.updated) for r in reports])
    if any(r.updated == "rolled back" or r.updated.startswith("failed") for r in reports):
        ctx.exit(1)
