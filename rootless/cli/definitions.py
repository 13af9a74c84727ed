"""Definition commands: ``apply``, ``down``, ``generate systemd``, ``healthcheck run``, and
the generated units' own (hidden) ``container run-unit`` / ``stopped-unit`` /
``prepare-unit``."""

from __future__ import annotations

from pathlib import Path

import click

from rootless.cli.session import engine
from rootless.models import DefinitionAction

FILES = click.option(
    "-f",
    "--file",
    "files",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="A definition file, or a directory of *.toml files (repeatable).",
)


def _say(action: DefinitionAction) -> None:
    click.echo(action.describe())


@click.command("apply")
@FILES
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.pass_context
def apply(ctx: click.Context, files: tuple[Path, ...], dry_run: bool) -> None:
    """Make containers, volumes and networks what the definition files say."""
    actions = engine(ctx).definitions.apply(files, dry_run=dry_run, report=_say)
    if dry_run:
        for action in actions:
            click.echo(action.describe())
    if not actions:
        click.echo("nothing defined")


@click.command("down")
@FILES
@click.option("--volumes", "-v", is_flag=True, help="Remove the files' volumes too.")
@click.pass_context
def down(ctx: click.Context, files: tuple[Path, ...], volumes: bool) -> None:
    """Remove the containers (and networks; volumes with -v) the files define."""
    engine(ctx).definitions.down(files, volumes=volumes, report=_say)


@click.command("systemd")
@click.argument("ref")
@click.pass_context
def generate_systemd(ctx: click.Context, ref: str) -> None:
    """Print the unit of a defined container (NAME), or of each container of FILE."""
    units = engine(ctx).definitions.generate(ref)
    for i, (name, text) in enumerate(units):
        if len(units) > 1:
            click.echo(("\n" if i else "") + f"# ---- {name}")
        click.echo(text, nl=False)


@click.command("run")
@click.argument("container")
@click.pass_context
def healthcheck_run(ctx: click.Context, container: str) -> None:
    """Run the container's healthcheck once: exit 0 when it passed, 1 when not."""
    passed, status = engine(ctx).healthcheck_run(container)
    if not passed:
        # podman prints "unhealthy" for a failed check, whatever the streak says yet.
        click.echo("unhealthy" if status != "starting" else "starting")
        ctx.exit(1)


@click.command("run-unit", hidden=True)
@click.option("--definition", type=click.Path(path_type=Path), required=True)
@click.argument("name")
@click.pass_context
def run_unit(ctx: click.Context, definition: Path, name: str) -> None:
    """ExecStart= of a generated unit: run the defined container in this unit."""
    engine(ctx).definitions.run_unit(definition, name)


@click.command("stopped-unit", hidden=True)
@click.argument("name")
@click.pass_context
def stopped_unit(ctx: click.Context, name: str) -> None:
    """ExecStopPost= of a generated unit: record how the container ended."""
    engine(ctx).definitions.stopped_unit(name)


@click.command("prepare-unit", hidden=True)
@click.option("--definition", type=click.Path(path_type=Path), required=True)
@click.option("--network", help="Make this network of the file if it is missing.")
@click.option("--volume", help="Make this volume of the file if it is missing.")
@click.option("--image", "container", help="Pull this container's image per its policy.")
@click.option("--build", "built", help="Build this container's image if missing or stale.")
@click.pass_context
def prepare_unit(
    ctx: click.Context,
    definition: Path,
    network: str | None,
    volume: str | None,
    container: str | None,
    built: str | None,
) -> None:
    """ExecStart= of a generated network, volume, image or build unit."""
    chosen = [v for v in (network, volume, container, built) if v is not None]
    if len(chosen) != 1:
        raise click.UsageError("give one of --network, --volume, --image, --build")
    definitions = engine(ctx).definitions
    if network is not None:
        definitions.prepare_network(definition, network)
    elif volume is not None:
        definitions.prepare_volume(definition, volume)
    elif container is not None:
        definitions.prepare_image(definition, container)
    elif built is not None:
        definitions.prepare_build(definition, built)
