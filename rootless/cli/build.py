"""Images made from containers and Dockerfiles: ``commit``, ``diff``, ``build``,
``builder prune``."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import click

from rootless.cli.buildprogress import TtyProgress, wanted
from rootless.cli.session import engine
from rootless.models import BuildOptions, CommitOptions

MAX_STDIN_DOCKERFILE = 4 << 20


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


@click.command("build")
@click.argument("context", default=".")
@click.option("-t", "--tag", "tags", multiple=True, help="Name the image NAME[:TAG] (repeatable).")
@click.option("-f", "--file", "dockerfile", help="The Dockerfile (default: CONTEXT/Containerfile "
              "or CONTEXT/Dockerfile; - reads it from standard input).")  # fmt: skip
@click.option("--build-arg", "build_args", multiple=True, help="NAME=VALUE for an ARG.")
@click.option("--target", help="Build up to this stage.")
@click.option("--no-cache", is_flag=True, help="Run every step, reusing no cached one.")
@click.option(
    "--pull", "pull", flag_value="always", default="missing",
    type=click.Choice(["always", "missing", "never"]), is_flag=False,
    help="Pull FROM images: always, missing (default) or never; --pull alone is always.",
)  # fmt: skip
@click.option("--label", "labels", multiple=True, help="KEY=VALUE label of the image.")
@click.option(
    "--secret", "secrets", multiple=True, help="id=ID,src=FILE for RUN --mount=type=secret."
)
@click.option("--iidfile", type=click.Path(dir_okay=False), help="Write the image ID there.")
@click.option("--network", help="Network of RUN steps (none, host, slirp4netns, pasta).")
@click.option("--platform", help="The host's platform (linux/amd64 here); others are refused.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image ID.")
@click.option(
    "--progress", type=click.Choice(["auto", "plain", "tty"]), default="auto",
    help="tty: a live line under the output; plain: lines only; auto: tty on a terminal.",
)  # fmt: skip
@click.pass_context
def build(
    ctx: click.Context, context: str, tags: tuple[str, ...], dockerfile: str | None,
    build_args: tuple[str, ...], target: str | None, no_cache: bool, pull: str,
    labels: tuple[str, ...], secrets: tuple[str, ...], iidfile: str | None,
    network: str | None, platform: str | None, quiet: bool, progress: str,
) -> None:  # fmt: skip
    """Build an image from a Dockerfile and a context directory."""
    with contextlib.ExitStack() as stack:
        if context == "-" or dockerfile == "-":
            text = sys.stdin.buffer.read(MAX_STDIN_DOCKERFILE + 1)
            if len(text) > MAX_STDIN_DOCKERFILE:
                raise click.BadParameter("the Dockerfile on standard input is too large")
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rctl-build-")))
            (scratch / "Dockerfile").write_bytes(text)
            dockerfile = str(scratch / "Dockerfile")
            if context == "-":
                context = str(scratch)
        options = BuildOptions(
            context=context, dockerfile=dockerfile, tags=tags, build_args=build_args,
            target=target, no_cache=no_cache, pull=pull, labels=labels, network=network,
            secrets=secrets, platform=platform,
        )  # fmt: skip
        devnull = stack.enter_context(open(os.devnull, "rb+"))
        out = devnull.fileno() if quiet else 1
        err = devnull.fileno() if quiet else 2

        def say(line: str) -> None:
            if not quiet:
                click.echo(line)

        if wanted(progress, quiet, sys.stdout.isatty()):
            view = stack.enter_context(TtyProgress())
            say, out, err = view.say, view.out_fd, view.out_fd
        image = engine(ctx).build(options, say, (devnull.fileno(), out, err))
    if not quiet:
        for tag in tags:
            click.echo(f"Successfully tagged {tag}")
    if iidfile:
        Path(iidfile).write_text(image.id)
    click.echo(image.id.removeprefix("sha256:") if not quiet else image.id)


@click.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Accepted: the whole cache is cleared.")
@click.option("-f", "--force", is_flag=True, help="Don't ask (rctl never asks).")
@click.pass_context
def builder_prune(ctx: click.Context, all_: bool, force: bool) -> None:
    """Forget the build cache (its images are removed by image prune)."""
    del all_, force
    count = engine(ctx).builder_prune()
    click.echo(f"Forgot {count} cached steps")
