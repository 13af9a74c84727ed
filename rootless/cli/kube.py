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
@click.option("--down", is_flag=True, help="Remove the containers the files made instead.")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.pass_context
def play(ctx: click.Context, down: bool, files: tuple[Path, ...]) -> None:
    """Run the containers of Kubernetes Pods and Deployments (one replica), detached."""
    result = engine(ctx).kube_play(files, down=down)
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    for name in result.containers:
        click.echo(name)
