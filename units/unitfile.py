"""Unit files as text: sections of ``Key=value`` lines, rendered the way systemd reads them.

Pure: takes plain values, returns text. Used by the definition generator and
``rctl generate systemd``. What systemd would read differently from what was meant is
refused or escaped (systemd.syntax(7), systemd.unit(5) "Specifiers"):

- a control character in a key, a value or a header line: systemd ends a line at ``\\n``,
  ``\\r`` or NUL, so one would start a setting of its own (ValueError);
- a value ending in ``\\`` (it would continue onto the next line: ValueError);
- ``%`` in a plain value is doubled, since systemd expands specifiers (``%h``, ``%n``) in
  most settings; a :class:`Verbatim` value is already in systemd's syntax (a pass-through
  setting, a command line from :func:`quote_argv`, a percentage for a setting that does not
  expand specifiers) and is written as it is.

``quote_argv`` renders a command line for ``ExecStart=`` (systemd.service(5), "Command
lines": double quotes group words, ``\\`` escapes, ``%`` must be doubled, ``$`` doubled too
so that systemd does not expand variables, control characters as C escapes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_PLAIN = re.compile(r"[A-Za-z0-9_@%$+=:,./-]+")
# unit_name_is_valid() of src/basic/unit-name.c: these characters, at most 255 of them, a
# known type after the last dot, at most one "@" and not first.
_UNIT_CHARS = re.compile(r"[A-Za-z0-9:_.\\@-]+")
UNIT_NAME_MAX = 255
UNIT_TYPES = frozenset({"service", "mount", "swap", "socket", "target", "device", "automount",
                        "timer", "path", "slice", "scope"})  # fmt: skip
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# systemd's cunescape() reads these back; any other control character as \xNN.
_C_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


@dataclass(frozen=True, slots=True)
class Verbatim:
    """A value already in unit-file syntax: written without escaping specifiers."""

    text: str


Value = str | Verbatim


@dataclass(frozen=True, slots=True)
class UnitSection:
    """``[name]`` followed by its lines, in order (a key may repeat)."""

    name: str
    lines: tuple[tuple[str, Value], ...]


def has_control(text: str) -> bool:
    """Whether ``text`` holds a C0 control character or DEL (tab and newline included)."""
    return _CONTROL.search(text) is not None


def unit_name_problem(name: str, *, template: bool = False) -> str | None:
    """Why systemd would refuse ``name`` as a unit name, or None. A template
    (``getty@.service``) is a name only where ``template`` says so."""
    stem, dot, kind = name.rpartition(".")
    if not dot or not stem or kind not in UNIT_TYPES:
        return f"{name!r} does not end in a unit type (.service, .target...)"
    if len(name) > UNIT_NAME_MAX or not _UNIT_CHARS.fullmatch(name):
        return f"{name!r} is not a unit name (letters, digits and :_.\\-@, at most 255)"
    prefix, at, instance = stem.partition("@")
    if at and (not prefix or "@" in instance):
        return f"{name!r} is not a unit name (one '@', after a prefix)"
    if at and not instance and not template:
        return f"{name!r} is a template, not a unit"
    return None


def escape_specifiers(text: str) -> str:
    """``text`` with ``%`` doubled: systemd reads it back as it was."""
    return text.replace("%", "%%")


def quote_word(word: str, *, variables: bool = True) -> str:
    """One argument of a command line, quoted for systemd when it needs to be.

    ``variables=False`` is for settings that split and unquote words but do not expand
    ``$VAR`` (``Environment=``), where a doubled ``$`` would stay doubled.
    """
    if "\0" in word:
        raise ValueError(f"a command argument holds a NUL byte: {word!r}")
    escaped = escape_specifiers(word)
    if variables:
        escaped = escaped.replace("$", "$$")
    if escaped and _PLAIN.fullmatch(escaped):
        return escaped
    inner = escaped.replace("\\", "\\\\").replace('"', '\\"')
    inner = _CONTROL.sub(lambda m: _C_ESCAPES.get(m[0], f"\\x{ord(m[0]):02x}"), inner)
    return f'"{inner}"'


def quote_argv(argv: Sequence[str]) -> Verbatim:
    """A command line for ``ExecStart=`` and friends."""
    return Verbatim(" ".join(quote_word(word) for word in argv))


def render_value(key: str, value: Value) -> str:
    """The text after ``key=`` (see the module docstring); ValueError if it can't be said."""
    text = value.text if isinstance(value, Verbatim) else escape_specifiers(value)
    if has_control(key) or has_control(text):
        raise ValueError(f"{key}= holds a control character: {text!r}")
    if text.endswith("\\"):
        raise ValueError(f"{key}= ends in a backslash, which would continue the line: {text!r}")
    return text


def render_unit_file(sections: Sequence[UnitSection], header: Sequence[str] = ()) -> str:
    """The text of a unit file: ``header`` lines as comments, then each non-empty section."""
    for line in header:
        if has_control(line):
            raise ValueError(f"a header line holds a control character: {line!r}")
    out = [f"# {line}" if line else "#" for line in header]
    for section in sections:
        if not section.lines:
            continue
        if out:
            out.append("")
        out.append(f"[{section.name}]")
        out += [f"{key}={render_value(key, value)}" for key, value in section.lines]
    return "\n".join(out) + "\n"
