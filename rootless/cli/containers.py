"""Container commands: ``run``, ``create``, ``start``, ``stop``, ``kill``, ``rm``, ``ps``,
``logs``, ``wait``, ``inspect``, ``restart``."""

from __future__ import annotations

import dataclasses
import datetime
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

import click

from rctlbase.errors import NotFoundError
from rootless.cli.render import (
    FORMAT_HELP,
    INSPECT_FORMAT_HELP,
    print_formatted,
    print_inspected,
    print_json,
    table,
)
from rootless.cli.session import engine
from rootless.cli.terminal import ConsoleRelay
from rootless.models import RunOptions

RUN_OPTIONS = [
    click.option(
        "-d", "--detach", is_flag=True, help="Run in the background and print the container ID."
    ),
    click.option("-i", "--interactive", is_flag=True, help="Keep standard input open."),
    click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-terminal."),
    click.option("--rm", "remove", is_flag=True, help="Remove the container when it exits."),
    click.option("--name", help="Name the container."),
    click.option(
        "-e", "--env", multiple=True, help="Set an environment variable (KEY=VALUE or KEY)."
    ),
    click.option(
        "--env-file", "env_files", multiple=True, help="Read environment variables from a file."
    ),
    click.option("-w", "--workdir", help="Working directory inside the container."),
    click.option("-u", "--user", help="UID[:GID] or name to run as."),
    click.option("--entrypoint", help="Override the image's entrypoint."),
    click.option("-h", "--hostname", help="The container's host name."),
    click.option("-l", "--label", "labels", multiple=True, help="Set a label (KEY=VALUE)."),
    click.option("--read-only", is_flag=True, help="Mount the root filesystem read-only."),
    click.option("--tmpfs", multiple=True, help="Mount a tmpfs (PATH[:OPTIONS])."),
    click.option(
        "-v",
        "--volume",
        "volumes",
        multiple=True,
        help="Mount a host path or volume: [SOURCE:]/PATH[:ro|rw][,U][,z].",
    ),
    click.option(
        "--mount",
        "mounts",
        multiple=True,
        help="Mount: type=bind|volume|tmpfs,src=...,dst=...[,readonly].",
    ),
    click.option(
        "--volumes-from",
        multiple=True,
        help="Mount another container's volumes: CONTAINER[:ro|rw].",
    ),
    click.option(
        "--secret",
        "secrets",
        multiple=True,
        help="Give a secret: NAME[,target=PATH|VAR,type=mount|env,uid=,gid=,mode=].",
    ),
    click.option("--cap-add", multiple=True, help="Add a capability."),
    click.option("--cap-drop", multiple=True, help="Drop a capability."),
    click.option(
        "--security-opt",
        multiple=True,
        help="no-new-privileges, seccomp=unconfined|PATH, systempaths=unconfined; "
        "label=... and apparmor=... are accepted and have no effect.",
    ),
    click.option(
        "--privileged",
        is_flag=True,
        help="Every capability, no seccomp filter, no masked paths, the devices you can open.",
    ),
    click.option("--ulimit", multiple=True, help="NAME=SOFT[:HARD], e.g. nofile=1024:2048."),
    click.option(
        "--device", multiple=True, help="Bind a device node you can open: HOST[:CONTAINER][:rwm]."
    ),
    click.option("--shm-size", help="Size of /dev/shm (default 64m)."),
    click.option(
        "--sysctl",
        multiple=True,
        help="KEY=VALUE, namespaced only: net.*, kernel.shm*, kernel.msg*, kernel.sem, "
        "fs.mqueue.*.",
    ),
    click.option("--ipc", help="IPC namespace: private, shareable, none, host."),
    click.option("--pid", help="PID namespace: host (default: its own)."),
    click.option("--uts", help="UTS namespace: host (default: its own)."),
    click.option("--cgroupns", help="Cgroup namespace: private (default) or host."),
    click.option(
        "--group-add", multiple=True, help="Another group: GID, a name of the image, keep-groups."
    ),
    click.option("--oom-score-adj", type=int, help="OOM score adjustment (only upwards rootless)."),
    click.option("--log-driver", help="journald (default) or none."),
    click.option("--cidfile", help="Write the container's ID to this file (must not exist)."),
    click.option("--platform", help="The image's platform, OS/ARCH[/VARIANT]; pulled if needed."),
    click.option("--mac-address", help="Refused: the network helpers choose the MAC address."),
    click.option(
        "--init", is_flag=True, help="Run an init as PID 1 that forwards signals and reaps."
    ),
    click.option("--userns", help="User namespace mode: keep-id."),
    click.option("--runtime", help="OCI runtime: crun or runc (default: rctl.toml, else crun)."),
    click.option(
        "--pull",
        default="missing",
        show_default=True,
        help="Pull the image: missing, always, never.",
    ),
    click.option("-m", "--memory", help="Memory limit (e.g. 512m, 1g)."),
    click.option("--memory-swap", help="Memory plus swap limit; -1 for unlimited swap."),
    click.option("--cpus", help="Number of CPUs (e.g. 1.5)."),
    click.option("--cpu-shares", type=int, help="Relative CPU weight (default 1024)."),
    click.option("--pids-limit", help="Maximum number of processes; -1 for unlimited."),
    click.option("--memory-reservation", help="Memory soft limit (MemoryLow=)."),
    click.option("--cpuset-cpus", help="CPUs the container may use, e.g. 0-2,4."),
    click.option("--cpu-quota", type=int, help="CPU time in µs per --cpu-period."),
    click.option("--cpu-period", type=int, help="CPU quota period in µs (default 100000)."),
    click.option("--blkio-weight", type=int, help="Relative block I/O weight, 10 to 1000."),
    click.option(
        "--restart",
        default="no",
        show_default=True,
        help="no, on-failure[:N], always, unless-stopped.",
    ),
    click.option("--stop-timeout", type=int, help="Seconds to wait for a stop before SIGKILL."),
    click.option("--stop-signal", help="Signal that stops the container."),
    click.option(
        "-p", "--publish", multiple=True, help="[HOSTIP:][HOSTPORT:]CONTAINERPORT[/PROTO]."
    ),
    click.option(
        "-P", "--publish-all", is_flag=True, help="Publish every exposed port to a random port."
    ),
    click.option(
        "--network",
        "--net",
        "network",
        multiple=True,
        help="pasta[:OPTS], slirp4netns[:OPTS], none, host (default: rctl.toml, else slirp4netns), "
        "or bridge networks' names (repeat for several).",
    ),
    click.option("--pod", help="Join a pod: its network, published ports, IPC and UTS."),
    click.option(
        "--network-alias", "network_aliases", multiple=True, help="Another name on its networks."
    ),
    click.option("--link", "links", multiple=True, help="NAME[:ALIAS]: reach NAME as ALIAS."),
    click.option("--add-host", multiple=True, help="Add NAME:IP (or NAME:host-gateway) to hosts."),
    click.option("--dns", multiple=True, help="Set a DNS server."),
    click.option("--dns-search", multiple=True, help="Set a DNS search domain."),
    click.option("--dns-option", multiple=True, help="Set a resolv.conf option."),
    click.option("--health-cmd", help="Healthcheck command (shell), or a JSON array."),
    click.option("--health-interval", help="Time between healthchecks (default 30s)."),
    click.option("--health-timeout", help="A healthcheck running longer fails (default 30s)."),
    click.option("--health-retries", type=int, help="Failures in a row that mean unhealthy."),
    click.option("--health-start-period", help="Failures don't count before this (e.g. 1m)."),
    click.option("--health-on-failure", help="none, or restart the unhealthy container."),
    click.option("--no-healthcheck", is_flag=True, help="No healthcheck, not even the image's."),
]


