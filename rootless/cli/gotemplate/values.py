"""Template values the way Go sees and prints them.

Python data stand for Go values: ``None`` is nil, ``bool``/``int``/``float``/``str`` the basic
kinds, lists are slices and dicts are maps (``map[string]interface {}``: a missing key is
``<no value>``). A :class:`Struct` is a Go struct: its fields are fixed and a missing one is
an error; its :class:`Method` members take arguments (``{{.Label "k"}}``). ``MISSING`` is
Go's invalid value, what a missing map key yields. Printing follows fmt's ``%v``, JSON
follows encoding/json (sorted map keys, struct fields in order, no HTML escaping), and
:func:`sprintf` implements printf's common verbs with Go's ``%!verb(type=value)`` marks.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class _Missing:
    """Go's invalid reflect.Value: printed ``<no value>``, false in ``if``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

# Parameter kinds of functions and methods: what Go's reflection checks before a call.
ANY, STRING, INT, STRINGS = "interface {}", "string", "int", "[]string"


@dataclass(frozen=True, slots=True)
class Method:
    """A struct's method: ``fn`` takes the template arguments, checked against ``params``
    (``None``: any number of any kind)."""

    fn: Callable[..., Any]
    params: tuple[str, ...] | None = ()


@dataclass(frozen=True, slots=True)
class Struct:
    """A Go struct: named fields (values, or methods computed when used) and a type name
    for error messages."""

    type_name: str
    members: Mapping[str, Any] = field(default_factory=dict)
    # docker's row contexts marshal as a map of their methods' values: keys sorted.
    json_sorted: bool = False

    def data(self) -> dict[str, Any]:
        """Fields and argument-less methods, evaluated (what JSON and ``%v`` show)."""
        out = {}
        for name, member in self.members.items():
            if isinstance(member, Method):
                if not member.params:
                    out[name] = member.fn()
            else:
                out[name] = member
        return out


def go_type(value: Any) -> str:  # noqa: PLR0911 - one return per Go kind
    """The Go type name of a value, as error messages and ``%!d(string=x)`` show it."""
    if value is None:
        return "<nil>"
    if value is MISSING:
        return "<invalid Value>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Struct):
        return value.type_name
    if isinstance(value, (list, tuple)):
        return "[]string" if value and all(isinstance(v, str) for v in value) else "[]interface {}"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    return type(value).__name__


def truth(value: Any) -> bool:
    """Go's isTrue: false, 0, nil, the empty string, slice or map are false; structs true."""
    if value is MISSING or value is None:
        return False
    if isinstance(value, Struct):
        return True
    if isinstance(value, (bool, int, float)):
        return bool(value)
    if isinstance(value, (str, list, tuple, Mapping)):
        return len(value) > 0
    return True


def format_float(value: float, verb: str = "g", prec: int = -1) -> str:  # noqa: PLR0911
    """strconv.FormatFloat for 'g' (shortest, %v), 'e' and 'f'."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if verb == "f":
        return _shortest_f(value) if prec < 0 else f"{value:.{prec}f}"
    if verb == "e":
        text = f"{value:.{prec}e}" if prec >= 0 else _shortest_e(value)
        return _go_exponent(text)
    if prec >= 0:
        return _go_exponent(f"{value:.{prec or 1}g}")
    # The shortest 'g' switches to an exponent below 1e-4 and from 1e6 on (strconv's eprec
    # is 6 for the shortest form): 123456, 1e+06, 1.5e-05.
    _, exp = _digits(value)
    if exp < -4 or exp >= 6:
        return _shortest_e(value)
    return _shortest_f(value)


def _digits(value: float) -> tuple[str, int]:
    """Shortest decimal digits of |value| and its decimal exponent (d.ddd x 10^exp)."""
    from decimal import Decimal  # noqa: PLC0415 - only to print floats

    if value == 0:
        return "0", 0
    sign_digits_exp = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, sign_digits_exp.digits))
    exponent = int(sign_digits_exp.exponent)
    return digits, exponent + len(digits) - 1


def _shortest_e(value: float) -> str:
    digits, exp = _digits(value)
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    sign = "-" if value < 0 or (value == 0 and math.copysign(1, value) < 0) else ""
    return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _shortest_f(value: float) -> str:
    from decimal import Decimal  # noqa: PLC0415 - only to print floats

    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") and value == 0 and math.copysign(1, value) > 0 else text


def _go_exponent(text: str) -> str:
    """Python writes 1e+06 as Go does; only make sure of two exponent digits."""
    return re.sub(r"e([+-])(\d)$", r"e\g<1>0\2", text)


def format_value(value: Any) -> str:  # noqa: PLR0911 - one return per Go kind
    """fmt's ``%v`` of a value (the text an action prints)."""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Struct):
        return "{" + " ".join(format_value(v) for v in value.data().values()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(format_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        pairs = (f"{format_value(k)}:{format_value(value[k])}" for k in sorted(value, key=str))
        return "map[" + " ".join(pairs) + "]"
    return str(value)


def go_quote(text: str) -> str:
    """strconv.Quote: Go escapes, printable Unicode kept."""
    out = ['"']
    short = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
             "\v": "\\v", "\\": "\\\\", '"': '\\"'}  # fmt: skip
    for char in text:
        code = ord(char)
        if char in short:
            out.append(short[char])
        elif char.isprintable() or char == " ":
            out.append(char)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out) + '"'


