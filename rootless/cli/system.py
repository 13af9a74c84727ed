"""``rctl version`` and ``rctl info``: docker's two reports, as text, JSON or a template."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click

from rootless.cli.render import print_formatted, print_json
from rootless.cli.session import engine

VERSION_FORMAT_HELP = "'json', or a Go template ('{{.Server.Version}}')."
INFO_FORMAT_HELP = "'json', or a Go template ('{{.Driver}}', '{{json .}}')."


@click.command("version")
@click.option("-f", "--format", "fmt", help=VERSION_FORMAT_HELP)
@click.pass_context
def version(ctx: click.Context, fmt: str | None) -> None:
    """Show rctl's version, the API version and the versions of what it runs on."""
    show(fmt, engine(ctx).version().cli_document(), "version", render_version)


@click.command("info")
@click.option("-f", "--format", "fmt", help=INFO_FORMAT_HELP)
@click.pass_context
def info(ctx: click.Context, fmt: str | None) -> None:
    """Show how rctl is set up here: storage, runtime, cgroups, networks, counts."""
    show(fmt, engine(ctx).info().to_docker(), "info", render_info)


@click.command("service")
@click.option(
    "-t",
    "--time",
    "idle",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Exit after this many seconds without a connection (0: never).",
)
@click.argument("uri", required=False)
def service(idle: float, uri: str | None) -> None:
    """Serve the Docker-compatible API (default: unix://$XDG_RUNTIME_DIR/rctl/rctl.sock).

    Clients find it with DOCKER_HOST=unix://$XDG_RUNTIME_DIR/rctl/rctl.sock. Started by
    systemd's rctl.socket it uses the socket passed in.
    """
    from rootless.api.service import serve  # noqa: PLC0415 - start-up time

    serve(uri, idle, lambda text: click.echo(f"Warning: {text}", err=True))


def show(fmt: str | None, report: Mapping[str, Any], kind: str, text: Any) -> None:
    """docker's ways: text by default, ``json`` as one JSON document (``docker version
    --format json`` prints one line), else a Go template over the document."""
    from rootless.cli.views import inspect_view  # noqa: PLC0415

    if fmt == "json":
        import json  # noqa: PLC0415

        click.echo(json.dumps(report))
        return
    from rootless.cli.gotemplate.template import TemplateError  # noqa: PLC0415

    try:
        print_formatted(
            fmt,
            [report],
            view=inspect_view(kind),
            default=lambda: click.echo("\n".join(text(report))),
            as_json=lambda: print_json(report),
        )
    except TemplateError as exc:
        exc.hint = f"-f/--format takes 'json' or a Go template such as {EXAMPLES[kind]}"
        raise


EXAMPLES = {"version": "'{{.Server.Version}}'", "info": "'{{.Driver}}' or '{{json .}}'"}


def render_version(report: Mapping[str, Any]) -> list[str]:
    """``rctl version``'s text, laid out as docker's."""
    client, server = report["Client"], report["Server"]
    lines = ["Client:"]
    lines += _pairs(" ", [
        ("Version", client["Version"]), ("API version", client["ApiVersion"]),
        ("Python version", client["PythonVersion"]), ("Git commit", client["GitCommit"]),
        ("OS/Arch", f"{client['Os']}/{client['Arch']}"), ("Context", client["Context"]),
    ])  # fmt: skip
    lines += ["", f"Server: {server['Platform']['Name']}"]
    for component in server["Components"]:
        lines.append(f" {component['Name']}:")
        details = component["Details"]
        pairs = [("Version", component["Version"])]
        if component["Name"] == "Engine":
            pairs += [
                ("API version", f"{details['ApiVersion']} (minimum version "
                 f"{details['MinAPIVersion']}; the REST API to come will serve it)"),
                ("Python version", details["PythonVersion"]), ("Git commit", details["GitCommit"]),
                ("OS/Arch", f"{details['Os']}/{details['Arch']}"),
                ("Kernel version", details["KernelVersion"]),
            ]  # fmt: skip
        lines += _pairs("  ", pairs)
    return lines


def render_info(report: Mapping[str, Any]) -> list[str]:
    """``rctl info``'s text, laid out as docker's."""
    rctl = report["Rctl"]
    lines = ["Server:"]
    lines += [
        f" Containers: {report['Containers']}",
        f"  Running: {report['ContainersRunning']}",
        f"  Paused: {report['ContainersPaused']}",
        f"  Stopped: {report['ContainersStopped']}",
        f" Images: {report['Images']}",
        f" Server Version: {report['ServerVersion']}",
        f" Storage Driver: {report['Driver']}",
    ]
    lines += [f"  {key}: {value}" for key, value in report["DriverStatus"] if value]
    lines += [
        f" Logging Driver: {report['LoggingDriver']}",
        f" Cgroup Driver: {report['CgroupDriver']}",
        f" Cgroup Version: {report['CgroupVersion'] or 'unknown'}",
        f" Cgroup Controllers: {' '.join(rctl['CgroupControllers']) or 'none delegated'}",
        " Plugins:",
        f"  Volume: {' '.join(report['Plugins']['Volume'])}",
        f"  Network: {' '.join(report['Plugins']['Network'])}",
        f"  Log: {' '.join(report['Plugins']['Log'])}",
        f" Runtimes: {' '.join(report['Runtimes'])}",
        f" Default Runtime: {report['DefaultRuntime']}",
        f" Default Network: {rctl['DefaultNetwork']}",
        " Security Options:",
        *(f"  {option}" for option in report["SecurityOptions"]),
        f" Rootless: {str(rctl['Rootless']).lower()}",
        f" Kernel Version: {report['KernelVersion']}",
        f" Operating System: {report['OperatingSystem']}",
        f" OSType: {report['OSType']}",
        f" Architecture: {report['Architecture']}",
        f" CPUs: {report['NCPU']}",
        f" Total Memory: {report['MemTotal'] / 2**30:.2f}GiB",
        f" Name: {report['Name']}",
        f" Docker Root Dir: {report['DockerRootDir']}",
        f" Run Root: {rctl['RunRoot']}",
        # The socket rctl.socket listens on (rctl system service's default): docker clients
        # find the API there.
        f" API Socket: export DOCKER_HOST=unix://{rctl['RunRoot']}/rctl.sock",
        " Registries:",
        f"  Search: {', '.join(rctl['Registries']['Search']) or '-'}",
        f"  Insecure: {', '.join(rctl['Registries']['Insecure']) or '-'}",
    ]
    return lines


def _pairs(indent: str, pairs: Sequence[tuple[str, str]]) -> list[str]:
    """``Key:   value`` lines aligned as docker's tabwriter does; empty values left out."""
    shown = [(k, v) for k, v in pairs if v]
    width = max((len(k) for k, _ in shown), default=0) + 2
    return [f"{indent}{(k + ':').ljust(width)}{v}" for k, v in shown]
