"""Image commands: ``pull``, ``images``, ``image inspect|history|tag|rm|prune``, ``login``..."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from rootless.cli.render import (
    FORMAT_HELP,
    INSPECT_FORMAT_HELP,
    age,
    human_size,
    print_formatted,
    print_inspected,
    print_json,
    table,
)
from rootless.cli.session import engine
from rootless.models import PullEvent, PullOptions

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

TLS_HELP = (
    "Require HTTPS and verify certificates"
    " (default: only loopback and insecure registries use HTTP)."
)


# One line per pull event off a TTY ("progress" events are only drawn as bars).
PLAIN_EVENTS = {
    "resolved": "Resolved {text}",
    "exists": "Layer {short}: already present",
    "start": "Layer {short}: downloading {size}",
    "done": "Layer {short}: downloaded",
    "unpacking": "Layer {short}: unpacking",
    "stored": "Stored {text} as {short}",
}


class PullReporter:
    """Pull progress: rich bars per layer on a TTY, one line per layer event otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty() and not quiet
        self.progress: Progress | None = None
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Callable[[PullEvent], None]:
        if self.tty:
            from rich.progress import (  # noqa: PLC0415 - only on a TTY
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                transient=False,
            )
            progress.start()
            self.progress = progress
        return self.event

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def event(self, ev: PullEvent) -> None:
        if self.quiet:
            return
        short = ev.digest.removeprefix("sha256:")[:12]
        if self.progress is not None:
            self.rich_event(ev, short)
        elif ev.kind in PLAIN_EVENTS:
            line = PLAIN_EVENTS[ev.kind].format(
                text=ev.text, short=short, size=human_size(ev.total)
            )
            click.echo(line, err=True)

    def rich_event(self, ev: PullEvent, short: str) -> None:
        progress = self.progress
        assert progress is not None
        if ev.kind == "resolved":
            progress.console.print(f"Resolved {ev.text}", highlight=False, markup=False)
        elif ev.kind in ("start", "exists"):
            label = "present" if ev.kind == "exists" else "layer"
            task = progress.add_task(
                f"{short} {label}",
                total=ev.total,
                completed=ev.total if ev.kind == "exists" else ev.done,
            )
            self.tasks[ev.digest] = task
        elif ev.kind in ("progress", "done") and ev.digest in self.tasks:
            progress.update(self.tasks[ev.digest], completed=ev.done)


@click.command("pull")
@click.argument("name")
@click.option("--platform", help="Pull for this platform, e.g. linux/arm64 (default: the host's).")
@click.option("--tls-verify/--no-tls-verify", default=None, help=TLS_HELP)
@click.option("-q", "--quiet", is_flag=True, help="Print only the image ID.")
@click.pass_context
def pull(
    ctx: click.Context, name: str, platform: str | None, tls_verify: bool | None, quiet: bool
) -> None:
    """Pull an image from a registry."""
    with PullReporter(quiet) as events:
        image = engine(ctx).pull(PullOptions(name, platform, tls_verify, quiet), events)
    click.echo(image.id)


def list_images(
    ctx: click.Context,
    all_images: bool,
    digests: bool,
    filters: tuple[str, ...],
    fmt: str | None,
    quiet: bool,
) -> None:
    from rootless.cli.views import IMAGE_HEADERS, image_row  # noqa: PLC0415

    rows = engine(ctx).images.summaries(all_images=all_images, filters=filters)
    if quiet:
        for short in dict.fromkeys(row.short_id for row in rows):
            click.echo(short)
        return

    def default() -> None:
        headers = [
            "REPOSITORY",
            "TAG",
            *(["DIGEST"] if digests else []),
            "IMAGE ID",
            "CREATED",
            "SIZE",
        ]
        table(headers, [
            [row.repository, row.tag, *([row.digest or "<none>"] if digests else []), row.short_id,
             age(row.created), human_size(row.size)]
            for row in rows
        ])  # fmt: skip

    print_formatted(fmt, rows, view=image_row, default=default, headers=IMAGE_HEADERS)


LIST_OPTIONS = [
    click.option(
        "-a", "--all", "all_images", is_flag=True, help="Show all images (intermediate ones too)."
    ),
    click.option("--digests", is_flag=True, help="Show digests."),
    click.option(
        "-f",
        "--filter",
        "filters",
        multiple=True,
        help="dangling=, label=, reference=GLOB, before=, since=, until= (docker's).",
    ),
    click.option("--format", "fmt", help=FORMAT_HELP),
    click.option("-q", "--quiet", is_flag=True, help="Print only image IDs."),
]