def with_run_options(func: Callable[..., None]) -> Callable[..., None]:
    """docker run's flags, then IMAGE and the COMMAND (everything after the image)."""
    for option in reversed(RUN_OPTIONS):
        func = option(func)
    func = click.argument("command", nargs=-1, type=click.UNPROCESSED)(func)
    return click.argument("image")(func)


def run_options(image: str, command: tuple[str, ...], **kw: object) -> RunOptions:
    for key in ("attach", "sig_proxy", "detach_keys"):  # the CLI's own (run's attachment)
        kw.pop(key, None)
    # --network repeats (podman): one value is `network`, several are bridge networks.
    given = kw.pop("network", None)
    values: tuple[str, ...] = tuple(given) if isinstance(given, tuple) else ()
    kw["network"] = values[0] if len(values) == 1 else None
    kw["networks"] = values if len(values) > 1 else ()
    return RunOptions(image=image, command=command, **kw)  # type: ignore[arg-type]


CONTEXT = {"ignore_unknown_options": False, "allow_interspersed_args": False}


ATTACH_OPTIONS = [
    click.option(
        "-a",
        "--attach",
        "attach",
        multiple=True,
        help="Attach only these streams: stdin, stdout, stderr (repeat).",
    ),
    click.option(
        "--sig-proxy",
        is_flag=False,
        flag_value="true",
        default="true",
        help="--sig-proxy=false: don't pass SIGINT/SIGTERM/SIGHUP on to the container.",
    ),
    click.option("--detach-keys", help='Only "" (none): rctl has no detach sequence.'),
]


