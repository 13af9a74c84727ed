"""Dockerfile words: quotes, escapes and ``$variable`` substitution, as BuildKit's shell
lexer does them (moby/buildkit frontend/dockerfile/shell/lex.go; the Dockerfile reference,
"Environment replacement").

- outside quotes the escape character (``\\`` or the ``# escape=`` directive's backtick)
  takes the next character literally; single quotes are literal; in double quotes the
  escape character only escapes ``"``, ``$`` and itself;
- ``$name`` and ``${name}`` expand to the value or to nothing; ``${name:-word}``
  (``word`` if unset or empty), ``${name-word}`` (if unset), ``${name:+word}`` (``word`` if
  set and not empty), ``${name+word}`` (if set), ``${name:?message}`` and ``${name?message}``
  (an error if unset [or empty]), ``${name#glob}``/``##`` and ``${name%glob}``/``%%`` (the
  shortest/longest matching prefix/suffix removed), ``${name/glob/text}`` and ``//``;
- :func:`expand_words` splits on whitespace outside quotes (an unquoted expansion is
  split too), :func:`expand_word` keeps one word.

Pure: the variables are passed in; every error is a ``UsageError`` naming the text.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping

from rctlbase.errors import UsageError

_NAME_START = re.compile(r"[A-Za-z_]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
MAX_DEPTH = 16  # nested ${a:-${b:-...}}: bounded, the text is untrusted
_HINT = "check the quotes and ${...} of that instruction"


def expand_word(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """``text`` with quotes removed and variables substituted, as one word."""
    return "".join(_Lexer(text, env, escape, split=False, depth=0).run()) if text else ""


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """``text`` split into words on unquoted whitespace, each expanded."""
    return _Lexer(text, env, escape, split=True, depth=0).run()


class _Lexer:
    def __init__(
        self, text: str, env: Mapping[str, str], escape: str, *, split: bool, depth: int
    ) -> None:
        if depth > MAX_DEPTH:
            raise UsageError(f"variables nested too deeply in {text!r}", hint=_HINT)
        self.text = text
        self.env = env
        self.escape = escape
        self.split = split
        self.depth = depth
        self.words: list[str] = []
        self.cur: list[str] = []
        self.in_word = False

    def _end_word(self) -> None:
        if self.in_word:
            self.words.append("".join(self.cur))
        self.cur = []
        self.in_word = False

    def _add(self, chars: str, *, splittable: bool) -> None:
        if not (self.split and splittable):
            self.cur.append(chars)
            self.in_word = True
            return
        for ch in chars:
            if ch.isspace():
                self._end_word()
            else:
                self.cur.append(ch)
                self.in_word = True

    def run(self) -> list[str]:
        text, n, i = self.text, len(self.text), 0
        while i < n:
            ch = text[i]
            if self.split and ch.isspace():
                self._end_word()
                i += 1
            elif ch == self.escape:
                self._add(text[i + 1] if i + 1 < n else ch, splittable=False)
                i += 2
            elif ch == "'":
                end = text.find("'", i + 1)
                if end < 0:
                    raise UsageError(f"unterminated single quote in {text!r}", hint=_HINT)
                self._add(text[i + 1 : end], splittable=False)
                i = end + 1
            elif ch == '"':
                i = self._double(i + 1)
            elif ch == "$":
                value, i = self._dollar(i)
                self._add(value, splittable=True)
            else:
                self._add(ch, splittable=False)
                i += 1
        self._end_word()
        return self.words if self.split else ["".join(self.words)]

    def _double(self, i: int) -> int:
        text, n = self.text, len(self.text)
        self.in_word = True  # "" is a word
        while i < n and text[i] != '"':
            ch = text[i]
            if ch == "$":
                value, i = self._dollar(i)
                self._add(value, splittable=False)
            elif ch == self.escape and i + 1 < n and text[i + 1] in ('"', "$", self.escape):
                self._add(text[i + 1], splittable=False)
                i += 2
            else:
                self._add(ch, splittable=False)
                i += 1
        if i >= n:
            raise UsageError(f"unterminated double quote in {self.text!r}", hint=_HINT)
        return i + 1

    def _dollar(self, i: int) -> tuple[str, int]:
        """The expansion starting at ``text[i] == "$"`` and the index after it."""
        text = self.text
        nxt = text[i + 1 : i + 2]
        if nxt == "{":
            return self._braced(i + 2)
        if nxt and _NAME_START.match(nxt):
            match = _NAME.match(text, i + 1)
            assert match is not None
            return self.env.get(match.group(), ""), match.end()
        return "$", i + 1

    def _braced(self, i: int) -> tuple[str, int]:
        text = self.text
        match = _BRACED.match(text, i)
        if match is None:
            raise UsageError(f"bad substitution in {text!r}", hint=_HINT)
        name, i = match.group(), match.end()
        if text[i : i + 1] == "}":
            return self.env.get(name, ""), i + 1
        op = ""
        for candidate in (":-", ":+", ":?", "##", "%%", "//", "-", "+", "?", "#", "%", "/"):
            if text.startswith(candidate, i):
                op = candidate
                break
        if not op:
            raise UsageError(f"bad substitution in {text!r}", hint=_HINT)
        end = self._closing(i + len(op))
        raw = text[i + len(op) : end]
        value = self.env.get(name)
        return self._apply(name, value, op, raw), end + 1

    def _closing(self, i: int) -> int:
        """The index of the ``}`` closing a ``${`` whose word starts at ``i``."""
        text, depth = self.text, 0
        while i < len(text):
            ch = text[i]
            if ch == self.escape:
                i += 2
                continue
            if text.startswith("${", i):
                depth += 1
                i += 2
                continue
            if ch == "}":
                if depth == 0:
                    return i
                depth -= 1
            i += 1
        raise UsageError(f"missing '}}' in {text!r}", hint=_HINT)

    def _word(self, raw: str) -> str:
        return "".join(_Lexer(raw, self.env, self.escape, split=False, depth=self.depth + 1).run())

    def _apply(self, name: str, value: str | None, op: str, raw: str) -> str:
        if op in (":-", "-"):
            unset = value is None or (op == ":-" and value == "")
            return self._word(raw) if unset else str(value)
        if op in (":+", "+"):
            present = value is not None and (op == "+" or value != "")
            return self._word(raw) if present else ""
        if op in (":?", "?"):
            if value is None or (op == ":?" and value == ""):
                said = self._word(raw) or "is not set"
                raise UsageError(f"{name}: {said}", hint=f"pass a value: --build-arg {name}=...")
            return value
        text = value or ""
        if op in ("#", "##"):
            return _strip(text, self._word(raw), prefix=True, longest=op == "##")
        if op in ("%", "%%"):
            return _strip(text, self._word(raw), prefix=False, longest=op == "%%")
        pattern, _, replacement = raw.partition("/")
        return _replace(text, self._word(pattern), self._word(replacement), every=op == "//")


def _strip(text: str, pattern: str, *, prefix: bool, longest: bool) -> str:
    cuts = range(len(text), -1, -1) if longest else range(len(text) + 1)
    for cut in cuts:
        part = text[:cut] if prefix else text[len(text) - cut :]
        if fnmatch.fnmatchcase(part, pattern):
            return text[cut:] if prefix else text[: len(text) - cut]
    return text


def _replace(text: str, pattern: str, replacement: str, *, every: bool) -> str:
    if not pattern:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        for end in range(len(text), i, -1):  # the longest match at i, as the shell
            if fnmatch.fnmatchcase(text[i:end], pattern):
                out.append(replacement)
                i = end
                break
        else:
            out.append(text[i])
            i += 1
            continue
        if not every:
            out.append(text[i:])
            return "".join(out)
    return "".join(out)
