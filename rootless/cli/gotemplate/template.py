"""A template, parsed once and applied to values: :func:`parse`, :meth:`Template.execute`,
and :func:`render_table` for docker's ``table`` format (the header row from the column
names, the rows aligned as Go's tabwriter does). Python data stand for Go's (see
:mod:`.values`); every error is a :class:`TemplateError`, one line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rootless.cli.gotemplate.errors import TemplateError
from rootless.cli.gotemplate.execute import execute, execute_partial
from rootless.cli.gotemplate.funcs import BUILTINS, HEADER_FUNCS, Func, header_struct
from rootless.cli.gotemplate.parse import Node
from rootless.cli.gotemplate.parse import parse as parse_nodes
from rootless.cli.gotemplate.tabwriter import align
from rootless.cli.gotemplate.values import MISSING, Method, Struct

__all__ = [
    "MISSING",
    "Method",
    "Struct",
    "Template",
    "TemplateError",
    "parse",
    "render_table",
]


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template."""

    source: str
    nodes: Sequence[Node]

    def execute(self, data: Any, funcs: Mapping[str, Func] | None = None) -> str:
        try:
            return execute(self.source, self.nodes, {**BUILTINS, **(funcs or {})}, data)
        except RecursionError:
            raise TemplateError("template: : executing: nested too deeply") from None


def parse(source: str) -> Template:
    """``source`` parsed with Go's builtins and docker's functions (json, join, upper...)."""
    try:
        return Template(source, parse_nodes(source, lambda name: name in BUILTINS))
    except RecursionError:
        raise TemplateError("template: : parenthesised pipelines nested too deeply") from None


def render_table(template: Template, rows: Sequence[Any], headers: Mapping[str, str]) -> str:
    """docker's ``table`` format: a header row (the template applied to the column names,
    ``.ID`` -> ``CONTAINER ID``), then a line per row, aligned by tabs (minimum width 10,
    padding 3). Rows fail as usual; a header that fails stops where it failed, as docker's."""
    lines = [template.execute(row) + "\n" for row in rows]
    funcs = {**BUILTINS, **HEADER_FUNCS}
    header = execute_partial(template.source, template.nodes, funcs, header_struct(headers))
    return align(header + "\n" + "".join(lines), minwidth=10, padding=3)
