"""Pod commands: ``rctl pod create``, ``ps``, ``inspect``, ``start``, ``stop``, ``restart``,
``kill``, ``pause``, ``unpause``, ``rm``, ``exists``, ``prune``, ``top``, ``logs``."""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from rootless.cli.render import (
    FORMAT_HELP,
    INSPECT_FORMAT_HELP,
    print_formatted,
    print_inspected,
    print_json,
    table,
)
from rootless.cli.session import engine
from rootless.models import PodCreateOptions

POD_HEADERS = {
    "ID": "POD ID", "Id": "POD ID", "Name": "NAME", "Status": "STATUS", "Created": "CREATED",
    "NumberOfContainers": "# OF CONTAINERS", "Labels": "LABELS", "Networks": "NETWORKS",
}  # fmt: skip


def pod_row(document: Mapping[str, Any]) -> Any:
    """podman's pod ps fields, over a row's document."""
    from rootless.cli.gotemplate.values import Struct  # noqa: PLC0415

    return Struct("pod row", {**document, "ID": str(document["Id"])[:12]})


@click.command("create")
@click.option("--name", help="The pod's name (a random one by default).")
@click.option("-p", "--publish", multiple=True, help="Publish a port of the pod: [IP:]HOST:POD.")
@click.option("--network", help="slirp4netns, pasta or none (default: rctl.toml's).")
@click.option("-l", "--label", "labels", multiple=True, help="Set a label (KEY=VALUE).")
@click.option("--share", default="net,ipc,uts", show_default=True,
              help="Namespaces the containers share (net always).")  # fmt: skip
@click.option("--infra/--no-infra", default=True, show_default=True,
              help="Hold shared namespaces (else the pod only groups containers).")  # fmt: skip
@click.option("--hostname", help="The pod's host name (shared UTS namespace).")
@click.pass_context
def create(
    ctx: click.Context, name: str | None, publish: tuple[str, ...], network: str | None,
    labels: tuple[str, ...], share: str, infra: bool, hostname: str | None,
) -> None:  # fmt: skip
    """Create a pod: containers run with --pod share its network and published ports."""
    pairs = {}
    for value in labels:
        key, _, val = value.partition("=")
        if not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--label")
        pairs[key] = val
    options = PodCreateOptions(name, publish, network, pairs, share, infra, hostname)
    click.echo(engine(ctx).pods.create(options).id)


@click.command("ps")
@click.option("-q", "--quiet", is_flag=True, help="Print only IDs.")
@click.option("--no-trunc", is_flag=True, help="Full IDs.")
@click.option("--format", "fmt", help=FORMAT_HELP)
@click.option("-f", "--filter", "filters", multiple=True, help="name=, id=, label=, status=.")
@click.pass_context
def ps(
    ctx: click.Context, quiet: bool, no_trunc: bool, fmt: str | None, filters: tuple[str, ...]
) -> None:
    """List pods."""
    rows = engine(ctx).pods.summaries(filters)
    if quiet:
        for row in rows:
            click.echo(row.id if no_trunc else row.id[:12])
        return
    documents = [row.to_docker() for row in rows]
    print_formatted(
        fmt,
        documents,
        view=pod_row,
        default=lambda: table(
            ["POD ID", "NAME", "STATUS", "# OF CONTAINERS"],
            [
                [r.id if no_trunc else r.id[:12], r.name, r.status, str(len(r.members))]
                for r in rows
            ],
        ),
        as_json=lambda: print_json(documents),
        headers=POD_HEADERS,
    )


