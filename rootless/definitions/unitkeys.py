"""The parts of a definition that reach its unit file, and the characters no value may hold.

A definition is the source of a unit file (:func:`rootless.definitions.translate.render_unit`),
and systemd reads a unit file line by line: a newline, a carriage return or a NUL in a value
would end the setting and start another, and a ``wanted_by`` target names a directory the
generator writes into. So, for every table of a file:

- no key and no value holds a control character (C0 or DEL), with one exception: the
  command lines (``command``, ``entrypoint``, ``healthcheck.cmd``) and the environment
  values of a container may hold newlines and tabs, like ``rctl run``'s arguments, since
  they go to the container, never into the unit file (``run-unit`` reads the definition);
- ``wanted_by`` names units as systemd spells them (unit_name_is_valid(): no ``/``, a type);
- the ``unit`` and ``service`` pass-through settings are systemd syntax written as they are,
  so a value may not end in ``\\`` (it would continue onto the next line).
"""

from __future__ import annotations

import re
from typing import Any

from rootless.definitions.tables import Problem, Table, printable, scalar_text
from units.unitfile import has_control, unit_name_problem

UNIT_KEY = re.compile(r"[A-Z][A-Za-z0-9]*")
_MULTILINE = "\n\t"


def _multiline_allowed(kind: str, path: tuple[str, ...]) -> bool:
    if kind != "container" or not path:
        return False
    return (
        path[0] in ("command", "entrypoint")
        or path[:2] == ("healthcheck", "cmd")
        or (path[0] == "env" and len(path) == 2)
    )


def check_characters(table: Table, kind: str) -> bool:
    """Report every key and string value of ``table`` holding a control character (see the
    module docstring); True when there was none."""
    before = len(table.problems)

    def report(path: tuple[str, ...], what: str) -> None:
        line = table.index.line_of((*table.path, *path))
        key = printable(".".join(path))
        message = f"{what} holds a control character: write it without one"
        table.problems.append(Problem(table.file, line, table.name, key, message))

    def walk(value: Any, path: tuple[str, ...]) -> None:
        if isinstance(value, str):
            allowed = _MULTILINE if _multiline_allowed(kind, path) else ""
            if has_control("".join(c for c in value if c not in allowed)):
                report(path, "the value")
        elif isinstance(value, dict):
            for key, item in value.items():
                if has_control(key):
                    report((*path, key), "the key")
                else:
                    walk(item, (*path, key))
        elif isinstance(value, list):
            for item in value:
                walk(item, path)

    if has_control(table.path[-1]):
        report((), "the table's name")
    else:
        walk(table.raw, ())
    return len(table.problems) == before


def parse_targets(table: Table, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """``wanted_by``: a unit name or a list of them (targets, usually)."""
    value = table.get(key, (str, list), "a target name or a list of them")
    if value is None:
        return default if key not in table.raw else ()
    items = [value] if isinstance(value, str) else value
    if not all(isinstance(item, str) and item for item in items):
        table.problem(key, "expected a name or a list of names")
        return ()
    for item in items:
        problem = unit_name_problem(item)
        if problem is not None:
            table.problem(key, problem)
            return ()
    return tuple(items)


def parse_unit_section(table: Table, key: str) -> tuple[tuple[str, str], ...]:
    """``[container.NAME.unit]`` / ``.service``: systemd keys passed through as they are."""
    raw = table.get(key, dict, f"a table ([{table.name}.{key}])")
    if raw is None:
        return ()
    sub = Table(table.file, table.index, (*table.path, key), raw, table.problems)
    lines: list[tuple[str, str]] = []
    for name, value in raw.items():
        if not UNIT_KEY.fullmatch(name):
            sub.problem(name, "not a systemd setting name (like After or Environment)")
            continue
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, dict | list):
                sub.problem(name, "expected a string, number, boolean or a list of them")
                break
            text = scalar_text(item)
            if has_control(text):
                sub.problem(name, "a unit setting is one line, without control characters")
                break
            if text.endswith("\\"):
                sub.problem(name, "a value ending in '\\' would continue onto the next line")
                break
            lines.append((name, text))
    return tuple(lines)
