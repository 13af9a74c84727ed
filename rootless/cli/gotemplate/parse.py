"""The parser of Go's text/template: tokens become a tree of nodes.

As text/template/parse/parse.go: a pipeline is optional variable declarations and commands
joined by ``|``; a command is operands; an operand is a term (field, variable, function,
literal, parenthesised pipeline) followed by field names. ``{{else if}}`` (and ``{{else
with}}``) nest a control in the else branch that shares the outer ``{{end}}``. Variables are
checked when parsed (``undefined variable "$x"``) and functions are looked up then
(``function "x" not defined``). define/template/block are not offered: a template is one
``--format`` string.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rootless.cli.gotemplate.errors import TemplateError
from rootless.cli.gotemplate.lex import SPACES, Tok, Token, line_of, tokenize


@dataclass(slots=True)
class Node:
    pos: int
    source: str  # the node's text, for ``executing "" at <...>``


@dataclass(slots=True)
class Text(Node):
    text: str = ""


@dataclass(slots=True)
class Literal(Node):
    value: Any = None  # str, int, float, bool or None (nil)
    kind: Tok = Tok.NIL
    is_int: bool = False


@dataclass(slots=True)
class Dot(Node):
    pass


@dataclass(slots=True)
class Field(Node):
    names: tuple[str, ...] = ()


@dataclass(slots=True)
class Variable(Node):
    name: str = ""
    names: tuple[str, ...] = ()  # fields after the variable: $x.A.B


@dataclass(slots=True)
class Identifier(Node):
    name: str = ""


@dataclass(slots=True)
class Chain(Node):
    node: Node | None = None  # a parenthesised pipeline, followed by fields
    names: tuple[str, ...] = ()


@dataclass(slots=True)
class Command(Node):
    args: list[Node] = field(default_factory=list)


@dataclass(slots=True)
class Pipe(Node):
    decl: list[str] = field(default_factory=list)
    is_assign: bool = False
    cmds: list[Command] = field(default_factory=list)


@dataclass(slots=True)
class Action(Node):
    pipe: Pipe | None = None


@dataclass(slots=True)
class Control(Node):
    kind: str = "if"  # if | with | range
    pipe: Pipe | None = None
    body: list[Node] = field(default_factory=list)
    else_body: list[Node] | None = None


@dataclass(slots=True)
class Break(Node):
    keyword: str = "break"  # or continue


@dataclass(slots=True)
class _End:
    pos: int


@dataclass(slots=True)
class _Else:
    pos: int
    chained: str | None  # "if" / "with" for {{else if ...}}, {{else with ...}}


class Parser:
    """One template's tokens to a list of nodes."""

    def __init__(self, source: str, is_func: Callable[[str], bool]) -> None:
        self.src = source
        self.tokens = tokenize(source)
        self.at = 0
        self.is_func = is_func
        self.vars = ["$"]
        self.range_depth = 0

    # Tokens
    def next(self) -> Token:
        token = self.tokens[self.at]
        if token.kind is not Tok.EOF:
            self.at += 1
        return token

    def peek(self) -> Token:
        return self.tokens[self.at]

    def next_non_space(self) -> Token:
        token = self.next()
        while token.kind is Tok.SPACE:
            token = self.next()
        return token

    def peek_non_space(self) -> Token:
        token = self.next_non_space()
        self.at -= 1 if token.kind is not Tok.EOF else 0
        return token

    def fail(self, message: str, pos: int | None = None) -> TemplateError:
        at = self.tokens[max(self.at - 1, 0)].pos if pos is None else pos
        return TemplateError(f"template: :{line_of(self.src, at)}: {message}")

    def unexpected(self, token: Token, context: str) -> TemplateError:
        if token.kind is Tok.EOF:
            return self.fail(f"unexpected EOF in {context}")
        return self.fail(f"unexpected {token} in {context}", token.pos)

    def source(self, start: int) -> str:
        """The text of tokens ``start`` to the current one (an error's context)."""
        return "".join(t.text for t in self.tokens[start : self.at]).strip(SPACES)

    # Lists and actions
    def parse(self) -> list[Node]:
        nodes, end = self.item_list()
        if isinstance(end, _End):
            raise self.fail("unexpected {{end}}", end.pos)
        if isinstance(end, _Else):
            raise self.fail("unexpected {{else}}", end.pos)
        return nodes

    def item_list(self) -> tuple[list[Node], _End | _Else | None]:
        nodes: list[Node] = []
        while True:
            token = self.next()
            if token.kind is Tok.EOF:
                return nodes, None
            if token.kind is Tok.TEXT:
                nodes.append(Text(token.pos, token.text, token.text))
                continue
            node = self.action(token)
            if isinstance(node, (_End, _Else)):
                return nodes, node
            nodes.append(node)

    def action(self, left: Token) -> Node | _End | _Else:
        token = self.next_non_space()
        if token.kind is Tok.KEYWORD:
            word = token.text
            if word == "end":
                self.expect_right("end")
                return _End(token.pos)
            if word == "else":
                follow = self.peek_non_space()
                if follow.kind is Tok.KEYWORD and follow.text in ("if", "with"):
                    return _Else(token.pos, follow.text)
                self.expect_right("else")
                return _Else(token.pos, None)
            if word in ("if", "with", "range"):
                return self.control(word, token.pos)
            if word in ("break", "continue"):
                if not self.range_depth:
                    raise self.fail(f"{{{{{word}}}}} outside {{{{range}}}}", token.pos)
                self.expect_right(word)
                return Break(token.pos, word, word)
            raise self.fail(f"{{{{{word}}}}} is not supported in --format templates", token.pos)
        self.at -= 1
        start = self.at
        pipe = self.pipeline("command", Tok.RIGHT)
        return Action(left.pos, self.source(start), pipe)

    def expect_right(self, context: str) -> None:
        token = self.next_non_space()
        if token.kind is not Tok.RIGHT:
            raise self.unexpected(token, f"{{{{{context}}}}}")

    def control(self, kind: str, pos: int) -> Control:
        depth = len(self.vars)
        try:
            pipe = self.pipeline(kind, Tok.RIGHT)
            after_pipe = len(self.vars)
            self.range_depth += kind == "range"
            body, end = self.item_list()
            self.range_depth -= kind == "range"
            else_body: list[Node] | None = None
            if end is None:
                raise self.fail("unexpected EOF")
            if isinstance(end, _Else):
                self.vars = self.vars[:after_pipe]
                if end.chained is not None:
                    if end.chained != kind:
                        raise self.fail(f"unexpected <{end.chained}> after else in {kind}", end.pos)
                    self.next_non_space()  # the chained keyword
                    else_body = [self.control(kind, end.pos)]
                else:
                    else_body, last = self.item_list()
                    if not isinstance(last, _End):
                        raise self.fail(
                            f"expected end; found {'EOF' if last is None else '{{else}}'}"
                        )
            return Control(pos, kind, kind, pipe, body, else_body)
        finally:
            self.vars = self.vars[:depth]

    # Pipelines and commands
    def pipeline(self, context: str, end: Tok) -> Pipe:  # noqa: PLR0912 - as parse.go's
        start_token = self.peek_non_space()
        pipe = Pipe(start_token.pos, "")
        while True:
            token = self.peek_non_space()
            if token.kind is not Tok.VARIABLE:
                break
            mark = self.at
            self.next_non_space()
            follow = self.peek_non_space()
            if follow.kind in (Tok.DECLARE, Tok.ASSIGN):
                self.next_non_space()
                pipe.is_assign = follow.kind is Tok.ASSIGN
                if pipe.is_assign and token.text not in self.vars:
                    raise self.fail(f'undefined variable "{token.text}"', token.pos)
                pipe.decl.append(token.text)
                self.vars.append(token.text)
                break
            if follow.kind is Tok.COMMA:
                self.next_non_space()
                pipe.decl.append(token.text)
                self.vars.append(token.text)
                if context == "range" and len(pipe.decl) < 2:
                    nxt = self.peek_non_space()
                    if nxt.kind in (Tok.VARIABLE, Tok.RIGHT, Tok.RPAREN):
                        continue
                    raise self.fail("range can only initialize variables")
                raise self.fail(f"too many declarations in {context}")
            self.at = mark
            break
        start = self.at
        while True:
            token = self.next_non_space()
            if token.kind is end:
                if not pipe.cmds:
                    raise self.fail(f"missing value for {context}")
                for stage, cmd in enumerate(pipe.cmds[1:], start=2):
                    if isinstance(cmd.args[0], (Literal, Dot)):
                        raise self.fail(f"non executable command in pipeline stage {stage}")
                pipe.source = self.source(start)[:-2].strip() if end is Tok.RIGHT else ""
                return pipe
            if token.kind in _OPERAND_START:
                self.at -= 1
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(token, context)

    def command(self) -> Command:
        start = self.at
        cmd = Command(self.peek_non_space().pos, "")
        while True:
            self.peek_non_space()
            while self.peek().kind is Tok.SPACE:
                self.next()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.kind is Tok.SPACE:
                continue
            if token.kind in (Tok.RIGHT, Tok.RPAREN):
                self.at -= 1
            elif token.kind is not Tok.PIPE:
                raise self.unexpected(token, "operand")
            break
        if not cmd.args:
            raise self.fail("empty command")
        cmd.source = self.source(start).rstrip("|").strip()
        return cmd

    def operand(self) -> Node | None:
        start = self.at
        node = self.term()
        if node is None:
            return None
        if self.peek().kind is Tok.FIELD:
            names = []
            while self.peek().kind is Tok.FIELD:
                names.append(self.next().text[1:])
            source = self.source(start)
            if isinstance(node, Field):
                return Field(node.pos, source, (*node.names, *names))
            if isinstance(node, Variable):
                return Variable(node.pos, source, node.name, (*node.names, *names))
            if isinstance(node, (Literal, Dot)):
                raise self.fail(f"unexpected . after term {node.source!r}")
            return Chain(node.pos, source, node, tuple(names))
        return node

    def term(self) -> Node | None:  # noqa: PLR0911 - one return per kind of term
        token = self.next_non_space()
        kind, text, pos = token.kind, token.text, token.pos
        if kind is Tok.IDENT:
            if not self.is_func(text):
                raise self.fail(f'function "{text}" not defined', pos)
            return Identifier(pos, text, text)
        if kind is Tok.DOT:
            return Dot(pos, ".")
        if kind is Tok.NIL:
            return Literal(pos, "nil", None, Tok.NIL)
        if kind is Tok.VARIABLE:
            if text not in self.vars:
                raise self.fail(f'undefined variable "{text}"', pos)
            return Variable(pos, text, text)
        if kind is Tok.FIELD:
            return Field(pos, text, (text[1:],))
        if kind is Tok.BOOL:
            return Literal(pos, text, text == "true", Tok.BOOL)
        if kind in (Tok.CHAR, Tok.NUMBER):
            value, is_int = self.number(token)
            return Literal(pos, text, value, Tok.NUMBER, is_int)
        if kind is Tok.LPAREN:
            start = self.at - 1
            pipe = self.pipeline("parenthesized pipeline", Tok.RPAREN)
            pipe.source = self.source(start)
            return pipe
        if kind in (Tok.STRING, Tok.RAW):
            return Literal(pos, text, self.unquote(token), Tok.STRING)
        self.at -= 1
        return None

    def unquote(self, token: Token) -> str:
        if token.kind is Tok.RAW:
            return token.text[1:-1].replace("\r", "")
        try:
            value = ast.literal_eval(_go_escapes(token.text))
        except (ValueError, SyntaxError):
            raise self.fail(f"invalid syntax: {token.text}", token.pos) from None
        assert isinstance(value, str)
        return value

    def number(self, token: Token) -> tuple[int | float, bool]:
        """An integer or a float (``1e3`` and ``1.0`` are floats that print as 1000, 1)."""
        text = token.text
        if token.kind is Tok.CHAR:
            try:
                value = ast.literal_eval(_go_escapes(text))
            except (ValueError, SyntaxError):
                value = None
            if not isinstance(value, str) or len(value) != 1:
                raise self.fail(f"malformed character constant: {text}", token.pos)
            return ord(value), True
        clean = text.replace("_", "")
        body = clean.lstrip("+-")
        negative = clean.startswith("-")
        try:
            if body[:2].lower() in ("0x", "0o", "0b") and not any(c in body.lower() for c in ".p"):
                number: int | float = int(body, 0)
            elif body.isdigit():
                number = int(body, 8) if len(body) > 1 and body[0] == "0" else int(body)
            elif body[:2].lower() == "0x":
                number = float.fromhex(body)
            else:
                number = float(body)
        except ValueError:
            raise self.fail(f'bad number syntax: "{text}"', token.pos) from None
        if body and body[-1:] == "i":
            raise self.fail(f'bad number syntax: "{text}"', token.pos)
        if negative:
            number = -number
        if isinstance(number, float):
            return number, number.is_integer()
        if not -(2**63) <= number < 2**63:
            raise self.fail(f"{text} overflows int", token.pos)
        return number, True


_OPERAND_START = frozenset(
    {Tok.BOOL, Tok.CHAR, Tok.DOT, Tok.FIELD, Tok.IDENT, Tok.NUMBER, Tok.NIL, Tok.RAW, Tok.STRING,
     Tok.VARIABLE, Tok.LPAREN}
)  # fmt: skip


_ESCAPE = re.compile(
    r"\\(?:[abfnrtv\\'\"]|x[0-9a-fA-F]{2}|[0-7]{3}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})"
)


def _go_escapes(quoted: str) -> str:
    """A Go string or character literal, checked to hold only Go's escapes, so that Python's
    literal syntax (the same escapes) reads it."""
    if "\\" in _ESCAPE.sub("", quoted):
        raise ValueError(f"invalid escape in {quoted}")
    return quoted


def parse(source: str, is_func: Callable[[str], bool]) -> list[Node]:
    """The nodes of a template; a syntax error raises TemplateError."""
    return Parser(source, is_func).parse()
