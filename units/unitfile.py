"""Unit files as text: sections of ``Key=value`` lines, rendered the way systemd reads them.

Pure: takes plain values, returns text. Used by the definition generator and
``rctl generate systemd``. Values are written as given, except that a newline (which would end
the setting) is refused and a value with a leading or trailing space is left to the caller to
quote; ``quote_argv`` renders a command line for ``ExecStart=`` (systemd.service(5),
"Command lines": double quotes group words, ``\\`` escapes, ``%`` must be doubled, ``$``
doubled too so that systemd does not expand variables).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_PLAIN = re.compile(r"[A-Za-z0-9_@%$+=:,./-]+")


@dataclass(frozen=True, slots=True)
class UnitSection:
    """``[name]`` followed by its lines, in order (a key may repeat)."""

    name: str
    lines: tuple[tuple[str, str], ...]


def quote_word(word: str) -> str:
    """One argument of a command line, quoted for systemd when it needs to be."""
    escaped = word.replace("%", "%%").replace("$", "$$")
    if escaped and _PLAIN.fullmatch(escaped):
        return escaped
    inner = escaped.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{inner}"'


def quote_argv(argv: Sequence[str]) -> str:
    """A command line for ``ExecStart=`` and friends."""
    return " ".join(quote_word(word) for word in argv)


def render_unit_file(sections: Sequence[UnitSection], header: Sequence[str] = ()) -> str:
    """The text of a unit file: ``header`` lines as comments, then each non-empty section."""
    out = [f"# {line}" if line else "#" for line in header]
    for section in sections:
        if not section.lines:
            continue
        if out:
            out.append("")
        out.append(f"[{section.name}]")
        for key, value in section.lines:
            if "\n" in value:
                raise ValueError(f"{key}= value spans lines: {value!r}")
            out.append(f"{key}={value}")
    return "\n".join(out) + "\n"