def with_list_options(func: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(LIST_OPTIONS):
        func = option(func)
    return func


@click.command("images")
@with_list_options
@click.pass_context
def images(ctx: click.Context, /, **kw: object) -> None:
    """List images."""
    list_images(ctx, **kw)  # type: ignore[arg-type]


@click.command("ls")
@with_list_options
@click.pass_context
def image_ls(ctx: click.Context, /, **kw: object) -> None:
    """List images."""
    list_images(ctx, **kw)  # type: ignore[arg-type]


@click.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", help=INSPECT_FORMAT_HELP)
@click.pass_context
def image_inspect(ctx: click.Context, names: tuple[str, ...], fmt: str | None) -> None:
    """Show images' configuration and layers as JSON."""
    documents = [engine(ctx).images.inspect(name).to_docker() for name in names]
    print_inspected(fmt, documents, "image")


@click.command("history")
@click.argument("name")
@click.option("--format", "fmt", help=FORMAT_HELP)
@click.option("-q", "--quiet", is_flag=True, help="Print only IDs.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate the CREATED BY column.")
@click.pass_context
def history(ctx: click.Context, name: str, fmt: str | None, quiet: bool, no_trunc: bool) -> None:
    """Show how an image was built."""
    from rootless.cli.views import HISTORY_HEADERS, history_row  # noqa: PLC0415

    rows = engine(ctx).images.history(name)
    if quiet:
        for row in rows:
            click.echo(row.id)
        return

    def cut(text: str) -> str:
        return text if no_trunc or len(text) <= 45 else text[:44] + "…"

    def default() -> None:
        cells = [
            [r.id, age(r.created), cut(r.created_by), human_size(r.size), r.comment] for r in rows
        ]
        table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], cells)

    print_formatted(
        fmt,
        rows,
        view=lambda r: history_row(r, no_trunc=no_trunc),
        default=default,
        headers=HISTORY_HEADERS,
    )


@click.command("tag")
@click.argument("source")
@click.argument("target")
@click.pass_context
def tag(ctx: click.Context, source: str, target: str) -> None:
    """Give an image another name: rctl tag SOURCE TARGET."""
    engine(ctx).images.tag(source, target)


@click.command("rmi")
@click.argument("names", nargs=-1, required=True)
@click.option(
    "-f", "--force", is_flag=True, help="Remove even if used by containers or tagged several times."
)
@click.pass_context
def rmi(ctx: click.Context, names: tuple[str, ...], force: bool) -> None:
    """Remove images."""
    report = engine(ctx).images.remove(list(names), force=force)
    for name in report.untagged:
        click.echo(f"Untagged: {name}")
    for image_id in report.deleted:
        click.echo(f"Deleted: {image_id}")


@click.command("prune")
@click.option(
    "-a",
    "--all",
    "all_images",
    is_flag=True,
    help="Remove every image no container uses, not only dangling ones.",
)
@click.option("-f", "--force", is_flag=True, help="Don't ask for confirmation.")
@click.option(
    "--filter", "filters", multiple=True, help="until=24h|TIMESTAMP, label=, label!= (docker's)."
)
@click.pass_context
def image_prune(
    ctx: click.Context, all_images: bool, force: bool, filters: tuple[str, ...]
) -> None:
    """Remove unused images."""
    if not force and sys.stdin.isatty():
        what = "all images without at least one container" if all_images else "all dangling images"
        click.confirm(f"WARNING! This will remove {what}. Continue?", abort=True)
    for image_id in engine(ctx).images.prune(all_images=all_images, filters=filters):
        click.echo(f"Deleted: {image_id}")


