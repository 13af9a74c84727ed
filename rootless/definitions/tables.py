"""The machinery of definition validation: a table being checked, and the problems found.

:class:`Table` wraps one table of a parsed file (tomllib's plain dicts) with where it is
(:mod:`rootless.definitions.positions`), so that each check can report a :class:`Problem`
as ``FILE:LINE: [TABLE] KEY: what``; :class:`DefinitionError` carries all of a run's
problems at once. The checks themselves are in :mod:`rootless.definitions.schema` and
:mod:`rootless.definitions.unitkeys`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rctlbase.errors import RctlError, UsageError
from rootless.definitions.positions import PositionIndex

_T = TypeVar("_T")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def printable(text: str) -> str:
    """``text`` with control characters written as ``\\xNN`` (an error stays one line)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a file, with where it is."""

    file: str
    line: int
    table: str
    key: str
    message: str

    def __str__(self) -> str:
        if not self.table:
            return printable(f"{self.file}:{self.line}: {self.message}")
        where = f"[{self.table}] {self.key}" if self.key else f"[{self.table}]"
        return printable(f"{self.file}:{self.line}: {where}: {self.message}")


class DefinitionError(UsageError):
    """Definition files that do not validate; ``problems`` lists every one."""

    def __init__(self, problems: list[Problem]) -> None:
        problems = sorted(problems, key=lambda p: (p.file, p.line))
        self.problems = tuple(problems)
        more = f" (and {len(problems) - 1} more below)" if len(problems) > 1 else ""
        text = "\n".join(str(p) for p in problems[1:])
        super().__init__(
            f"{problems[0]}{more}" + (f"\n{text}" if text else ""),
            hint="fix the files and run again: nothing was changed (see docs/definitions.md)",
        )


@dataclass(slots=True)
class Table:
    """A table being validated: its raw values, where it is, and the problems found."""

    file: str
    index: PositionIndex
    path: tuple[str, ...]
    raw: Mapping[str, Any]
    problems: list[Problem]
    seen: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return ".".join(self.path)

    def line(self, key: str = "") -> int:
        return self.index.line_of((*self.path, key) if key else self.path)

    def problem(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.file, self.line(key), self.name, key, message))

    def get(self, key: str, kind: type | tuple[type, ...], what: str) -> Any:
        """The value of ``key`` if present and of ``kind`` (else a problem and None)."""
        self.seen.add(key)
        if key not in self.raw:
            return None
        value = self.raw[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML booleans are ints to Python: never accept one where a number is wanted.
        if isinstance(value, bool) and bool not in kinds:
            self.problem(key, f"expected {what}, got a boolean")
            return None
        if not isinstance(value, kinds):
            self.problem(key, f"expected {what}, got {type_name(value)}")
            return None
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.get(key, list, "a list of strings")
        if value is None:
            return ()
        if not all(isinstance(item, str) for item in value):
            self.problem(key, "expected a list of strings")
            return ()
        return tuple(value)

    def mapping(self, key: str) -> tuple[tuple[str, str], ...]:
        """A table of scalar values, as (key, string) pairs in file order."""
        value = self.get(key, dict, "a table")
        if value is None:
            return ()
        pairs = []
        for name, item in value.items():
            if isinstance(item, dict | list):
                self.problem(key, f"{name}: expected a string, number or boolean")
                continue
            pairs.append((name, scalar_text(item)))
        return tuple(pairs)

    def check(self, key: str, parse: Callable[[_T], object], value: _T | None) -> None:
        """Let a flag parser check ``value``; its complaint becomes a problem here."""
        if value is None:
            return
        try:
            parse(value)
        except RctlError as exc:
            self.problem(key, reword(exc))

    def finish(self, allowed: tuple[str, ...]) -> None:
        """Report every key nobody asked for."""
        for key in self.raw:
            if key not in self.seen and key not in allowed:
                close = difflib.get_close_matches(key, [*self.seen, *allowed], n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.problem(key, f"unknown key{hint}")


def type_name(value: object) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def reword(exc: RctlError) -> str:
    """A flag parser's message without its flag (the key says which)."""
    return re.sub(r"--[a-z-]+( value)?\s*", "", exc.message).strip()
