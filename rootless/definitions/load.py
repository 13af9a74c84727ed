"""Loading definition files: read, parse, validate each, then check them together.

``load_definitions(paths)`` takes files and directories (a directory means its ``*.toml``
files, sorted) and returns one :class:`~rootless.definitions.model.DefinitionSet`, or raises
:class:`~rootless.definitions.schema.DefinitionError` listing every problem of every file:
callers act only on a set that validated whole (``rctl apply`` is all-or-nothing at
validation time).

Each table is first checked for control characters (:mod:`rootless.definitions.unitkeys`);
one that holds any is not validated further. Checks across files: a name defined twice,
``depends_on`` naming an unknown container or making a cycle, a host port published twice.
Containers come back in dependency order (dependencies first, otherwise file order).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rctlbase.errors import UsageError
from rootless.containers.ports import parse_publish
from rootless.definitions.model import (
    ContainerDef,
    DefinitionLocation,
    DefinitionSet,
)
from rootless.definitions.podtable import parse_pod
from rootless.definitions.positions import index_positions
from rootless.definitions.schema import (
    DefinitionError,
    Problem,
    Table,
    parse_container,
    parse_network,
    parse_volume,
)
from rootless.definitions.unitkeys import check_characters
from units.unitfile import has_control

SYSTEM_ROOT = Path("/etc/rctl/definitions")
KINDS = ("container", "volume", "network", "pod")


def user_definition_dirs(config_home: Path, user: str) -> list[Path]:
    """Where a user's definitions live: ``$XDG_CONFIG_HOME/rctl/definitions`` and the
    admin's ``/etc/rctl/definitions/USER``."""
    return [config_home / "rctl" / "definitions", SYSTEM_ROOT / user]


def definition_files(paths: Iterable[Path]) -> list[Path]:
    """The files ``paths`` stand for: files as given, directories' ``*.toml`` sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.glob("*.toml") if p.is_file())
        elif path.exists():
            files.append(path)
        else:
            raise UsageError(
                f"{path}: no such file or directory", hint="give a .toml file or a directory"
            )
    return files


def location_of(path: Path) -> str:
    """SYSTEM for files under /etc/rctl/definitions, USER otherwise."""
    return (
        DefinitionLocation.SYSTEM if path.is_relative_to(SYSTEM_ROOT) else DefinitionLocation.USER
    )


def _syntax_problem(name: str, text: str, exc: tomllib.TOMLDecodeError) -> Problem:
    """tomllib's message, its "(at line N, column M)" made our FILE:LINE prefix."""
    match = re.search(r"\(at line (\d+), column \d+\)", str(exc))
    line = int(match.group(1)) if match else 1
    if "at end of document" in str(exc):
        line = len(text.rstrip("\n").splitlines()) or 1
    message = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(exc))
    return Problem(name, line, "", "", f"not valid TOML: {message}")


def parse_file(
    path: Path, text: str, problems: list[Problem], location: str | None = None
) -> DefinitionSet:
    """Validate one file's text; problems are appended to ``problems``."""
    name = str(path)
    if has_control(name):  # it goes into the unit file (SourcePath=, ExecStart=)
        problems.append(Problem(name, 1, "", "", "the file's name holds a control character"))
        return DefinitionSet(files=(name,))
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.append(_syntax_problem(name, text, exc))
        return DefinitionSet(files=(name,))
    index = index_positions(text)
    where = location or location_of(path)
    found: dict[str, list[Any]] = {kind: [] for kind in KINDS}
    for kind, body in raw.items():
        line = index.line_of((kind,))
        if kind not in KINDS:
            problems.append(
                Problem(name, line, kind, "", "unknown table (container, volume, network or pod)")
            )
            continue
        if not isinstance(body, dict):
            problems.append(Problem(name, line, kind, "", f"expected [{kind}.NAME] tables"))
            continue
        for item, values in body.items():
            if not isinstance(values, dict):
                problems.append(
                    Problem(name, index.line_of((kind, item)), f"{kind}.{item}", "",
                            f"expected a table [{kind}.{item}]")
                )  # fmt: skip
                continue
            table = Table(name, index, (kind, item), values, problems)
            if not check_characters(table, kind):
                continue
            if kind == "container":
                parsed: Any = parse_container(table, path.parent, where)
            elif kind == "pod":
                parsed = parse_pod(table)
            else:
                parsed = parse_volume(table) if kind == "volume" else parse_network(table)
            if parsed is not None:
                found[kind].append(parsed)
    return DefinitionSet(
        (name,),
        tuple(found["container"]),
        tuple(found["volume"]),
        tuple(found["network"]),
        tuple(found["pod"]),
    )


