"""The ``rctl`` command line: parse flags into options, call the engine, render reports.

This module is the CLI's error boundary: an :class:`~rctlbase.errors.RctlError` becomes one
line ``Error: message`` (plus ``Hint: ...``) on stderr and its exit code (125 by default);
any other exception is a bug, one ``internal error`` line exiting 1. ``--debug`` (or
``RCTL_DEBUG=1``) adds the traceback to both.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from typing import Any

import click

from rctlbase.errors import RctlError, UsageError, debug_requested, report
from rctlbase.timeline import mark
from rootless import __version__

# The command tables: name -> "module:attribute" under rootless.cli. Modules are imported
# only when their command runs (or for --help), so that `rctl ps` doesn't pay for `rctl pull`.
SHORT: dict[str, str] = {
    "run": "containers:run",
    "create": "containers:create",
    "start": "containers:start",
    "stop": "containers:stop",
    "restart": "containers:restart",
    "kill": "containers:kill",
    "rm": "containers:rm",
    "ps": "containers:ps",
    "logs": "containers:logs",
    "wait": "lifecycle:wait",
    "exec": "containers:exec_",
    "pause": "containers:pause",
    "unpause": "containers:unpause",
    "rename": "containers:rename",
    "top": "containers:top",
    "inspect": "containers:inspect",
    "port": "ports:port",
    "doctor": "containers:doctor",
    "version": "system:version",
    "info": "system:info",
    "stats": "monitor:stats",
    "events": "monitor:events",
    "export": "lifecycle:export",
    "cp": "containers:cp",
    "pull": "images:pull",
    "images": "images:images",
    "tag": "images:tag",
    "rmi": "images:rmi",
    "history": "images:history",
    "login": "images:login",
    "logout": "images:logout",
    "unshare": "images:unshare",
    "save": "images:save",
    "load": "images:load",
    "import": "images:import_",
    "push": "images:push",
    "commit": "build:commit",
    "diff": "build:diff",
    "build": "build:build",
    "apply": "definitions:apply",
    "down": "definitions:down",
    "completion": "complete:completion",
    "auto-update": "autoupdate:auto_update",
}
GROUPS: dict[str, tuple[str, dict[str, str]]] = {
    "container": (
        "Manage containers.",
        {
            **{name: SHORT[name] for name in (
                "run", "create", "start", "stop", "restart", "kill", "rm", "logs", "wait",
                "exec", "pause", "unpause", "rename", "top", "cp")},
            "commit": "build:commit",
            "diff": "build:diff",
            "ls": "containers:ps",
            "ps": "containers:ps",
            "inspect": "containers:container_inspect",
            "prune": "containers:container_prune",
            "stats": "monitor:stats",
            "export": "lifecycle:export",
            "run-unit": "definitions:run_unit",
            "stopped-unit": "definitions:stopped_unit",
            "prepare-unit": "definitions:prepare_unit",
            "port": "ports:port",
        },
    ),
    "image": (
        "Manage images.",
        {
            "pull": "images:pull",
            "ls": "images:image_ls",
            "inspect": "images:image_inspect",
            "history": "images:history",
            "tag": "images:tag",
            "rm": "images:rmi",
            "prune": "images:image_prune",
            "save": "images:save",
            "load": "images:load",
            "import": "images:import_",
            "push": "images:push",
            "build": "build:build",
        },
    ),
    "builder": ("Manage the build cache.", {"prune": "build:builder_prune"}),
    "network": (
        "Manage bridge networks.",
        {
            "create": "networks:create",
            "ls": "networks:ls",
            "list": "networks:ls",
            "inspect": "networks:inspect",
            "rm": "networks:rm",
            "prune": "networks:prune",
            "connect": "networks:connect",
            "disconnect": "networks:disconnect",
        },
    ),
    "system": (
        "Manage rctl itself.",
        {
            "df": "images:system_df",
            "info": "system:info",
            "version": "system:version",
            "events": "monitor:events",
            "prune": "lifecycle:system_prune",
            "service": "system:service",
        },
    ),
    "generate": ("Generate files from definitions.", {"systemd": "definitions:generate_systemd"}),
    "healthcheck": ("Run healthchecks.", {"run": "definitions:healthcheck_run"}),
    "kube": (
        "Kubernetes YAML from containers and definitions, and back.",
        {"generate": "kube:generate", "play": "kube:play", "down": "kube:down"},
    ),
    "pod": (
        "Manage pods (containers sharing a network and published ports).",
        {
            "create": "pods:create",
            "ps": "pods:ps",
            "ls": "pods:ps",
            "list": "pods:ps",
            "inspect": "pods:inspect",
            "start": "pods:start",
            "stop": "pods:stop",
            "restart": "pods:restart",
            "kill": "pods:kill",
            "pause": "pods:pause",
            "unpause": "pods:unpause",
            "rm": "pods:rm",
            "remove": "pods:rm",
            "exists": "pods:exists",
            "prune": "pods:prune",
            "top": "pods:top",
            "logs": "pods:logs",
            "run-unit": "pods:run_unit",
        },
    ),
    "secret": (
        "Manage secrets.",
        {
            "create": "secrets:create",
            "ls": "secrets:ls",
            "list": "secrets:ls",
            "inspect": "secrets:inspect",
            "rm": "secrets:rm",
            "remove": "secrets:rm",
            "exists": "secrets:exists",
        },
    ),
    "volume": (
        "Manage volumes.",
        {
            "create": "volumes:create",
            "ls": "volumes:ls",
            "list": "volumes:ls",
            "inspect": "volumes:inspect",
            "rm": "volumes:rm",
            "remove": "volumes:rm",
            "prune": "volumes:prune",
        },
    ),
}  # fmt: skip


class LazyGroup(click.Group):
    """A group whose commands are imported from a table when first needed."""

    def __init__(self, *args: Any, table: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.table = table

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.table, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = self.table.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(f"rootless.cli.{module}"), attribute)
        mark(f"cli: {cmd_name} imported")
        # The command's imports are done and their objects (classes, functions, modules)
        # live as long as the process: move them out of the collector's reach for good,
        # then let it run again (main paused it for the imports).
        gc.freeze()
        gc.enable()
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        if os.environ.get("_RCTL_COMPLETE"):
            from rootless.cli.complete import attach_completion  # noqa: PLC0415

            attach_completion(module, command)
        return command


@click.group(cls=LazyGroup, table={}, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-v", "--version", prog_name="rctl")
@click.option("--debug", is_flag=True, help="Log every program run and show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Rootless containers, supervised by systemd."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    # click has imported the subcommand's module by now. Without --debug, logging is set up
    # only if that brought it in (importing it costs every command, `run` included).
    if debug or "logging" in sys.modules:
        import logging  # noqa: PLC0415

        logging.basicConfig(
            level=logging.DEBUG if debug else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
        )


def register_commands() -> None:
    """Short commands (docker's top level) and the grouped ones (``rctl image ...``)."""
    cli.table = dict(SHORT)
    for name, (help_text, table) in GROUPS.items():
        cli.add_command(LazyGroup(name, help=help_text, table=table))


register_commands()


def entry() -> None:
    """The ``rctl`` console script: :func:`main`, then out without the interpreter's
    tear-down (module and object finalization, some 8 ms after every command). What
    rctl writes is written by then: its files are closed, and its streams are flushed
    here."""
    code = main()
    mark("cli: done")
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more to say
            code = code or 1
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rctl`` console script; returns the process exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = debug_requested(args)
    # Start-up time: the cyclic collector would scan the objects of every import over and
    # over while the command's modules load, and after them in each full collection: about
    # a fifth of `rctl run -d`'s CPU in the test host. Paused until LazyGroup.get_command
    # has imported the command.
    gc.disable()
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
        report(UsageError(exc.format_message(), hint="see 'rctl --help' or 'rctl COMMAND --help'"))
        return 125
    except Exception as exc:
        report(exc, debug=debug)
        return exc.exit_code if isinstance(exc, RctlError) else 1
    return code if isinstance(code, int) else 0