def with_attach_options(func: Callable[..., None]) -> Callable[..., None]:
    """docker run's flags about the attached terminal (not create's)."""
    for option in reversed(ATTACH_OPTIONS):
        func = option(func)
    return func


def attached_stdio(
    options: RunOptions, attach: tuple[str, ...], detach_keys: str | None
) -> tuple[int, int, int]:
    """The container's stdin, stdout, stderr for an attached run: ``-a`` picks the streams
    (the others see /dev/null), stdin only with ``-i``."""
    streams = {a.lower() for a in attach}
    if streams - {"stdin", "stdout", "stderr"}:
        raise click.BadParameter("use stdin, stdout or stderr", param_hint="--attach")
    if streams and options.detach:
        raise click.UsageError("conflicting options: -a and -d")
    if detach_keys:
        raise click.BadParameter(
            "rctl's attached run has no detach sequence: use -d, then rctl logs -f",
            param_hint="--detach-keys",
        )
    wanted = streams or {"stdin", "stdout", "stderr"}
    stdin = 0 if options.interactive and "stdin" in wanted else os.open(os.devnull, os.O_RDONLY)
    out = 1 if "stdout" in wanted else os.open(os.devnull, os.O_WRONLY)
    err = 2 if "stderr" in wanted else os.open(os.devnull, os.O_WRONLY)
    return stdin, out, err


def sig_proxy_wanted(value: str) -> bool:
    """``--sig-proxy``, ``--sig-proxy=true|false`` (docker's boolean flag syntax)."""
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise click.BadParameter("use --sig-proxy=true or --sig-proxy=false", param_hint="--sig-proxy")


@click.command("run", context_settings=CONTEXT)
@with_run_options
@with_attach_options
@click.pass_context
def run(ctx: click.Context, /, image: str, command: tuple[str, ...], **kw: object) -> None:
    """Run a command in a new container."""
    attach, detach_keys = kw.pop("attach"), kw.pop("detach_keys")
    proxy = sig_proxy_wanted(str(kw.pop("sig_proxy")))
    options = run_options(image, command, **kw)
    stdin, stdout, stderr = attached_stdio(options, attach, detach_keys)  # type: ignore[arg-type]
    eng = engine(ctx)
    console = None
    if options.tty and not options.detach:
        if options.interactive and not sys.stdin.isatty():
            raise click.UsageError("the input device is not a TTY: drop -t, or run from a terminal")
        socket_path = eng.console_socket_path()
        console = ConsoleRelay(socket_path, options.interactive)
        options = dataclasses.replace(options, console_socket=str(socket_path))

    def forward(unit: str) -> None:
        if console is not None:
            console.attach()
        if not proxy:
            return

        # Ctrl-C and SIGTERM go to the container, like docker run's --sig-proxy.
        def relay(signum: int, _frame: object) -> None:
            threading.Thread(
                target=eng.containers.relay_signal, args=(unit, signum), daemon=True
            ).start()

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, relay)

    try:
        record, code = eng.containers.run(options, (stdin, stdout, stderr), forward)
    finally:
        if console is not None:
            console.close()
    if code is None:
        click.echo(record.id)
        return
    ctx.exit(code)


@click.command("create", context_settings=CONTEXT)
@with_run_options
@click.pass_context
def create(ctx: click.Context, /, image: str, command: tuple[str, ...], **kw: object) -> None:
    """Create a container without starting it."""
    record = engine(ctx).containers.create(run_options(image, command, **kw))
    click.echo(record.id)


@click.command("start")
@click.argument("containers", nargs=-1, required=True)
@click.option(
    "-a", "--attach", is_flag=True, help="Wait for the container and return its exit code."
)
@click.pass_context
def start(ctx: click.Context, containers: tuple[str, ...], attach: bool) -> None:
    """Start stopped containers."""
    service = engine(ctx).containers
    for ref in containers:
        record = service.start(
            ref, stdio=(os.open(os.devnull, os.O_RDONLY), 1, 2) if attach else None
        )
        if attach:
            ctx.exit(service.wait(record.id))
        click.echo(ref)


@click.command("stop")
@click.argument("containers", nargs=-1, required=True)
@click.option("-t", "--time", "timeout", type=int, help="Seconds to wait before killing it.")
@click.pass_context
def stop(ctx: click.Context, containers: tuple[str, ...], timeout: int | None) -> None:
    """Stop running containers (the stop signal, then SIGKILL after the timeout)."""
    for ref in containers:
        engine(ctx).containers.stop(ref, timeout)
        click.echo(ref)


