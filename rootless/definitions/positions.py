"""Where each key of a TOML file is: an index from key paths to line numbers.

Why this exists: :mod:`tomllib` returns plain dicts and tells nothing about where a value
came from, yet every error in a definition must name its file and line. Rather than a second
TOML parser, this scans the source once for the two things that carry keys at the start of a
logical line — table headers (``[a.b]``, ``[[a.b]]``) and ``key = value`` lines (dotted keys
included) — while skipping strings, comments and the insides of multi-line arrays and inline
tables. Keys inside an inline table (``env = { A = "1" }``) or an array are not indexed: a
lookup falls back to the nearest indexed ancestor, so they report the line of their key.

The file has already been parsed by tomllib when this runs, so the scanner may assume valid
TOML and only needs to be right about line numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Path = tuple[str, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class PositionIndex:
    """Line numbers (1-based) of table headers and keys, by their full dotted path."""

    lines: dict[Path, int]

    def line_of(self, path: Path) -> int:
        """The line of ``path``, or of its nearest ancestor that has one (1 when none)."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1


def _read_key(text: str, pos: int) -> tuple[Path, int] | None:
    """A (dotted) key starting at ``pos``: its parts and the position after it, or None."""
    parts: list[str] = []
    while True:
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos >= len(text):
            return None
        char = text[pos]
        if char in "\"'":
            end = pos + 1
            buf = []
            while end < len(text) and text[end] != char:
                if char == '"' and text[end] == "\\" and end + 1 < len(text):
                    escaped = text[end + 1]
                    buf.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(escaped, escaped))
                    end += 2
                    continue
                buf.append(text[end])
                end += 1
            parts.append("".join(buf))
            pos = end + 1
        else:
            match = _BARE.match(text, pos)
            if match is None:
                return None
            parts.append(match.group())
            pos = match.end()
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos < len(text) and text[pos] == ".":
            pos += 1
            continue
        return tuple(parts), pos


def index_positions(source: str) -> PositionIndex:  # noqa: PLR0912, PLR0915 - a scanner: a branch per token kind
    """Scan TOML ``source`` (already known to parse) for header and key lines."""
    lines: dict[Path, int] = {}
    table: Path = ()
    arrays: dict[Path, int] = {}  # [[x]] headers seen: their count, for the element's index
    pos = 0
    line = 1
    depth = 0  # brackets/braces open in a value
    at_line_start = True
    n = len(source)
    while pos < n:
        char = source[pos]
        if char == "\n":
            line += 1
            pos += 1
            at_line_start = depth == 0
            continue
        if char in " \t\r":
            pos += 1
            continue
        if char == "#":
            end = source.find("\n", pos)
            pos = n if end < 0 else end
            continue
        if at_line_start and depth == 0:
            at_line_start = False
            if char == "[":
                double = source.startswith("[[", pos)
                found = _read_key(source, pos + (2 if double else 1))
                if found is not None:
                    table, after = found
                    if double:
                        arrays[table] = arrays.get(table, -1) + 1
                        table = (*table, str(arrays[table]))
                    _record(lines, table, 0, line)
                    end = source.find("\n", after)
                    pos = n if end < 0 else end
                    continue
            found = _read_key(source, pos)
            if found is not None:
                key, after = found
                if after < n and source[after] == "=":
                    _record(lines, (*table, *key), len(table), line)
                    pos = after + 1
                    continue
        # Inside a value: strings (their newlines count), brackets, everything else.
        if source.startswith(('"""', "'''"), pos):
            quote = source[pos : pos + 3]
            end = pos + 3
            while True:
                end = source.find(quote, end)
                if end < 0:
                    end = n
                    break
                if quote == '"""' and _escaped(source, end):
                    end += 1
                    continue
                break
            # Up to two extra quotes may close the string (TOML allows """"a"""").
            while end + 3 < n and source[end + 3] == quote[0]:
                end += 1
            line += source.count("\n", pos, end)
            pos = end + 3
            continue
        if char in "\"'":
            end = pos + 1
            while end < n and source[end] != char and source[end] != "\n":
                end += 2 if char == '"' and source[end] == "\\" else 1
            pos = end + 1
            continue
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth = max(0, depth - 1)
        pos += 1
    return PositionIndex(lines)


def _record(lines: dict[Path, int], path: Path, start: int, line: int) -> None:
    """Index ``path`` and its not yet indexed ancestors from ``start`` parts on (a dotted
    key ``a.b.c = 1`` is where ``a`` and ``a.b`` first appear too)."""
    for end in range(max(start, 1), len(path) + 1):
        lines.setdefault(path[:end], line)


def _escaped(source: str, pos: int) -> bool:
    """Whether the character at ``pos`` is escaped by an odd run of backslashes."""
    count = 0
    while pos - count - 1 >= 0 and source[pos - count - 1] == "\\":
        count += 1
    return count % 2 == 1
