"""Secret commands: ``rctl secret create``, ``ls``, ``inspect``, ``rm``, ``exists``."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import click

from rootless.cli.render import (
    FORMAT_HELP,
    INSPECT_FORMAT_HELP,
    age,
    print_formatted,
    print_inspected,
    print_json,
    table,
)
from rootless.cli.session import engine

SECRET_HEADERS = {
    "ID": "ID", "Name": "NAME", "Driver": "DRIVER", "CreatedAt": "CREATED",
    "UpdatedAt": "UPDATED", "Labels": "LABELS",
}  # fmt: skip


def _labels(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for value in values:
        key, _, val = value.partition("=")
        if not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--label")
        out[key] = val
    return out


def secret_row(document: Mapping[str, Any]) -> Any:
    """docker's secretContext, over a secret's inspect document."""
    from rootless.cli.gotemplate.values import Struct  # noqa: PLC0415

    spec = document.get("Spec") or {}
    labels = dict(spec.get("Labels") or {})
    return Struct(
        "secret row",
        {
            "ID": document.get("ID", ""),
            "Name": spec.get("Name", ""),
            "Driver": "",
            "CreatedAt": age(document.get("CreatedAt", "")),
            "UpdatedAt": age(document.get("UpdatedAt", "")),
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        },
        json_sorted=True,
    )


@click.command("create")
@click.argument("name")
@click.argument("source", metavar="FILE|-")
@click.option("-l", "--label", "labels", multiple=True, help="Set a label (KEY=VALUE).")
@click.option("--replace", is_flag=True, help="Replace a secret of that name no container uses.")
@click.pass_context
def create(
    ctx: click.Context, name: str, source: str, labels: tuple[str, ...], replace: bool
) -> None:
    """Store a secret read from FILE, or from standard input with -."""
    report = engine(ctx).secrets.create_from(
        name, source, sys.stdin.buffer, _labels(labels), replace=replace
    )
    click.echo(report.id)


@click.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Print only IDs.")
@click.option("--format", "fmt", help=FORMAT_HELP)
@click.option("-f", "--filter", "filters", multiple=True, help="name=, id=, label=KEY[=VALUE].")
@click.pass_context
def ls(ctx: click.Context, quiet: bool, fmt: str | None, filters: tuple[str, ...]) -> None:
    """List secrets (never their values)."""
    reports = engine(ctx).secrets.reports(filters)
    if quiet:
        for report in reports:
            click.echo(report.id)
        return
    documents = [report.to_docker() for report in reports]
    print_formatted(
        fmt,
        documents,
        view=secret_row,
        default=lambda: table(
            ["ID", "NAME", "CREATED", "UPDATED"],
            [[r.id, r.name, age(r.created), age(r.created)] for r in reports],
        ),
        as_json=lambda: print_json(documents),
        headers=SECRET_HEADERS,
    )


@click.command("inspect")
@click.argument("refs", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", help=INSPECT_FORMAT_HELP)
@click.pass_context
def inspect(ctx: click.Context, refs: tuple[str, ...], fmt: str | None) -> None:
    """Show secrets' metadata as JSON (never their values)."""
    secrets = engine(ctx).secrets
    print_inspected(fmt, [secrets.inspect(ref).to_docker() for ref in refs], "secret")


@click.command("rm")
@click.argument("refs", nargs=-1, required=True)
@click.pass_context
def rm(ctx: click.Context, refs: tuple[str, ...]) -> None:
    """Remove secrets (refused while a container uses one)."""
    for name in engine(ctx).secrets.remove(refs):
        click.echo(name)


@click.command("exists")
@click.argument("ref")
@click.pass_context
def exists(ctx: click.Context, ref: str) -> None:
    """Exit 0 if the secret exists, 1 if not."""
    ctx.exit(0 if engine(ctx).secrets.exists(ref) else 1)
