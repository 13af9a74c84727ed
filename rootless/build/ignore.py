"""``.dockerignore`` rules, as docker reads them (moby/patternmatcher; the Dockerfile
reference, ".dockerignore file"); pure.

- a line is a pattern; blank lines and lines starting with ``#`` are skipped; surrounding
  whitespace is trimmed;
- ``!`` makes an exception: a path it matches is kept again;
- a pattern is cleaned like a path (``./a//b/`` is ``a/b``; a leading ``/`` is dropped) and
  matched against paths relative to the context with Go's ``filepath.Match`` rules per
  component (``*``, ``?``, ``[...]``, ``\\`` escapes) plus ``**``, which matches any number of
  directories (zero included);
- a pattern that matches a directory matches everything below it;
- the last pattern matching a path decides.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from rctlbase.errors import UsageError

MAX_PATTERNS = 10_000


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    """One pattern, compiled; ``keep`` for ``!`` exceptions."""

    pattern: str
    regex: re.Pattern[str]
    keep: bool


@dataclass(frozen=True, slots=True)
class IgnoreRules:
    """The rules of one ``.dockerignore``, in order."""

    rules: tuple[IgnoreRule, ...] = ()

    @property
    def has_exceptions(self) -> bool:
        """Whether a path below an ignored directory may be kept again."""
        return any(rule.keep for rule in self.rules)

    def ignored(self, path: str) -> bool:
        """Whether the context path ``path`` (relative, ``/``-separated) is left out."""
        parents = _self_and_parents(path)
        ignored = False
        for rule in self.rules:
            if any(rule.regex.fullmatch(candidate) for candidate in parents):
                ignored = not rule.keep
        return ignored


def _self_and_parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]


def parse_ignore(text: str, name: str = ".dockerignore") -> IgnoreRules:
    """The rules of a ``.dockerignore`` file's text."""
    rules: list[IgnoreRule] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        if keep:
            line = line[1:].strip()
            if not line:
                raise UsageError(f"{name}:{number}: '!' without a pattern", hint="write !PATTERN")
        pattern = clean_pattern(line)
        rules.append(IgnoreRule(pattern, compile_pattern(pattern, name, number), keep))
        if len(rules) > MAX_PATTERNS:
            raise UsageError(
                f"{name} has more than {MAX_PATTERNS} patterns",
                hint="use fewer, wider patterns (a directory matches all below it)",
            )
    return IgnoreRules(tuple(rules))


def clean_pattern(pattern: str) -> str:
    """Go's ``filepath.Clean`` of the pattern, without a leading ``/``."""
    cleaned = posixpath.normpath(pattern)
    if cleaned.startswith("//"):
        cleaned = cleaned[1:]
    cleaned = cleaned.lstrip("/")
    return cleaned or "."


def compile_pattern(pattern: str, name: str = ".dockerignore", number: int = 0) -> re.Pattern[str]:
    """A regular expression matching what ``pattern`` matches."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    out.append("(?:.*/)?")  # **/ : zero or more directories
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("^", "!") else i + 1)
            if end < 0:
                raise UsageError(
                    f"{name}:{number}: unterminated '[' in {pattern!r}",
                    hint="close the character class with ']'",
                )
            body = pattern[i + 1 : end]
            if body.startswith(("^", "!")):
                body = "^" + body[1:]
            out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    try:
        return re.compile("".join(out))
    except re.error as exc:
        raise UsageError(
            f"{name}:{number}: bad pattern {pattern!r}: {exc}", hint="check its [...] classes"
        ) from exc
