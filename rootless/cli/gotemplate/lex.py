"""The lexer of Go's text/template: a template's text becomes a list of tokens.

It follows Go's text/template/parse/lex.go: text outside ``{{ }}`` is one token; inside an
action, spaces are tokens too (they separate arguments: ``.A.B`` is one chain, ``.A .B`` two
operands). Trim markers need their space (``{{- x}}`` trims, ``{{-3}}`` is the number -3),
and a comment must sit right against its delimiters (``{{/* c */}}``, ``{{- /* c */ -}}``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rootless.cli.gotemplate.errors import TemplateError

LEFT, RIGHT = "{{", "}}"
SPACES = " \t\r\n"
KEYWORDS = frozenset(
    {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"}
)


class Tok(enum.Enum):
    TEXT = "text"
    LEFT = "{{"
    RIGHT = "}}"
    SPACE = "space"
    FIELD = "field"
    DOT = "."
    VARIABLE = "variable"
    IDENT = "identifier"
    KEYWORD = "keyword"
    STRING = "string"
    RAW = "raw string"
    CHAR = "character constant"
    NUMBER = "number"
    BOOL = "bool"
    NIL = "nil"
    PIPE = "|"
    LPAREN = "("
    RPAREN = ")"
    DECLARE = ":="
    ASSIGN = "="
    COMMA = ","
    EOF = "EOF"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Tok
    text: str
    pos: int  # offset in the template, for the line numbers of errors

    def __str__(self) -> str:
        if self.kind is Tok.EOF:
            return "EOF"
        if self.kind is Tok.KEYWORD:
            return f"<{self.text}>"
        return '"' + self.text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def line_of(source: str, pos: int) -> int:
    return source.count("\n", 0, pos) + 1


class Lexer:
    """Splits one template into tokens (all at once: templates are a line or two)."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.pos = 0
        self.tokens: list[Token] = []
        self.parens = 0

    def fail(self, message: str, pos: int | None = None) -> TemplateError:
        line = line_of(self.src, self.pos if pos is None else pos)
        return TemplateError(f"template: :{line}: {message}")

    def emit(self, kind: Tok, start: int, text: str | None = None) -> None:
        self.tokens.append(Token(kind, self.src[start : self.pos] if text is None else text, start))

    def run(self) -> list[Token]:
        src = self.src
        trim_next = False
        while self.pos < len(src):
            start = self.pos
            found = src.find(LEFT, start)
            end = len(src) if found < 0 else found
            text = src[start:end]
            trims = found >= 0 and src.startswith("-", found + 2) and _space_at(src, found + 3)
            if trim_next:
                text = text.lstrip(SPACES)
            if trims:
                text = text.rstrip(SPACES)
            if text:
                self.tokens.append(Token(Tok.TEXT, text, start))
            if found < 0:
                break
            self.pos = found
            trim_next = self.action(trims)
        self.tokens.append(Token(Tok.EOF, "", len(src)))
        return self.tokens

    def action(self, trims: bool) -> bool:
        """Lexes one ``{{ ... }}``; says whether it ends with a trim marker."""
        src = self.src
        start = self.pos
        self.pos += 2 + (2 if trims else 0)
        if src.startswith("/*", self.pos):
            return self.comment(start)
        self.emit(Tok.LEFT, start, LEFT)
        self.parens = 0
        while True:
            at = self.at_right()
            if at:
                if self.parens:
                    raise self.fail("unclosed left paren")
                right = self.pos
                self.pos += at
                self.emit(Tok.RIGHT, right, RIGHT)
                return at == 4
            if self.pos >= len(src):
                started = line_of(src, start)
                if started == line_of(src, self.pos):
                    raise self.fail("unclosed action", start)
                raise self.fail(f"unclosed action started at :{started}")
            self.inside()

    def comment(self, start: int) -> bool:
        end = self.src.find("*/", self.pos + 2)
        if end < 0:
            raise self.fail("unclosed comment", start)
        self.pos = end + 2
        at = self.at_right()
        if not at:
            raise self.fail("comment ends before closing delimiter", start)
        self.pos += at
        return at == 4

    def at_right(self) -> int:
        """The length of the right delimiter here (4 with its trim marker), else 0."""
        src, pos = self.src, self.pos
        if src.startswith(RIGHT, pos):
            return 2
        if _space_at(src, pos) and src.startswith("-" + RIGHT, pos + 1):
            return 4
        return 0

    def inside(self) -> None:  # noqa: PLR0912, PLR0915 - a branch per kind of token, as lex.go
        src = self.src
        start = self.pos
        char = src[start]
        nxt = src[start + 1] if start + 1 < len(src) else ""
        if char in SPACES:
            while self.pos < len(src) and src[self.pos] in SPACES and not self.at_right():
                self.pos += 1
            self.emit(Tok.SPACE, start)
        elif char == ":" and nxt == "=":
            self.pos += 2
            self.emit(Tok.DECLARE, start)
        elif char in "=|,":
            self.pos += 1
            kind = {"=": Tok.ASSIGN, "|": Tok.PIPE, ",": Tok.COMMA}[char]
            self.emit(kind, start)
        elif char == '"':
            self.quoted(start)
        elif char == "`":
            end = src.find("`", start + 1)
            if end < 0:
                raise self.fail("unterminated raw quoted string", start)
            self.pos = end + 1
            self.emit(Tok.RAW, start)
        elif char == "'":
            self.char_constant(start)
        elif char == "$":
            self.pos += 1
            self.word()
            self.emit(Tok.VARIABLE, start)
        elif char == "." and nxt.isdigit():
            self.number(start)
        elif char == ".":
            self.pos += 1
            self.word()
            self.emit(Tok.FIELD if self.pos > start + 1 else Tok.DOT, start)
        elif char in "+-" or char.isdigit():
            self.number(start)
        elif char == "_" or char.isalpha():
            self.word()
            word = src[start : self.pos]
            if word in KEYWORDS:
                self.emit(Tok.KEYWORD, start)
            elif word in ("true", "false"):
                self.emit(Tok.BOOL, start)
            else:
                self.emit(Tok.NIL if word == "nil" else Tok.IDENT, start)
        elif char == "(":
            self.parens += 1
            self.pos += 1
            self.emit(Tok.LPAREN, start)
        elif char == ")":
            self.parens -= 1
            if self.parens < 0:
                raise self.fail("unexpected right paren")
            self.pos += 1
            self.emit(Tok.RPAREN, start)
        else:
            raise self.fail(f"unrecognized character in action: U+{ord(char):04X} {char!r}")

    def word(self) -> None:
        src = self.src
        while self.pos < len(src) and (src[self.pos] == "_" or src[self.pos].isalnum()):
            self.pos += 1

    def quoted(self, start: int) -> None:
        src = self.src
        self.pos += 1
        while True:
            if self.pos >= len(src) or src[self.pos] == "\n":
                raise self.fail("unterminated quoted string", start)
            if src[self.pos] == "\\":
                self.pos += 2
                continue
            self.pos += 1
            if src[self.pos - 1] == '"':
                break
        self.emit(Tok.STRING, start)

    def char_constant(self, start: int) -> None:
        src = self.src
        self.pos += 1
        while True:
            if self.pos >= len(src) or src[self.pos] == "\n":
                raise self.fail("unterminated character constant", start)
            if src[self.pos] == "\\":
                self.pos += 2
                continue
            self.pos += 1
            if src[self.pos - 1] == "'":
                break
        self.emit(Tok.CHAR, start)

    def number(self, start: int) -> None:
        src = self.src
        if src[self.pos] in "+-":
            self.pos += 1
        while self.pos < len(src) and (src[self.pos].isalnum() or src[self.pos] in "._"):
            # An exponent's sign belongs to the number (1e-3, 0x1p+2).
            if src[self.pos] in "eEpP" and self.pos + 1 < len(src) and src[self.pos + 1] in "+-":
                hexa = src[start : self.pos].lstrip("+-").lower().startswith("0x")
                if (src[self.pos] in "pP") == hexa:
                    self.pos += 1
            self.pos += 1
        self.emit(Tok.NUMBER, start)


def _space_at(src: str, pos: int) -> bool:
    return pos < len(src) and src[pos] in SPACES


def tokenize(source: str) -> list[Token]:
    """The tokens of ``source``, ending with EOF; a lexical error raises TemplateError."""
    return Lexer(source).run()