def load_definitions(paths: Iterable[Path], *, location: str | None = None) -> DefinitionSet:
    """Read and validate every file of ``paths`` together (see the module docstring)."""
    problems: list[Problem] = []
    parts = []
    files = definition_files(paths)
    if not files:
        raise UsageError("no definition files found", hint="give FILE.toml or a DIR holding some")
    for path in files:
        absolute = path.absolute()
        try:
            text = absolute.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(absolute), 1, "", "", f"cannot read: {exc}"))
            continue
        parts.append(parse_file(absolute, text, problems, location))
    merged = check_together(parts, problems)
    if problems:
        raise DefinitionError(problems)
    return merged


def check_together(parts: list[DefinitionSet], problems: list[Problem]) -> DefinitionSet:
    """Names unique, dependencies known and acyclic, host ports once; containers ordered."""
    containers: dict[str, ContainerDef] = {}
    for kind, items in (
        ("container", [c for p in parts for c in p.containers]),
        ("volume", [v for p in parts for v in p.volumes]),
        ("network", [n for p in parts for n in p.networks]),
        ("pod", [d for p in parts for d in p.pods]),
    ):
        seen: dict[str, str] = {}
        for item in items:
            if item.name in seen:
                line = item.lines.get("", 1) if isinstance(item, ContainerDef) else 1
                problems.append(
                    Problem(item.file, line, f"{kind}.{item.name}", "",
                            f"{kind} {item.name!r} is also defined in {seen[item.name]}")
                )  # fmt: skip
            seen[item.name] = item.file
            if isinstance(item, ContainerDef):
                containers.setdefault(item.name, item)
    _check_ports(list(containers.values()), problems)
    # Containers dropped for their own problems are still known names to depend on.
    invalid = {p.table.partition(".")[2] for p in problems if p.table.startswith("container.")}
    order = _order(containers, problems, invalid)
    files = tuple(f for p in parts for f in p.files)
    return DefinitionSet(
        files,
        tuple(order),
        tuple(v for p in parts for v in p.volumes),
        tuple(n for p in parts for n in p.networks),
        tuple(d for p in parts for d in p.pods),
    )


def _problem(container: ContainerDef, key: str, message: str) -> Problem:
    line = container.lines.get(key, container.lines.get("", 1))
    return Problem(container.file, line, f"container.{container.name}", key, message)


def _check_ports(containers: list[ContainerDef], problems: list[Problem]) -> None:
    owners: dict[tuple[str, int], str] = {}
    for container in containers:
        for spec in container.ports:
            parsed = parse_publish(spec)  # checked by the schema already
            # Only ports named outright can clash: the others are chosen free at create.
            for host_port, _ in parsed.fixed:
                protocol = str(parsed.protocol)
                key = (protocol, host_port)
                if key in owners:
                    problems.append(
                        _problem(container, "ports",
                                 f"host port {host_port}/{protocol} is published twice "
                                 f"(also by {owners[key]})")
                    )  # fmt: skip
                else:
                    owners[key] = f"container {container.name}"


def _order(
    containers: dict[str, ContainerDef], problems: list[Problem], invalid: set[str]
) -> list[ContainerDef]:
    """Dependencies first (depth-first), file order otherwise; unknown names and cycles
    become problems."""
    done: list[ContainerDef] = []
    state: dict[str, str] = {}

    def visit(container: ContainerDef, path: list[str]) -> None:
        if state.get(container.name) == "done":
            return
        if state.get(container.name) == "visiting":
            cycle = " -> ".join([*path[path.index(container.name) :], container.name])
            problems.append(_problem(container, "depends_on", f"dependency cycle: {cycle}"))
            return
        state[container.name] = "visiting"
        for dep in container.depends_on:
            target = containers.get(dep)
            if dep == container.name:
                problems.append(_problem(container, "depends_on", "depends on itself"))
            elif target is None and dep not in invalid:
                problems.append(_problem(container, "depends_on", f"unknown container {dep!r}"))
            elif target is not None:
                visit(target, [*path, container.name])
        state[container.name] = "done"
        done.append(container)

    for container in containers.values():
        visit(container, [])
    return done
