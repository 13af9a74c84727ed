"""The ``rctl`` command line: parse flags into options, call the engine, render reports.

This module is the CLI's error boundary: an :class:`~rctlbase.errors.RctlError` becomes one
line ``Error: message`` (plus ``Hint: ...``) on stderr and its exit code (125 by default);
any other exception is a bug and keeps its traceback. ``--debug`` shows tracebacks for all.
"""

from __future__ import annotations

import logging
import sys

import click

from rctlbase.errors import RctlError
from rootless import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-v", "--version", prog_name="rctl")
@click.option("--debug", is_flag=True, help="Log every program run and show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Rootless containers, supervised by systemd."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def register_commands() -> None:
    """Short commands (docker's top level) and the grouped ones (``rctl image ...``)."""
    from rootless.cli import containers, images  # noqa: PLC0415 - keeps `rctl --version` fast

    short = (containers.run, containers.create, containers.start, containers.stop,
             containers.restart, containers.kill, containers.rm, containers.ps, containers.logs,
             containers.wait, containers.exec_, containers.pause, containers.unpause,
             containers.rename, containers.top, containers.inspect)  # fmt: skip
    for command in short:
        cli.add_command(command)
    container = click.Group("container", help="Manage containers.")
    for command in (*short[:-1], containers.container_inspect):
        container.add_command(command)
    container.add_command(containers.ps, "ls")
    container.add_command(containers.container_prune)
    cli.add_command(containers.doctor)
    cli.add_command(container)

    for command in (images.pull, images.images, images.tag, images.rmi, images.history,
                    images.login, images.logout, images.unshare, images.save, images.load,
                    images.import_, images.push):  # fmt: skip
        cli.add_command(command)

    image = click.Group("image", help="Manage images.")
    for command in (images.pull, images.image_ls, images.image_inspect, images.history,
                    images.tag, images.image_prune, images.save, images.load, images.import_,
                    images.push):  # fmt: skip
        image.add_command(command)
    image.add_command(images.rmi, "rm")
    cli.add_command(image)

    system = click.Group("system", help="Manage rctl itself.")
    system.add_command(images.system_df)
    cli.add_command(system)


register_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rctl`` console script; returns the process exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        # Without standalone mode, click returns ctx.exit()'s code instead of exiting.
        code = cli.main(args=args, prog_name="rctl", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        # Docker exits 125 for bad flags too.
        click.echo(f"Error: {exc.format_message()}", err=True)
        click.echo("Hint: see 'rctl --help' or 'rctl COMMAND --help'", err=True)
        return 125
    except RctlError as exc:
        if debug:
            raise
        click.echo(f"Error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"Hint: {exc.hint}", err=True)
        return exc.exit_code
    return code if isinstance(code, int) else 0