@click.command("inspect")
@click.argument("pods", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", help=INSPECT_FORMAT_HELP)
@click.pass_context
def inspect(ctx: click.Context, pods: tuple[str, ...], fmt: str | None) -> None:
    """Show pods as JSON."""
    service = engine(ctx).pods
    print_inspected(fmt, [service.inspect(ref).to_docker() for ref in pods], "pod")


@click.command("start")
@click.argument("pods", nargs=-1, required=True)
@click.pass_context
def start(ctx: click.Context, pods: tuple[str, ...]) -> None:
    """Start pods: the pod, then its containers."""
    for ref in pods:
        click.echo(engine(ctx).pods.start(ref).id)


@click.command("stop")
@click.argument("pods", nargs=-1, required=True)
@click.option("-t", "--time", "timeout", type=int, help="Seconds to wait before killing.")
@click.pass_context
def stop(ctx: click.Context, pods: tuple[str, ...], timeout: int | None) -> None:
    """Stop pods: their containers, then the pod."""
    for ref in pods:
        click.echo(engine(ctx).pods.stop(ref, timeout).id)


@click.command("restart")
@click.argument("pods", nargs=-1, required=True)
@click.pass_context
def restart(ctx: click.Context, pods: tuple[str, ...]) -> None:
    """Stop pods if they run, then start them."""
    for ref in pods:
        click.echo(engine(ctx).pods.restart(ref).id)


@click.command("kill")
@click.argument("pods", nargs=-1, required=True)
@click.option("-s", "--signal", "sig", default="KILL", show_default=True, help="The signal.")
@click.pass_context
def kill(ctx: click.Context, pods: tuple[str, ...], sig: str) -> None:
    """Send a signal to the main process of each running container of pods."""
    name = sig.upper().removeprefix("SIG")
    try:
        signum = int(name) if name.isascii() and name.isdigit() else signal.Signals[f"SIG{name}"]
    except KeyError:
        raise click.BadParameter(f"unknown signal {sig!r}", param_hint="--signal") from None
    for ref in pods:
        click.echo(engine(ctx).pods.kill(ref, int(signum)).id)


@click.command("pause")
@click.argument("pods", nargs=-1, required=True)
@click.pass_context
def pause(ctx: click.Context, pods: tuple[str, ...]) -> None:
    """Freeze every running container of pods."""
    for ref in pods:
        click.echo(engine(ctx).pods.pause(ref).id)


@click.command("unpause")
@click.argument("pods", nargs=-1, required=True)
@click.pass_context
def unpause(ctx: click.Context, pods: tuple[str, ...]) -> None:
    """Thaw the paused containers of pods."""
    for ref in pods:
        click.echo(engine(ctx).pods.pause(ref, resume=True).id)


@click.command("rm")
@click.argument("pods", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Stop running pods first.")
@click.pass_context
def rm(ctx: click.Context, pods: tuple[str, ...], force: bool) -> None:
    """Remove pods and their containers."""
    for ref in pods:
        click.echo(engine(ctx).pods.remove(ref, force=force).id)


@click.command("exists")
@click.argument("pod")
@click.pass_context
def exists(ctx: click.Context, pod: str) -> None:
    """Exit 0 if the pod exists, 1 if not."""
    ctx.exit(0 if engine(ctx).pods.exists(pod) else 1)


@click.command("prune")
@click.option("-f", "--force", is_flag=True, help="Don't ask for confirmation.")
@click.pass_context
def prune(ctx: click.Context, force: bool) -> None:
    """Remove every pod that is not running, with its containers."""
    if not force and sys.stdin.isatty():
        click.confirm("WARNING! This will remove all stopped pods. Continue?", abort=True)
    for pod_id in engine(ctx).pods.prune():
        click.echo(pod_id)


@click.command("run-unit", hidden=True)
@click.option("--definition", required=True, help="The definition file.")
@click.option("--pid-file", required=True, help="Where the holder's PID goes (PIDFile=).")
@click.argument("name")
@click.pass_context
def run_unit(ctx: click.Context, definition: str, pid_file: str, name: str) -> None:
    """A generated pod unit's start (its ExecStart=): make the pod, start its holder."""
    engine(ctx).definitions.run_pod_unit(Path(definition), name, Path(pid_file))


@click.command("top", context_settings={"ignore_unknown_options": True})
@click.argument("pod")
@click.argument("ps_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def top(ctx: click.Context, pod: str, ps_args: tuple[str, ...]) -> None:
    """Show the processes of a pod's running containers, container by container."""
    for name, text in engine(ctx).pods.top(pod, ps_args):
        click.echo(f"==> {name} <==")
        click.echo(text, nl=False)


@click.command("logs")
@click.argument("pod")
@click.option("-n", "--tail", type=int, help="Only the last N lines of each container.")
@click.pass_context
def logs(ctx: click.Context, pod: str, tail: int | None) -> None:
    """Show the output of a pod's containers, each line after its container's name."""
    out = sys.stdout.buffer
    for name, entry in engine(ctx).pods.logs(pod, tail=tail):
        message = entry.message if isinstance(entry.message, bytes) else str(entry.message).encode()
        out.write(name.encode() + b" " + message + b"\n")
    out.flush()