def to_json(value: Any) -> str:  # noqa: PLR0911 - one return per Go kind
    """encoding/json's Marshal as docker's ``json`` function uses it (no HTML escaping)."""
    if value is None or value is MISSING:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if isinstance(value, Struct):
        data = value.data()
        items = sorted(data.items()) if value.json_sorted else data.items()
        return "{" + ",".join(f"{to_json(k)}:{to_json(v)}" for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    if isinstance(value, Mapping):
        keys = sorted(value, key=str)
        return "{" + ",".join(f"{to_json(str(k))}:{to_json(value[k])}" for k in keys) + "}"
    return to_json(str(value))


def _json_float(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"json: unsupported value: {format_float(value)}")
    if value != 0 and (abs(value) < 1e-6 or abs(value) >= 1e21):
        text = _shortest_e(value)
        return re.sub(r"e-0(\d)$", r"e-\1", text)
    return _shortest_f(value)


# printf: %[flags][width][.precision]verb
_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d*|\*))?(.)?", re.DOTALL)


def sprintf(fmt: str, args: Sequence[Any]) -> str:
    """fmt.Sprintf for the verbs templates use: v s d q x X o b c t f F e E g G U %."""
    out: list[str] = []
    index = 0
    pos = 0
    while True:
        pct = fmt.find("%", pos)
        if pct < 0:
            out.append(fmt[pos:])
            break
        out.append(fmt[pos:pct])
        match = _VERB.match(fmt, pct)
        assert match is not None
        flags, width_text, prec_text, verb = match.groups()
        pos = match.end()
        if verb is None:
            out.append("%!(NOVERB)")
            break
        if verb == "%":
            out.append("%")
            continue
        width, prec = None, None
        if width_text == "*":
            width, index = (args[index] if index < len(args) else 0), index + 1
        elif width_text:
            width = int(width_text)
        if prec_text == "*":
            prec, index = (args[index] if index < len(args) else 0), index + 1
        elif prec_text is not None:
            prec = int(prec_text or 0)
        if index >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[index]
        index += 1
        text = _format_one(verb, flags, prec, arg)
        out.append(_pad(text, flags, width, verb, arg))
    if index < len(args):
        extra = ", ".join(f"{go_type(a)}={format_value(a)}" for a in args[index:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _bad(verb: str, arg: Any) -> str:
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(arg)}={format_value(arg)})"


def _format_one(verb: str, flags: str, prec: int | None, arg: Any) -> str:  # noqa: PLR0911, PLR0912
    is_int = isinstance(arg, int) and not isinstance(arg, bool)
    if (
        isinstance(arg, (list, tuple))
        and verb != "v"
        and not (verb in "sq" and isinstance(arg, str))
    ):
        return "[" + " ".join(_format_one(verb, flags, prec, a) for a in arg) + "]"
    if verb == "v":
        if isinstance(arg, float) and prec is not None:
            return format_float(arg, "g", prec)
        if "+" in flags and isinstance(arg, Struct):
            pairs = (f"{k}:{format_value(v)}" for k, v in arg.data().items())
            return "{" + " ".join(pairs) + "}"
        if "#" in flags and isinstance(arg, str):
            return go_quote(arg)
        return format_value(arg)
    if verb == "s":
        if isinstance(arg, str):
            return arg if prec is None else arg[:prec]
        return _bad(verb, arg)
    if verb == "q":
        if isinstance(arg, str):
            return go_quote(arg)
        if is_int:
            return "'" + go_quote(chr(arg))[1:-1].replace("'", "\\'").replace('\\"', '"') + "'"
        return _bad(verb, arg)
    if verb == "t":
        return ("true" if arg else "false") if isinstance(arg, bool) else _bad(verb, arg)
    if verb in "xX" and isinstance(arg, str):
        text = arg.encode().hex()
        return text.upper() if verb == "X" else text
    if verb in "dxXobcU":
        if not is_int:
            return _bad(verb, arg)
        if verb == "c":
            return chr(arg)
        if verb == "U":
            return f"U+{arg:04X}"
        base = {"d": "d", "x": "x", "X": "X", "o": "o", "b": "b"}[verb]
        sign = "+" if "+" in flags and arg >= 0 else (" " if " " in flags and arg >= 0 else "")
        text = sign + format(arg, base)
        if "#" in flags and verb in "xXo":
            prefix = {"x": "0x", "X": "0X", "o": "0"}[verb]
            text = text.replace(format(abs(arg), base), prefix + format(abs(arg), base))
        return text
    if verb in "fFeEgG":
        if not isinstance(arg, float):
            return _bad(verb, arg)
        lower = verb.lower()
        if lower == "f":
            text = f"{arg:.{6 if prec is None else prec}f}"
        elif lower == "e":
            text = _go_exponent(f"{arg:.{6 if prec is None else prec}e}")
        else:
            text = format_float(arg, "g", -1 if prec is None else prec)
        if "+" in flags and arg >= 0:
            text = "+" + text
        return text.upper() if verb.isupper() else text
    return _bad(verb, arg)


def _pad(text: str, flags: str, width: int | None, verb: str, arg: Any) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    numeric = isinstance(arg, (int, float)) and not isinstance(arg, bool) and verb not in "sqcv"
    if "0" in flags and numeric:
        sign = text[0] if text[0] in "+- " else ""
        return sign + text[len(sign) :].rjust(width - len(sign), "0")
    return text.rjust(width)
