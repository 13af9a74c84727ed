"""The executor of Go's text/template: a parsed template applied to data.

As text/template/exec.go: ``.Name`` on a map is the key's value or ``<no value>``; on a
:class:`~rootless.cli.gotemplate.values.Struct` a field, a method (called with the
command's arguments, the pipeline's value last) or the error "can't evaluate field"; on nil
an error. Variables live until the end of the control that declared them; ``range`` sets
dot (and ``$i, $e``) per element, maps in key order; ``and``/``or`` stop at the deciding
argument. Every failure is one line: ``template: :LINE:COL: executing "" at <NODE>: ...``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from rootless.cli.gotemplate.errors import TemplateError
from rootless.cli.gotemplate.funcs import Func, FuncError
from rootless.cli.gotemplate.lex import Tok
from rootless.cli.gotemplate.parse import (
    Action,
    Break,
    Chain,
    Command,
    Control,
    Dot,
    Field,
    Identifier,
    Literal,
    Node,
    Pipe,
    Text,
    Variable,
)
from rootless.cli.gotemplate.values import (
    ANY,
    INT,
    MISSING,
    STRING,
    STRINGS,
    Method,
    Struct,
    format_value,
    go_type,
    truth,
)

_NO_FINAL: Any = object()  # no value piped in (Go's missingVal)


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Executor:
    """Runs one template's nodes on one value; collects the output."""

    def __init__(self, source: str, funcs: Mapping[str, Func], root: Any) -> None:
        self.src = source
        self.funcs = funcs
        self.vars: list[tuple[str, Any]] = [("$", root)]
        self.out: list[str] = []
        self.node: Node | None = None

    def fail(self, message: str) -> TemplateError:
        if self.node is None:
            return TemplateError(f'template: : executing "": {message}')
        pos = self.node.pos
        line = self.src.count("\n", 0, pos) + 1
        newline = self.src.rfind("\n", 0, pos)
        col = pos if newline < 0 else pos - newline - 1
        context = " ".join(self.node.source.split())
        return TemplateError(f'template: :{line}:{col}: executing "" at <{context}>: {message}')

    # Nodes
    def walk(self, dot: Any, nodes: Sequence[Node]) -> None:
        for node in nodes:
            if isinstance(node, Text):
                self.out.append(node.text)
            elif isinstance(node, Action):
                assert node.pipe is not None
                value = self.pipeline(dot, node.pipe)
                if not node.pipe.decl:
                    self.out.append(format_value(value))
            elif isinstance(node, Control):
                self.control(dot, node)
            elif isinstance(node, Break):
                raise _Break if node.keyword == "break" else _Continue

    def control(self, dot: Any, node: Control) -> None:
        mark = len(self.vars)
        try:
            assert node.pipe is not None
            if node.kind == "range":
                self.range(dot, node)
                return
            value = self.pipeline(dot, node.pipe)
            if truth(value):
                self.walk(value if node.kind == "with" else dot, node.body)
            elif node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            del self.vars[mark:]

    def range(self, dot: Any, node: Control) -> None:  # noqa: PLR0912 - per kind of value
        assert node.pipe is not None
        value = self.pipeline(dot, node.pipe)
        self.node = node.pipe
        items: list[tuple[Any, Any]]
        if value is MISSING or value is None:
            items = []
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif isinstance(value, Mapping):
            items = [(key, value[key]) for key in sorted(value, key=str)]
        elif isinstance(value, int) and not isinstance(value, bool):
            if len(node.pipe.decl) > 1:
                raise self.fail(f"can't use {value} to iterate over more than one variable")
            items = [(i, i) for i in range(max(value, 0))]
        else:
            raise self.fail(f"range can't iterate over {format_value(value)}")
        if not items:
            if node.else_body is not None:
                self.walk(dot, node.else_body)
            return
        mark = len(self.vars)
        decl = node.pipe.decl
        for key, elem in items:
            if len(decl) == 1:
                self.set_var(decl[0], elem)
            elif len(decl) == 2:
                self.set_var(decl[0], key)
                self.set_var(decl[1], elem)
            try:
                self.walk(elem, node.body)
            except _Break:
                break
            except _Continue:
                continue
            finally:
                del self.vars[mark:]

    # Pipelines
    def pipeline(self, dot: Any, pipe: Pipe) -> Any:
        value = _NO_FINAL
        for cmd in pipe.cmds:
            value = self.command(dot, cmd, value)
        for name in pipe.decl:
            if pipe.is_assign:
                self.set_var(name, value)
            else:
                self.vars.append((name, value))
        return value

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        self.vars.append((name, value))

    def var(self, name: str) -> Any:
        for key, value in reversed(self.vars):
            if key == name:
                return value
        raise self.fail(f"undefined variable: {name}")

    def command(self, dot: Any, cmd: Command, final: Any) -> Any:  # noqa: PLR0911 - per node kind
        first = cmd.args[0]
        if isinstance(first, Field):
            self.node = first
            return self.field_chain(dot, dot, first.names, cmd.args, final)
        if isinstance(first, Chain):
            self.node = first
            if len(cmd.args) > 1:  # a piped value may go to a method at the chain's end
                raise self.fail(f"can't give argument to non-function {first.source}")
            assert first.node is not None
            receiver = self.arg(dot, first.node, ANY)
            return self.field_chain(dot, receiver, first.names, cmd.args, final)
        if isinstance(first, Identifier):
            return self.call_function(dot, first, cmd.args, final, cmd)
        if isinstance(first, Variable):
            self.node = first
            value = self.var(first.name)
            if not first.names:
                self.no_args(cmd.args, final, first)
                return value
            return self.field_chain(dot, value, first.names, cmd.args, final)
        if isinstance(first, Pipe):
            self.no_args(cmd.args, final, first)
            return self.pipeline(dot, first)
        self.node = first
        if isinstance(first, Literal) and first.kind is Tok.NIL:
            raise self.fail("nil is not a command")
        self.no_args(cmd.args, final, first)
        return dot if isinstance(first, Dot) else self.literal(first)

    def no_args(self, args: Sequence[Node], final: Any, node: Node) -> None:
        if len(args) > 1 or final is not _NO_FINAL:
            raise self.fail(f"can't give argument to non-function {node.source}")

    def literal(self, node: Node) -> Any:
        assert isinstance(node, Literal)
        return node.value

    def field_chain(
        self, dot: Any, receiver: Any, names: Sequence[str], args: Sequence[Node], final: Any
    ) -> Any:
        for name in names[:-1]:
            receiver = self.field(dot, name, receiver, (), _NO_FINAL)
        return self.field(dot, names[-1], receiver, args, final)

    def field(self, dot: Any, name: str, receiver: Any, args: Sequence[Node], final: Any) -> Any:
        if receiver is MISSING:
            return MISSING
        if receiver is None:
            raise self.fail(f"nil pointer evaluating interface {{}}.{name}")
        has_args = len(args) > 1 or final is not _NO_FINAL
        if isinstance(receiver, Struct):
            if name not in receiver.members:
                raise self.fail(f"can't evaluate field {name} in type {receiver.type_name}")
            member = receiver.members[name]
            if isinstance(member, Method):
                values = self.call_args(dot, name, member.params, None, args, final)
                return member.fn(*values)
            if has_args:
                raise self.fail(f"{name} has arguments but cannot be invoked as function")
            return member
        if isinstance(receiver, Mapping):
            if has_args:
                raise self.fail(f"{name} is not a method but has arguments")
            return receiver.get(name, MISSING)
        raise self.fail(f"can't evaluate field {name} in type {go_type(receiver)}")

    # Calls
    def call_function(
        self, dot: Any, node: Identifier, args: Sequence[Node], final: Any, at: Node
    ) -> Any:
        """Calls a function; its own failure is reported at the whole command (``at``)."""
        self.node = node
        func = self.funcs[node.name]
        if node.name in ("and", "or"):
            return self.and_or(dot, node, args, final)
        values = self.call_args(dot, node.name, func.params, func.variadic, args, final)
        self.node = at
        try:
            return func.fn(*values)
        except FuncError as exc:
            raise self.fail(f"error calling {node.name}: {exc}") from None

    def and_or(self, dot: Any, node: Identifier, args: Sequence[Node], final: Any) -> Any:
        count = len(args) - 1 + (final is not _NO_FINAL)
        if count < 1:
            raise self.fail(f"wrong number of args for {node.name}: want at least 1 got 0")
        stop_on = node.name == "or"
        value: Any = MISSING
        for arg in args[1:]:
            value = self.arg(dot, arg, ANY)
            if truth(value) == stop_on:
                return value
        if final is not _NO_FINAL:
            value = final
        return value

    def call_args(
        self,
        dot: Any,
        name: str,
        params: tuple[str, ...] | None,
        variadic: str | None,
        args: Sequence[Node],
        final: Any,
    ) -> list[Any]:
        given = list(args[1:])
        count = len(given) + (final is not _NO_FINAL)
        if params is None:
            params, variadic = (), ANY
        if variadic is None and count != len(params):
            raise self.fail(f"wrong number of args for {name}: want {len(params)} got {count}")
        if variadic is not None and count < len(params):
            raise self.fail(
                f"wrong number of args for {name}: want at least {len(params)} got {count}"
            )
        kinds = [*params, *[variadic or ANY] * (count - len(params))]
        values = [self.arg(dot, arg, kind) for arg, kind in zip(given, kinds, strict=False)]
        if final is not _NO_FINAL:
            values.append(self.check(final, kinds[-1]))
        return values

    def arg(self, dot: Any, node: Node, kind: str) -> Any:  # noqa: PLR0911 - per node kind
        self.node = node
        if isinstance(node, Literal):
            return self.literal_arg(node, kind)
        if isinstance(node, Dot):
            return self.check(dot, kind)
        if isinstance(node, Field):
            return self.check(self.field_chain(dot, dot, node.names, [node], _NO_FINAL), kind)
        if isinstance(node, Variable):
            value = self.var(node.name)
            if node.names:
                value = self.field_chain(dot, value, node.names, [node], _NO_FINAL)
            return self.check(value, kind)
        if isinstance(node, Pipe):
            return self.check(self.pipeline(dot, node), kind)
        if isinstance(node, Chain):
            assert node.node is not None
            receiver = self.arg(dot, node.node, ANY)
            self.node = node
            return self.check(self.field_chain(dot, receiver, node.names, [node], _NO_FINAL), kind)
        if isinstance(node, Identifier):
            return self.check(self.call_function(dot, node, [node], _NO_FINAL, node), kind)
        raise self.fail(f"can't handle {node.source} for arg of type {kind}")

    def literal_arg(self, node: Literal, kind: str) -> Any:
        value = node.value
        if kind == ANY or (node.kind is Tok.NIL and kind not in (STRING, INT)):
            return value
        if kind == STRING and node.kind is Tok.STRING:
            return value
        if kind == INT and node.kind is Tok.NUMBER and node.is_int:
            return int(value)
        expected = {STRING: "string", INT: "integer", STRINGS: "[]string"}.get(kind, kind)
        if node.kind is Tok.NIL:
            raise self.fail(f"cannot assign nil to {kind}")
        raise self.fail(f"expected {expected}; found {node.source}")

    def check(self, value: Any, kind: str) -> Any:
        if kind == ANY:
            return value
        ok = {
            STRING: isinstance(value, str),
            INT: isinstance(value, int) and not isinstance(value, bool),
            STRINGS: isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value),
        }[kind]
        if not ok:
            if value is MISSING:
                raise self.fail(f"invalid value; expected {kind}")
            raise self.fail(f"wrong type for value; expected {kind}; got {go_type(value)}")
        return list(value) if kind == STRINGS else value


def execute(source: str, nodes: Sequence[Node], funcs: Mapping[str, Func], data: Any) -> str:
    """The text of ``nodes`` applied to ``data``; a failure raises TemplateError."""
    executor = Executor(source, funcs, data)
    executor.walk(data, nodes)
    return "".join(executor.out)


def execute_partial(
    source: str, nodes: Sequence[Node], funcs: Mapping[str, Func], data: Any
) -> str:
    """What ``nodes`` write on ``data`` up to a failure, if any (docker's table header)."""
    executor = Executor(source, funcs, data)
    with contextlib.suppress(TemplateError):
        executor.walk(data, nodes)
    return "".join(executor.out)