@click.command("restart")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def restart(ctx: click.Context, containers: tuple[str, ...]) -> None:
    """Restart containers."""
    for ref in containers:
        engine(ctx).containers.restart(ref)
        click.echo(ref)


@click.command("kill")
@click.argument("containers", nargs=-1, required=True)
@click.option("-s", "--signal", "sig", default="KILL", show_default=True, help="Signal to send.")
@click.pass_context
def kill(ctx: click.Context, containers: tuple[str, ...], sig: str) -> None:
    """Send a signal to containers' main process."""
    name = sig.upper().removeprefix("SIG")
    try:
        signum = (
            int(name) if name.isascii() and name.isdigit() else int(signal.Signals[f"SIG{name}"])
        )
    except KeyError:
        raise click.BadParameter(f"unknown signal {sig!r}", param_hint="--signal") from None
    for ref in containers:
        engine(ctx).containers.kill(ref, signum)
        click.echo(ref)


@click.command("rm")
@click.argument("containers", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Kill running containers first.")
@click.option("-v", "--volumes", is_flag=True, help="Also remove anonymous volumes.")
@click.pass_context
def rm(ctx: click.Context, containers: tuple[str, ...], force: bool, volumes: bool) -> None:
    """Remove containers."""
    for ref in containers:
        engine(ctx).containers.remove(ref, force=force, volumes=volumes)
        click.echo(ref)


@click.command("ps")
@click.option("-a", "--all", "all_containers", is_flag=True, help="Show stopped containers too.")
@click.option("-q", "--quiet", is_flag=True, help="Print only IDs.")
@click.option("--format", "fmt", help=FORMAT_HELP)
@click.option("--no-trunc", is_flag=True, help="Don't truncate IDs and commands.")
@click.option(
    "-f",
    "--filter",
    "filters",
    multiple=True,
    help="KEY=VALUE, docker's: id, name, label, status, ancestor, exited, before, since, "
    "volume, network, health; podman's pod.",
)
@click.option("--pod", "show_pod", is_flag=True, help="Show each container's pod (a POD column).")
@click.pass_context
def ps(
    ctx: click.Context,
    all_containers: bool,
    quiet: bool,
    fmt: str | None,
    no_trunc: bool,
    filters: tuple[str, ...],
    show_pod: bool,
) -> None:
    """List containers."""
    from rootless.cli.views import CONTAINER_HEADERS, container_row  # noqa: PLC0415

    rows = engine(ctx).containers.summaries(all_containers=all_containers, filters=filters)
    now = time.time()
    if quiet:
        for row in rows:
            click.echo(row.id if no_trunc else row.id[:12])
        return

    def default() -> None:
        columns = ("ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names")
        cells = [[r.ps_fields(now=now, no_trunc=no_trunc)[c] for c in columns] for r in rows]
        headers = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
        if show_pod:
            headers.append("POD")
            for cell, row in zip(cells, rows, strict=True):
                cell.append(row.pod_name)
        table(headers, cells)

    print_formatted(
        fmt,
        rows,
        view=lambda r: container_row(r, no_trunc=no_trunc, now=now),
        default=default,
        as_json=lambda: print_json([r.to_json() for r in rows]),
        headers=CONTAINER_HEADERS,
    )


@click.command("logs")
@click.argument("container")
@click.option("-f", "--follow", is_flag=True, help="Follow new output until the container stops.")
@click.option("--since", help="Since a timestamp or a duration ago (10m).")
@click.option("--until", help="Until a timestamp or a duration ago.")
@click.option("-n", "--tail", type=int, help="Only the last N lines.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.pass_context
def logs(
    ctx: click.Context,
    container: str,
    follow: bool,
    since: str | None,
    until: str | None,
    tail: int | None,
    timestamps: bool,
) -> None:
    """Show a container's output (from the journal)."""
    out = sys.stdout.buffer
    for entry in engine(ctx).containers.logs(
        container, since=since, until=until, tail=tail, follow=follow
    ):
        message = entry.message if isinstance(entry.message, bytes) else str(entry.message).encode()
        if timestamps:
            moment = datetime.datetime.fromtimestamp(entry.timestamp_usec / 1e6, datetime.UTC)
            out.write(moment.isoformat().encode() + b" ")
        out.write(message + b"\n")
        out.flush()


@click.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", help=INSPECT_FORMAT_HELP)
@click.pass_context
def inspect(ctx: click.Context, names: tuple[str, ...], fmt: str | None) -> None:
    """Show containers (or images) as JSON."""

    eng = engine(ctx)
    results: list[dict[str, object]] = []
    for name in names:
        try:
            results.append(eng.containers.inspect(name).to_docker())
        except NotFoundError:
            results.append(eng.images.inspect(name).to_docker())
    print_inspected(fmt, results, "inspect")


@click.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", help=INSPECT_FORMAT_HELP)
@click.pass_context
def container_inspect(ctx: click.Context, names: tuple[str, ...], fmt: str | None) -> None:
    """Show containers as JSON."""
    documents = [engine(ctx).containers.inspect(name).to_docker() for name in names]
    print_inspected(fmt, documents, "container")


@click.command("exec", context_settings=CONTEXT)
@click.option("-i", "--interactive", is_flag=True, help="Keep standard input open.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-terminal (not yet).")
@click.option("-e", "--env", multiple=True, help="Set an environment variable.")
@click.option("-u", "--user", help="UID[:GID] to run as.")
@click.option("-w", "--workdir", help="Working directory.")
@click.argument("container")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def exec_(ctx: click.Context, interactive: bool, tty: bool, env: tuple[str, ...], user: str | None,
          workdir: str | None, container: str, command: tuple[str, ...]) -> None:  # fmt: skip
    """Run a command in a running container."""
    eng = engine(ctx)
    console = None
    if tty:
        if interactive and not sys.stdin.isatty():
            raise click.UsageError("the input device is not a TTY: drop -t, or run from a terminal")
        socket_path = eng.console_socket_path()
        console = ConsoleRelay(socket_path, interactive)
    try:
        code = eng.containers.exec(
            container, command, env=env, user=user, workdir=workdir, interactive=interactive,
            console_socket=str(console.path) if console else None,
            started=console.attach if console else None,
        )  # fmt: skip
    finally:
        if console is not None:
            console.close()
    ctx.exit(code)


@click.command("pause")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def pause(ctx: click.Context, containers: tuple[str, ...]) -> None:
    """Freeze all processes of containers."""
    for ref in containers:
        engine(ctx).containers.pause(ref)
        click.echo(ref)


@click.command("unpause")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def unpause(ctx: click.Context, containers: tuple[str, ...]) -> None:
    """Thaw paused containers."""
    for ref in containers:
        engine(ctx).containers.unpause(ref)
        click.echo(ref)


@click.command("rename")
@click.argument("container")
@click.argument("new_name")
@click.pass_context
def rename(ctx: click.Context, container: str, new_name: str) -> None:
    """Rename a container."""
    engine(ctx).containers.rename(container, new_name)


@click.command("cp")
@click.argument("source")
@click.argument("destination")
@click.option("-a", "--archive", is_flag=True, help="Keep owners (default: root of the container).")
@click.pass_context
def cp(ctx: click.Context, source: str, destination: str, archive: bool) -> None:
    """Copy files between a container and the host.

    rctl cp CONTAINER:SRC DEST, or rctl cp SRC CONTAINER:DEST. Paths in the container
    start at its root and resolve as the container sees them (symbolic links included);
    SRC/. copies a directory's contents.
    """
    engine(ctx).containers.copy(source, destination, archive=archive)


@click.command("prune")
@click.option("-f", "--force", is_flag=True, help="Don't ask for confirmation.")
@click.option(
    "--filter", "filters", multiple=True, help="until=24h|TIMESTAMP, label=, label!= (docker's)."
)
@click.pass_context
def container_prune(ctx: click.Context, force: bool, filters: tuple[str, ...]) -> None:
    """Remove all stopped containers."""
    if not force and sys.stdin.isatty():
        click.confirm("WARNING! This will remove all stopped containers. Continue?", abort=True)
    for container_id in engine(ctx).containers.prune(filters):
        click.echo(container_id)


@click.command("doctor")
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check this host for rootless containers; print the fix for each problem."""
    findings = engine(ctx).doctor()
    for finding in findings:
        mark = "note" if finding.note else "ok  " if finding.ok else "FAIL"
        click.echo(f"{mark} {finding.check}: {finding.detail}")
        if not finding.ok and finding.fix:
            click.echo(f"     fix: {finding.fix}")
    ctx.exit(0 if all(f.ok for f in findings) else 1)


@click.command("top", context_settings=CONTEXT)
@click.argument("container")
@click.argument("ps_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def top(ctx: click.Context, container: str, ps_args: tuple[str, ...]) -> None:
    """Show a running container's processes (ps options may follow)."""
    click.echo(engine(ctx).containers.top(container, ps_args), nl=False)
