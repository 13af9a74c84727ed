"""The functions a template can call: Go's builtins and docker's additions.

Go's (text/template/funcs.go): and, or, not, len, index, slice, print, printf, println,
html, urlquery, eq, ne, lt, le, gt, ge (``and``/``or`` short-circuit, so the executor runs
them). docker's (docker/cli templates/templates.go): json, split, join, title, lower, upper,
pad, truncate; for a table's header row, :data:`HEADER_FUNCS` leaves the column names as
they are. Each function declares its parameters, checked before the call as Go's reflection
does (``wrong type for value; expected string; got int``).
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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
    sprintf,
    to_json,
    truth,
)


class FuncError(Exception):
    """A function's failure, reported as ``error calling NAME: message``."""


@dataclass(frozen=True, slots=True)
class Func:
    """A callable with Go's parameter kinds; ``variadic`` is the kind of the rest."""

    fn: Callable[..., Any]
    params: tuple[str, ...] = ()
    variadic: str | None = None


# Kinds that sort (basicKind in funcs.go): bool compares for equality only.
def _kind(value: Any) -> str:
    if value is None or value is MISSING:
        return "invalid"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "other"


def eq(first: Any, *others: Any) -> bool:
    if not others:
        raise FuncError("missing argument for comparison")
    kind = _kind(first)
    for other in others:
        other_kind = _kind(other)
        if kind != other_kind:
            if kind != "invalid" and other_kind != "invalid":
                raise FuncError("incompatible types for comparison")
            continue
        if kind == "other":
            if isinstance(first, (list, tuple, Mapping)) or isinstance(
                other, (list, tuple, Mapping)
            ):
                raise FuncError(f"non-comparable type {format_value(first)}: {go_type(first)}")
            if first == other:
                return True
        elif kind == "invalid" or first == other:
            return True
    return False


def ne(first: Any, second: Any) -> bool:
    return not eq(first, second)


def lt(first: Any, second: Any) -> bool:
    kind, other_kind = _kind(first), _kind(second)
    if kind in ("bool", "invalid", "other") or other_kind in ("bool", "invalid", "other"):
        raise FuncError("invalid type for comparison")
    if kind != other_kind:
        raise FuncError("incompatible types for comparison")
    return bool(first < second)


def le(first: Any, second: Any) -> bool:
    return lt(first, second) or eq(first, second)


def gt(first: Any, second: Any) -> bool:
    return not le(first, second)


def ge(first: Any, second: Any) -> bool:
    return not lt(first, second)


def not_(value: Any) -> bool:
    return not truth(value)


def length(value: Any) -> int:
    if value is None:
        raise FuncError("len of nil pointer")
    if isinstance(value, (str, list, tuple, Mapping)):
        return len(value.encode()) if isinstance(value, str) else len(value)
    raise FuncError(f"len of type {go_type(value)}")


def _position(index: Any, size: int, what: str, cap: int | None = None) -> int:
    if not isinstance(index, int) or isinstance(index, bool):
        raise FuncError(f"cannot index {what} with type {go_type(index)}")
    if index < 0 or index >= (size if cap is None else cap + 1):
        raise FuncError(f"index out of range: {index}")
    return index


def index(item: Any, *keys: Any) -> Any:
    if item is MISSING:
        raise FuncError("index of untyped nil")
    for key in keys:
        if item is None:
            raise FuncError("index of nil pointer")
        if isinstance(item, str):
            item = item.encode()[_position(key, len(item.encode()), "string")]
        elif isinstance(item, (list, tuple)):
            item = item[_position(key, len(item), "slice")]
        elif isinstance(item, Mapping):
            if not isinstance(key, str):
                raise FuncError(f"value has type {go_type(key)}; should be string")
            item = item[key] if key in item else _zero_of(item)
        else:
            raise FuncError(f"can't index item of type {go_type(item)}")
    return item


def _zero_of(mapping: Mapping[str, Any]) -> Any:
    """A missing key's zero value, that of the map's element type: "" for a map of strings
    (labels, even empty ones), 0 for one of ints, else nil (``map[string]interface {}``)."""
    kinds = {type(v) for v in mapping.values()}
    if not kinds or kinds == {str}:
        return ""
    if len(kinds) == 1 and (kind := kinds.pop()) in (int, float, bool):
        return kind()
    return None


