"""``rctl kube generate`` (Kubernetes YAML from containers or a definition file) and
``rctl kube play`` (containers from Kubernetes YAML)."""

from __future__ import annotations

from pathlib import Path

import click

from rootless.cli.session import engine


@click.command("generate")
@click.option(
    "--type",
    "kind",
    type=click.Choice(["pod", "deployment"], case_sensitive=False),
    default="pod",
    show_default=True,
    help="The workload: a bare Pod or a Deployment of one replica.",
)
@click.option("--service", "-s", is_flag=True, help="Add a Service for the published ports.")
@click.option(
    "--filename",
    "-f",
    "output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the YAML to this file instead of standard output.",
)
@click.argument("refs", nargs=-1, required=True, metavar="CONTAINER...|FILE.toml")
@click.pass_context
def generate(
    ctx: click.Context, kind: str, service: bool, output: Path | None, refs: tuple[str, ...]
) -> None:
    """Print Kubernetes YAML (Pod or Deployment, claims, Service) for containers."""
    text = engine(ctx).kube_generate(refs, kind, service)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)


@click.command("play")
@click.option("--down", is_flag=True, help="Remove what the files made instead.")
@click.option("--force", is_flag=True, help="With --down: remove the claims' volumes too.")
@click.option("--replace", is_flag=True, help="Remove what the files made first, then play.")
@click.option("--start/--no-start", default=True, help="Start the containers (default).")
@click.option("--network", help="Run every container on this network (a mode or a name).")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.pass_context
def play(
    ctx: click.Context,
    down: bool,
    force: bool,
    replace: bool,
    start: bool,
    network: str | None,
    files: tuple[Path, ...],
) -> None:
    """Make the volumes, secrets and containers of Kubernetes YAML (Pods, Deployments of
    one replica, ConfigMaps, Secrets, PersistentVolumeClaims)."""
    result = engine(ctx).kube_play(
        files, down=down, replace=replace, start=start, network=network, force=force
    )
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    for name in result.containers:
        click.echo(name)


@click.command("down")
@click.option("--force", is_flag=True, help="Remove the claims' volumes too.")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.pass_context
def down(ctx: click.Context, force: bool, files: tuple[Path, ...]) -> None:
    """Remove what 'kube play' made of the files (volumes only with --force)."""
    result = engine(ctx).kube_play(files, down=True, force=force)
    for name in result.containers:
        click.echo(name)
