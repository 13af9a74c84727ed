"""Hints tell users what to do: a flag a hint names is one of rctl's (any command's) or of
the program the hint quotes, never one that does not exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click

from rootless.cli import cli

ROOT = Path(__file__).resolve().parents[2]
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# Flags of other programs that hints quote (systemctl, journalctl, the package manager),
# and of Dockerfile instructions (ADD --checksum).
OTHER_PROGRAMS = {"--user", "--all", "--no-pager", "--checksum"}


def rctl_flags() -> set[str]:
    """Every long option of every rctl command."""
    found = {"--help"}  # click's own, on every command
    pending: list[tuple[click.Command, click.Context]] = [(cli, click.Context(cli))]
    while pending:
        command, ctx = pending.pop()
        for param in command.params:
            found.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None:
                    pending.append((sub, click.Context(sub, parent=ctx, info_name=name)))
    return found


def hint_texts(root: Path) -> list[tuple[str, str]]:
    """(``FILE:LINE``, text) of every literal part of a ``hint=`` argument under rootless/."""
    found = []
    for path in sorted((root / "rootless").rglob("*.py")):
        rel = str(path.relative_to(root))
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if isinstance(node, ast.keyword) and node.arg == "hint":
                for part in ast.walk(node.value):
                    if isinstance(part, ast.Constant) and isinstance(part.value, str):
                        found.append((f"{rel}:{part.lineno}", part.value))
    return found


def unknown_flags(root: Path, known: set[str]) -> list[str]:
    return [
        f"{where}: {flag}"
        for where, text in hint_texts(root)
        for flag in FLAG.findall(text)
        if flag not in known | OTHER_PROGRAMS
    ]


def test_hints_name_only_flags_that_exist() -> None:
    assert unknown_flags(ROOT, rctl_flags()) == []


def test_the_hint_check_finds_a_made_up_flag(tmp_path: Path) -> None:
    (tmp_path / "rootless").mkdir()
    (tmp_path / "rootless" / "x.py").write_text(
        'raise UsageError("too many layers", hint=f"use --storage-driver vfs or --rm {x}")\n'
    )
    assert unknown_flags(tmp_path, {"--rm"}) == ["rootless/x.py:1: --storage-driver"]