@click.command("login")
@click.argument("registry")
@click.option("-u", "--username", help="User name.")
@click.option("-p", "--password", help="Password (prefer --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--tls-verify/--no-tls-verify", default=None, help=TLS_HELP)
@click.pass_context
def login(
    ctx: click.Context,
    registry: str,
    username: str | None,
    password: str | None,
    password_stdin: bool,
    tls_verify: bool | None,
) -> None:
    """Log in to a registry (credentials go to auth.json, mode 0600)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    if username is None:
        username = click.prompt("Username")
    if password is None:
        password = getpass.getpass("Password: ")
    path = engine(ctx).login(registry, username, password, tls_verify)
    click.echo(f"Login Succeeded! (credentials in {path})")


@click.command("logout")
@click.argument("registry")
@click.pass_context
def logout(ctx: click.Context, registry: str) -> None:
    """Forget the credentials of a registry."""
    if engine(ctx).logout(registry):
        click.echo(f"Removed login credentials for {registry}")
    else:
        click.echo(f"Not logged in to {registry}")


@click.command("df")
@click.option("--format", "fmt", help=FORMAT_HELP)
@click.pass_context
def system_df(ctx: click.Context, fmt: str | None) -> None:
    """Show disk usage of images (and, later, containers and volumes)."""
    from rootless.cli.views import DF_HEADERS, df_row  # noqa: PLC0415

    usage = engine(ctx).disk_usage()
    rows = [
        [kind, str(total), str(active), human_size(size), human_size(reclaimable)]
        for kind, total, active, size, reclaimable in usage.rows()
    ]
    print_formatted(
        fmt,
        rows,
        view=df_row,
        default=lambda: table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], rows),
        as_json=lambda: print_json(usage.to_docker()),
        headers=DF_HEADERS,
    )


@click.command(
    "unshare", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def unshare(ctx: click.Context, command: tuple[str, ...]) -> None:
    """Run a command in rctl's user namespace (uid 0 there), like podman unshare."""
    ctx.exit(engine(ctx).unshare(command))


@click.command("save")
@click.argument("names", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write to this file (default: standard output).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["docker-archive", "oci-archive"]),
    default="docker-archive",
    show_default=True,
)
@click.pass_context
def save(ctx: click.Context, names: tuple[str, ...], output: str | None, fmt: str) -> None:
    """Save images to a tar archive."""
    if output is None:
        if sys.stdout.isatty():
            raise click.UsageError(
                "refusing to write an archive to a terminal: use -o FILE or a redirect"
            )
        engine(ctx).save(names, sys.stdout.buffer, fmt)
        return
    tmp = f"{output}.rctl-partial"
    try:
        with open(tmp, "wb") as fh:
            engine(ctx).save(names, fh, fmt)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@click.command("load")
@click.option(
    "-i",
    "--input",
    "source",
    type=click.Path(exists=True, dir_okay=False),
    help="Read from this file (default: standard input).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the image IDs.")
@click.pass_context
def load(ctx: click.Context, source: str | None, quiet: bool) -> None:
    """Load images from a docker-archive or oci-archive tar."""
    if source is None:
        loaded = engine(ctx).load(sys.stdin.buffer)
    else:
        with open(source, "rb") as fh:
            loaded = engine(ctx).load(fh)
    for image in loaded:
        if quiet:
            click.echo(image.id)
            continue
        for name in image.names or (image.id,):
            click.echo(f"Loaded image: {name}")


@click.command("import")
@click.argument("source")
@click.argument("name", required=False)
@click.option(
    "-c",
    "--change",
    "changes",
    multiple=True,
    help='Dockerfile instruction, e.g. --change "CMD [\\"sh\\"]".',
)
@click.option("-m", "--message", default="", help="Commit message for the history.")
@click.pass_context
def import_(
    ctx: click.Context, source: str, name: str | None, changes: tuple[str, ...], message: str
) -> None:
    """Create an image from a root filesystem tarball (FILE or - for standard input)."""
    if source == "-":
        image = engine(ctx).import_image(sys.stdin.buffer, name, changes, message)
    else:
        try:
            fh = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise click.BadParameter(f"{source}: {exc.strerror}", param_hint="SOURCE") from exc
        with fh:
            image = engine(ctx).import_image(fh, name, changes, message)
    click.echo(image.id)


@click.command("push")
@click.argument("name")
@click.argument("destination", required=False)
@click.option("--tls-verify/--no-tls-verify", default=None, help=TLS_HELP)
@click.option("-q", "--quiet", is_flag=True, help="Don't print progress.")
@click.pass_context
def push(
    ctx: click.Context, name: str, destination: str | None, tls_verify: bool | None, quiet: bool
) -> None:
    """Push an image to a registry (optionally under another name)."""

    def progress(what: str, digest: str) -> None:
        if not quiet:
            short = digest.removeprefix("sha256:")[:12]
            click.echo(
                f"Blob {short}: {'already exists' if what == 'exists' else 'pushed'}", err=True
            )

    digest = engine(ctx).push(name, destination, tls_verify, progress)
    click.echo(digest)