def slice_(item: Any, *bounds: Any) -> Any:
    if not isinstance(item, (str, list, tuple)):
        raise FuncError(f"can't slice item of type {go_type(item)}")
    if len(bounds) > 2:
        raise FuncError(f"too many slice indexes: {len(bounds)}")
    size = len(item)
    start = _position(bounds[0], size, "slice", size) if bounds else 0
    end = _position(bounds[1], size, "slice", size) if len(bounds) > 1 else size
    if start > end:
        raise FuncError(f"invalid slice index: {start} > {end}")
    return item[start:end]


def sprint(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out = []
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(format_value(arg))
    return "".join(out)


def sprintln(*args: Any) -> str:
    return " ".join(format_value(a) for a in args) + "\n"


def printf(fmt: str, *args: Any) -> str:
    return sprintf(fmt, args)


def html_escape(*args: Any) -> str:
    return html.escape(sprint(*args)).replace("&#x27;", "&#39;").replace("&quot;", "&#34;")


def urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(sprint(*args))


def json_(value: Any) -> str:
    try:
        return to_json(value)
    except ValueError as exc:
        raise FuncError(str(exc)) from None


def split(text: str, sep: str) -> list[str]:
    return list(text) if sep == "" else text.split(sep)


def title(text: str) -> str:
    """strings.Title: the first letter of each word upper-cased."""
    out = []
    previous = " "
    for char in text:
        boundary = not (previous.isalnum() or previous == "_")
        out.append(char.upper() if boundary else char)
        previous = char
    return "".join(out)


def pad(text: str, prefix: int, suffix: int) -> str:
    return " " * prefix + text + " " * suffix if text else text


def truncate(text: str, size: int) -> str:
    return text if len(text) < size else text[: max(size, 0)]


def _header_same(text: str, *_: Any) -> str:
    return text


BUILTINS: dict[str, Func] = {
    "and": Func(truth, (ANY,), ANY),  # run by the executor (short-circuit)
    "or": Func(truth, (ANY,), ANY),
    "not": Func(not_, (ANY,)),
    "len": Func(length, (ANY,)),
    "index": Func(index, (ANY,), ANY),
    "slice": Func(slice_, (ANY,), ANY),
    "print": Func(sprint, (), ANY),
    "printf": Func(printf, (STRING,), ANY),
    "println": Func(sprintln, (), ANY),
    "html": Func(html_escape, (), ANY),
    "urlquery": Func(urlquery, (), ANY),
    "eq": Func(eq, (ANY,), ANY),
    "ne": Func(ne, (ANY, ANY)),
    "lt": Func(lt, (ANY, ANY)),
    "le": Func(le, (ANY, ANY)),
    "gt": Func(gt, (ANY, ANY)),
    "ge": Func(ge, (ANY, ANY)),
    # docker's
    "json": Func(json_, (ANY,)),
    "split": Func(split, (STRING, STRING)),
    "join": Func(lambda items, sep: sep.join(items), (STRINGS, STRING)),
    "title": Func(title, (STRING,)),
    "lower": Func(lambda text: text.lower(), (STRING,)),
    "upper": Func(lambda text: text.upper(), (STRING,)),
    "pad": Func(pad, (STRING, INT, INT)),
    "truncate": Func(truncate, (STRING, INT)),
}

# A table's header row runs the template on the column names: these keep them intact.
HEADER_FUNCS: dict[str, Func] = {
    "json": Func(_header_same, (STRING,)),
    "split": Func(_header_same, (STRING, STRING)),
    "join": Func(_header_same, (STRING, STRING)),
    "title": Func(_header_same, (STRING,)),
    "lower": Func(_header_same, (STRING,)),
    "upper": Func(_header_same, (STRING,)),
    "truncate": Func(_header_same, (STRING, INT)),
}


def header_struct(headers: Mapping[str, str], type_name: str = "header") -> Struct:
    """The data of a table's header row: every field (and method) is its column's name."""
    return Struct(
        type_name,
        {name: Method(lambda *_, text=text: text, None) for name, text in headers.items()},
    )
