"""A container's ``build`` key: its image made by ``rctl build`` instead of pulled.

``build = "./app"`` (a context directory, relative to the file's) or, as compose writes it,
``build = { context = "./app", file = "Containerfile", args = { K = "V" }, target = "T" }``
(``file`` relative to the context). ``image`` then names the result; without it the image
is ``localhost/<file stem>-<container name>`` (compose's ``<project>-<service>``, the file
standing for the project). Such a container never pulls its image (``pull`` is refused).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rootless.definitions.model import BuildDef
from rootless.definitions.tables import Table, scalar_text

BUILD_KEYS = ("context", "file", "args", "target")


def default_image(file: str, name: str) -> str:
    """The image of a built container that names none."""
    stem = "".join(c if c.isalnum() or c in "_.-" else "-" for c in Path(file).stem.lower())
    return f"localhost/{stem.strip('.-_') or 'rctl'}-{name.lower()}"


def _shape_problem(fields: dict[str, object]) -> str | None:
    unknown = [key for key in fields if key not in BUILD_KEYS]
    if unknown:
        return f"unknown key {unknown[0]!r} (context, file, args, target)"
    if not isinstance(fields.get("context"), str) or not fields["context"]:
        return "expected a context directory (a string)"
    if any(not isinstance(fields.get(key, ""), str) for key in ("file", "target")):
        return "file and target are strings"
    args = fields.get("args", {})
    if not isinstance(args, dict) or any(isinstance(v, dict | list) for v in args.values()):
        return "args is a table of strings"
    return None


def parse_build(table: Table, base: Path, system: bool) -> BuildDef | None:
    """The ``build`` key of ``table`` (None when absent or wrong: the problem recorded)."""
    raw = table.get("build", (str, dict), "a context directory or a table")
    if raw is None:
        return None
    fields: dict[str, Any] = {"context": raw} if isinstance(raw, str) else dict(raw)
    problem = _shape_problem(fields)
    directory = Path(str(fields.get("context"))).expanduser()
    if problem is None and not directory.is_absolute():
        if system:
            problem = f"{directory} is relative: system definitions need absolute paths"
        directory = base / directory
    directory = Path(os.path.normpath(directory))
    if problem is None and not directory.is_dir():
        problem = f"{fields['context']!r}: no such directory ({directory})"
    file = fields.get("file")
    dockerfile = os.path.normpath(directory / file) if file else None
    if problem is None and dockerfile is not None and not Path(dockerfile).is_file():
        problem = f"file {file!r}: no such file ({dockerfile})"
    if problem is not None:
        table.problem("build", problem)
        return None
    return BuildDef(
        context=str(directory),
        file=dockerfile,
        args=tuple((str(k), scalar_text(v)) for k, v in fields.get("args", {}).items()),
        target=fields.get("target") or None,
    )


def image_and_pull(
    table: Table, build: BuildDef | None, image: str | None, pull: str
) -> tuple[str | None, str]:
    """A built container's image (named, or the default) and pull policy (never)."""
    if "build" not in table.raw:
        if image is None and "image" not in table.raw:
            table.problem("", "missing key 'image'")
        return image, pull
    if "pull" in table.raw:
        table.problem("pull", "a container with 'build' never pulls its image")
    if build is not None and image is None:
        image = default_image(table.file, table.path[-1])
    return image, "never"
