"""Go's text/template as ``--format`` uses it: cases after Go's exec_test.go and
parse/lex_test.go, docker's functions (templates.go) and its table format."""

from __future__ import annotations

from typing import Any

import pytest

from rootless.cli.gotemplate.tabwriter import align
from rootless.cli.gotemplate.template import Method, Struct, TemplateError, parse, render_table

U = Struct("U", {"V": "v"})
T = Struct(
    "T",
    {
        "X": "x",
        "I": 17,
        "F": 1.5,
        "FloatZero": 0.0,
        "True": True,
        "S": "hello",
        "U": U,
        "NIL": None,
        "SI": [3, 4, 5],
        "SIEmpty": [],
        "SB": [True, False],
        "SS": ["a", "b", "c"],
        "MSI": {"one": 1, "two": 2, "three": 3},
        "MSIone": {"one": 1},
        "MSIEmpty": {},
        "MSS": {"k": "v"},
        "SMSI": [{"one": 1}, {"eleven": 11}],
        "Labels": {"com.example.role": "web"},
        "Method0": Method(lambda: "M0"),
        "Method1": Method(lambda n: n, ("int",)),
        "Method2": Method(lambda n, s: f"Method2: {n} {s}", ("int", "string")),
        "Method3": Method(lambda v: f"Method3: {'<nil>' if v is None else v}", ("interface {}",)),
        "GetU": Method(lambda: U),
    },
)

OK_CASES: list[tuple[str, str, Any, str]] = [
    # Trivial and text.
    ("empty", "", None, ""),
    ("text", "some text", None, "some text"),
    # Fields of structs and maps.
    (".X", "-{{.X}}-", T, "-x-"),
    (".U.V", "-{{.U.V}}-", T, "-v-"),
    ("map .one", "{{.MSI.one}}", T, "1"),
    ("map .NO", "{{.MSI.NO}}", T, "<no value>"),
    ("map missing chain", "{{.MSI.NO.deeper}}", T, "<no value>"),
    ("map lower-case key", "{{.cause}}", {"cause": "neglect"}, "neglect"),
    ("map with dots in keys via index", '{{index .Labels "com.example.role"}}', T, "web"),
    ("nil field", "{{.NIL}}", T, "<nil>"),
    # Dots of all kinds.
    ("dot int", "<{{.}}>", 13, "<13>"),
    ("dot float", "<{{.}}>", 15.1, "<15.1>"),
    ("dot big float", "<{{.}}>", 1e6, "<1e+06>"),
    ("dot small float", "<{{.}}>", 123456.0, "<123456>"),
    ("dot bool", "<{{.}}>", True, "<true>"),
    ("dot string", "<{{.}}>", "hello", "<hello>"),
    ("dot slice", "<{{.}}>", [-1, -2, -3], "<[-1 -2 -3]>"),
    ("dot map", "<{{.}}>", {"two": 22}, "<map[two:22]>"),
    ("dot struct", "<{{.}}>", Struct("s", {"a": 7, "b": "seven"}), "<{7 seven}>"),
    ("dot nested", "{{.}}", {"b": [1, None], "a": {"x": "y"}}, "map[a:map[x:y] b:[1 <nil>]]"),
    # Variables.
    ("$ int", "{{$}}", 123, "123"),
    ("$.I", "{{$.I}}", T, "17"),
    ("$.U.V", "{{$.U.V}}", T, "v"),
    ("declare in action", "{{$x := $.U.V}}{{$x}}", T, "v"),
    ("assign", "{{$x := 1}}{{$x = 2}}{{$x}}", None, "2"),
    ("assign in range", "{{$n := 0}}{{range .SI}}{{$n = .}}{{end}}{{$n}}", T, "5"),
    (
        "shadow in with",
        "{{if $x := true}}{{with $x := .I}}{{$x}},{{end}}{{$x}}{{end}}",
        T,
        "17,true",
    ),
    ("$ inside range", "{{range .SI}}{{$.X}}{{end}}", T, "xxx"),
    # Methods.
    (".Method0", "-{{.Method0}}-", T, "-M0-"),
    (".Method1(1234)", "-{{.Method1 1234}}-", T, "-1234-"),
    (".Method1(.I)", "-{{.Method1 .I}}-", T, "-17-"),
    (".Method2(3, .X)", "-{{.Method2 3 .X}}-", T, "-Method2: 3 x-"),
    (".Method3(nil)", "-{{.Method3 nil}}-", T, "-Method3: <nil>-"),
    ("method on var", "{{if $x := .}}-{{$x.Method2 .I $x.X}}{{end}}-", T, "-Method2: 17 x-"),
    ("chained method", "{{$.GetU.V}}", T, "v"),
    ("pipeline into method", "-{{.Method0 | .Method2 .I}}-", T, "-Method2: 17 M0-"),
    # Parenthesised pipelines.
    ("parens in pipeline", "{{printf `%d %d` (1) (len .SI)}}", T, "1 3"),
    ("parens: $ in paren", "{{($).X}}", T, "x"),
    ("parens: field of call", "{{(index .SMSI 1).eleven}}", T, "11"),
    ("parens: chain as arg", "{{print ($.GetU).V}}", T, "v"),
    ("parens: pipe into a chain's method", '{{"x" | ($).Method3}}', T, "Method3: x"),
    # Literals.
    ("string escapes", '{{"a\\tb\\x41\\u00e9"}}', None, "a\tbA\u00e9"),
    ("raw string", "{{`a\\tb`}}", None, "a\\tb"),
    ("char constant", "{{'a'}}", None, "97"),
    ("hex int", "{{0x1F}}", None, "31"),
    ("octal int", "{{0o17}} {{017}}", None, "15 15"),
    ("underscores", "{{1_000}}", None, "1000"),
    ("negative", "{{-3}}", None, "-3"),
    ("float", "{{1.5}} {{1e3}} {{1.0}}", None, "1.5 1000 1"),
    ("bools", "{{true}} {{false}}", None, "true false"),
    # If.
    ("if true", "{{if true}}TRUE{{end}}", None, "TRUE"),
    ("if false", "{{if false}}TRUE{{else}}FALSE{{end}}", None, "FALSE"),
    ("if 0", "{{if 0}}NON-ZERO{{else}}ZERO{{end}}", None, "ZERO"),
    ("if 1.5", "{{if 1.5}}NON-ZERO{{else}}ZERO{{end}}", None, "NON-ZERO"),
    ("if 0.0", "{{if .FloatZero}}NON-ZERO{{else}}ZERO{{end}}", T, "ZERO"),
    ("if emptystring", "{{if ``}}NON-EMPTY{{else}}EMPTY{{end}}", None, "EMPTY"),
    ("if emptyslice", "{{if .SIEmpty}}NON-EMPTY{{else}}EMPTY{{end}}", T, "EMPTY"),
    ("if map", "{{if .MSI}}NON-EMPTY{{else}}EMPTY{{end}}", T, "NON-EMPTY"),
    ("if map unset", "{{if .MSI.none}}NON-ZERO{{else}}ZERO{{end}}", T, "ZERO"),
    ("if nil field", "{{if .NIL}}non-nil{{else}}nil{{end}}", T, "nil"),
    ("if struct", "{{if .U}}yes{{end}}", T, "yes"),
    ("if else if", "{{if false}}FALSE{{else if true}}TRUE{{end}}", None, "TRUE"),
    ("if else chain", "{{if eq 1 3}}1{{else if eq 2 3}}2{{else if eq 3 3}}3{{end}}", None, "3"),
    ("if else if else", "{{if false}}a{{else if false}}b{{else}}c{{end}}", None, "c"),
    # With.
    ("with true", "{{with true}}{{.}}{{end}}", None, "true"),
    ("with 0", "{{with 0}}{{.}}{{else}}ZERO{{end}}", None, "ZERO"),
    ("with slice", "{{with .SI}}{{.}}{{else}}EMPTY{{end}}", T, "[3 4 5]"),
    ("with map", "{{with .MSIone}}{{.}}{{else}}EMPTY{{end}}", T, "map[one:1]"),
    ("with $x struct.U.V", "{{with $x := $}}{{$x.U.V}}{{end}}", T, "v"),
    ("else with", "{{with .SIEmpty}}a{{else with .I}}{{.}}{{end}}", T, "17"),
    # Range.
    ("range []int", "{{range .SI}}-{{.}}-{{end}}", T, "-3--4--5-"),
    ("range empty no else", "{{range .SIEmpty}}-{{.}}-{{end}}", T, ""),
    ("range empty else", "{{range .SIEmpty}}-{{.}}-{{else}}EMPTY{{end}}", T, "EMPTY"),
    ("range []bool", "{{range .SB}}-{{.}}-{{end}}", T, "-true--false-"),
    ("range map in key order", "{{range .MSI}}-{{.}}-{{end}}", T, "-1--3--2-"),
    ("range nil", "{{range .NIL}}-{{.}}-{{else}}none{{end}}", T, "none"),
    ("range $x SI", "{{range $x := .SI}}<{{$x}}>{{end}}", T, "<3><4><5>"),
    ("range $i $e SI", "{{range $i, $e := .SI}}<{{$i}}={{$e}}>{{end}}", T, "<0=3><1=4><2=5>"),
    ("range $k $v map", "{{range $k, $v := .MSIone}}<{{$k}}={{$v}}>{{end}}", T, "<one=1>"),
    ("declare in range", "{{range $x := .SI}}<{{$foo:=$x}}{{$x}}>{{end}}", T, "<3><4><5>"),
    ("range int", "{{range 3}}{{.}}{{end}}", None, "012"),
    ("range break", "{{range .SI}}{{if eq . 4}}{{break}}{{end}}{{.}}{{end}}", T, "3"),
    ("range continue", "{{range .SI}}{{if eq . 4}}{{continue}}{{end}}{{.}}{{end}}", T, "35"),
    # Comparisons and booleans.
    ("eq", "{{eq 1 1}} {{eq 1 2}} {{eq `a` `a`}} {{eq .X `x`}}", T, "true false true true"),
    ("eq several", "{{eq 3 1 2 3}} {{eq 4 1 2 3}}", None, "true false"),
    ("eq nil", "{{eq .NIL nil}} {{eq .X nil}}", T, "true false"),
    ("ne", "{{ne 1 2}} {{ne `a` `a`}}", None, "true false"),
    ("lt le gt ge", "{{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge 2 3}}", None, "true true false false"),
    ("lt strings", "{{lt `a` `b`}} {{lt 1.5 2.5}}", None, "true true"),
    ("not", "{{not true}} {{not false}} {{not .SIEmpty}}", T, "false true true"),
    ("and", "{{and false 0}} {{and 1 0}} {{and 0 true}} {{and 1 1}}", None, "false 0 0 1"),
    ("or", "{{or 0 0}} {{or 1 0}} {{or 0 true}} {{or 1 1}}", None, "0 1 true 1"),
    ("and short-circuits", "{{and false (index .SI 99)}}", T, "false"),
    ("or as default", '{{or .SIEmpty "slice is empty"}}', T, "slice is empty"),
    ("boolean if not", "{{if and true 1 `hi` | not}}TRUE{{else}}FALSE{{end}}", None, "FALSE"),
    # print, printf, println.
    ("print", '{{print "hello, print"}}', None, "hello, print"),
    ("print 123", "{{print 1 2 3}}", None, "1 2 3"),
    ("print mixed", '{{print "a" 1 2 "b"}}', None, "a1 2b"),
    ("print nil", "{{print nil}}", None, "<nil>"),
    ("println", "{{println 1 2 3}}", None, "1 2 3\n"),
    ("printf %04x", '{{printf "%04x" 127}}', None, "007f"),
    ("printf %g", '{{printf "%g" 3.5}}', None, "3.5"),
    ("printf %s %d", '{{printf "%s=%d" .X .I}}', T, "x=17"),
    ("printf widths", '{{printf "[%-6s|%6s|%3d]" "ab" "cd" 7}}', None, "[ab    |    cd|  7]"),
    ("printf %q", '{{printf "%q" "a\\"b\\n"}}', None, '"a\\"b\\n"'),
    ("printf %v", '{{printf "%v %v" .SI .MSIone}}', T, "[3 4 5] map[one:1]"),
    ("printf %t %x %X", '{{printf "%t %x %X" true 255 "hi"}}', None, "true ff 6869"),
    ("printf %.2f %5.1f", '{{printf "%.2f|%5.1f" 3.14159 2.0}}', None, "3.14|  2.0"),
    ("printf %%", '{{printf "100%%"}}', None, "100%"),
    ("printf bad verb arg", '{{printf "%d" "x"}}', None, "%!d(string=x)"),
    ("printf missing arg", '{{printf "%s %s" "a"}}', None, "a %!s(MISSING)"),
    ("printf extra arg", '{{printf "%s" "a" 1}}', None, "a%!(EXTRA int=1)"),
    ("printf piped", '{{"aaa" | printf}}', None, "aaa"),
    ("printf %d list", '{{printf "%d" .SI}}', T, "[3 4 5]"),
    # html, urlquery.
    ("html", '{{html "<a href=\\"x\\">&</a>"}}', None, "&lt;a href=&#34;x&#34;&gt;&amp;&lt;/a&gt;"),
    (
        "urlquery",
        '{{"http://www.example.org/" | urlquery}}',
        None,
        "http%3A%2F%2Fwww.example.org%2F",
    ),
    # index, len, slice.
    ("index slice", "{{index .SI 0}} {{index .SI 2}}", T, "3 5"),
    ("index map", "{{index .MSI `two`}}", T, "2"),
    ("index map missing int", "{{index .MSI `XXX`}}", T, "0"),
    ("index map missing string", "[{{index .MSS `nope`}}]", T, "[]"),
    ("index double", "{{index .SMSI 1 `eleven`}}", T, "11"),
    ("index string", '{{index "abc" 1}}', None, "98"),
    ("len", "{{len .SI}} {{len .MSI}} {{len `héllo`}}", T, "3 3 6"),
    ("slice", "{{slice .SI 1}} {{slice .SI 1 2}} {{slice `hello` 1 3}}", T, "[4 5] [4] el"),
    # docker's functions.
    ("json string", "{{json .X}}", T, '"x"'),
    ("json slice", "{{json .SS}}", T, '["a","b","c"]'),
    ("json map sorted", "{{json .MSI}}", T, '{"one":1,"three":3,"two":2}'),
    ("json struct in order", "{{json .U}}", T, '{"V":"v"}'),
    ("json nil", "{{json .NIL}}", T, "null"),
    ("json no html escaping", '{{json "<&>"}}', None, '"<&>"'),
    (
        "json floats",
        "{{json 1.0}} {{json 1.5}} {{json 1e21}} {{json 1e-7}}",
        None,
        "1 1.5 1e+21 1e-7",
    ),
    ("json missing key", "{{json .MSI.nope}}", T, "null"),
    ("split", '{{split "a,b,c" ","}}', None, "[a b c]"),
    ("split index", '{{index (split "a:b" ":") 1}}', None, "b"),
    ("join", '{{join .SS ", "}}', T, "a, b, c"),
    ("join split", '{{join (split "a b" " ") "+"}}', None, "a+b"),
    ("title", '{{title "hello wide-world"}}', None, "Hello Wide-World"),
    ("lower upper", '{{lower "ABC"}} {{upper "abc"}} {{.X | upper}}', T, "abc ABC X"),
    ("pad", '[{{pad "ab" 1 2}}][{{pad "" 1 2}}]', None, "[ ab  ][]"),
    ("truncate", '{{truncate "abcdef" 3}} {{truncate "ab" 3}}', None, "abc ab"),
    # Whitespace trimming and comments.
    ("trim left", "a  \n\t{{- 1}}", None, "a1"),
    ("trim right", "{{1 -}}  \n b", None, "1b"),
    ("trim both", "x {{- 1 -}} y", None, "x1y"),
    ("trim range", "{{range .SI -}}\n  {{.}}\n{{- end}}", T, "345"),
    ("no trim without space", "{{-3}}", None, "-3"),
    ("comment", "a{{/* a comment */}}b", None, "ab"),
    ("trimmed comment", "a {{- /* c */ -}} b", None, "ab"),
    ("multi-line comment", "a{{/* one\ntwo */}}b", None, "ab"),
    ("newline in action", "{{.X\n}}", T, "x"),
    # Pipelines.
    ("pipeline func", '{{"abc" | upper | printf "<%s>"}}', None, "<ABC>"),
    ("pipeline with decl", "{{$x := .X | upper}}{{$x}}", T, "X"),
]


@pytest.mark.parametrize(
    ("name", "source", "data", "expected"), OK_CASES, ids=[c[0] for c in OK_CASES]
)
def test_templates(name: str, source: str, data: Any, expected: str) -> None:
    assert parse(source).execute(data) == expected


PARSE_ERRORS = [
    ("unclosed action", "{{.X", "template: :1: unclosed action"),
    ("unclosed action on line 2", "a\n{{.X", "template: :2: unclosed action"),
    ("unclosed over lines", 'line1\n{{"x"\n"y"\n', "template: :4: unclosed action started at :2"),
    ("unclosed paren at the end", "{{(.X 1 2 3", "unclosed action"),
    ("unknown function on line 3", "line1\n{{\nx\n}}", 'template: :3: function "x" not defined'),
    ("operand without space", "{{`x`3}}", "in operand"),
    ("unknown function", "{{nope 1}}", 'template: :1: function "nope" not defined'),
    ("undefined variable", "{{$x}}", 'template: :1: undefined variable "$x"'),
    ("variable out of scope", "{{if true}}{{$x := 1}}{{end}}{{$x}}", 'undefined variable "$x"'),
    ("assign undefined", "{{$x = 1}}", 'undefined variable "$x"'),
    ("unexpected end", "{{end}}", "template: :1: unexpected {{end}}"),
    ("unexpected else", "a{{else}}", "unexpected {{else}}"),
    ("missing end", "{{if true}}a", "unexpected EOF"),
    ("empty if", "{{if}}a{{end}}", "missing value for if"),
    ("empty action", "{{}}", "missing value for command"),
    ("unclosed comment", "{{/* a", "unclosed comment"),
    ("comment without delimiter", "{{/* a */ x}}", "comment ends before closing delimiter"),
    ("unterminated string", '{{"abc}}', "unterminated quoted string"),
    ("unterminated raw string", "{{`abc}}", "unterminated raw quoted string"),
    ("bad character", "{{.X # 1}}", "unrecognized character in action"),
    ("unclosed paren", "{{(.X}}", "unclosed left paren"),
    ("unexpected right paren", "{{.X)}}", "unexpected right paren"),
    ("bad number", "{{3k}}", 'bad number syntax: "3k"'),
    ("literal in pipeline stage", "{{.X | 3}}", "non executable command in pipeline stage 2"),
    ("break outside range", "{{break}}", "{{break}} outside {{range}}"),
    ("else else", "{{if true}}{{else}}{{else}}{{end}}", "expected end; found {{else}}"),
    ("define unsupported", '{{define "x"}}{{end}}', "not supported"),
    ("bad escape", '{{"\\q"}}', "invalid syntax"),
]


@pytest.mark.parametrize(
    ("name", "source", "message"), PARSE_ERRORS, ids=[c[0] for c in PARSE_ERRORS]
)
def test_parse_errors(name: str, source: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        parse(source)
    assert message in caught.value.message
    assert "\n" not in caught.value.message


EXEC_ERRORS = [
    (
        "struct field",
        "{{.Nope}}",
        T,
        'template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type T',
    ),
    ("nested struct field", "{{.U.W}}", T, "can't evaluate field W in type U"),
    ("field of string", "{{.X.Y}}", T, "can't evaluate field Y in type string"),
    ("field of nil", "{{.NIL.Y}}", T, "nil pointer evaluating interface {}.Y"),
    ("nil command", "{{nil}}", None, "nil is not a command"),
    ("if nil", "{{if nil}}a{{end}}", None, "nil is not a command"),
    ("argument to non-function", "{{3 2}}", None, "can't give argument to non-function 3"),
    ("pipe into variable", "{{$x := 1}}{{3 | $x}}", None, "can't give argument to non-function $x"),
    (
        "argument to a chain",
        "{{($).Method2 3}}",
        T,
        "can't give argument to non-function ($).Method2",
    ),
    ("map key with args", "{{.MSI.one 1}}", T, "one is not a method but has arguments"),
    ("field with args", "{{.X 1}}", T, "X has arguments but cannot be invoked as function"),
    ("method arg count", "{{.Method1}}", T, "wrong number of args for Method1: want 1 got 0"),
    ("method arg type", "{{.Method1 `x`}}", T, "expected integer; found `x`"),
    ("function arg type", "{{upper 5}}", None, "expected string; found 5"),
    ("function value type", "{{upper .I}}", T, "wrong type for value; expected string; got int"),
    (
        "piped value type",
        "{{true | printf}}",
        None,
        "wrong type for value; expected string; got bool",
    ),
    (
        "join of ints",
        '{{join .SI ","}}',
        T,
        "wrong type for value; expected []string; got []interface {}",
    ),
    ("too few args", "{{split `a`}}", None, "wrong number of args for split: want 2 got 1"),
    ("index out of range", "{{index .SI 10}}", T, "error calling index: index out of range: 10"),
    ("index with string", "{{index .SI `a`}}", T, "cannot index slice with type string"),
    ("index of nil", "{{index nil 1}}", None, "index of nil pointer"),
    ("len of int", "{{len 3}}", None, "error calling len: len of type int"),
    (
        "incompatible eq",
        "{{eq 1 `a`}}",
        None,
        "error calling eq: incompatible types for comparison",
    ),
    ("int and float", "{{lt 1 1.5}}", None, "incompatible types for comparison"),
    ("bool ordering", "{{lt true false}}", None, "invalid type for comparison"),
    ("range over string", "{{range .X}}{{end}}", T, "range can't iterate over x"),
    ("error on line 2", "a\n b{{.Nope}}", T, 'template: :2:4: executing "" at <.Nope>'),
    (
        "call error at the command",
        "{{index .SI 10}}",
        T,
        'executing "" at <index .SI 10>: error calling',
    ),
]


@pytest.mark.parametrize(
    ("name", "source", "data", "message"), EXEC_ERRORS, ids=[c[0] for c in EXEC_ERRORS]
)
def test_exec_errors(name: str, source: str, data: Any, message: str) -> None:
    template = parse(source)
    with pytest.raises(TemplateError) as caught:
        template.execute(data)
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_the_table_cases_are_many() -> None:
    assert len(OK_CASES) + len(PARSE_ERRORS) + len(EXEC_ERRORS) >= 80


def test_tabwriter_pads_columns_to_the_widest_cell_plus_padding() -> None:
    text = "CONTAINER ID\tNAMES\nabc\tweb\nabcdef012345\tdb\n"
    assert align(text, minwidth=10, padding=3).splitlines() == [
        "CONTAINER ID   NAMES",
        "abc            web",
        "abcdef012345   db",
    ]


def test_tabwriter_minimum_width_and_blocks() -> None:
    # A line without tabs ends a column block: each block is aligned by itself.
    text = "a\tb\nccc\td\nplain line\nxxxxxxxxxxxxxxx\ty\n"
    assert align(text, minwidth=4, padding=1).splitlines() == [
        "a   b",
        "ccc d",
        "plain line",
        "xxxxxxxxxxxxxxx y",
    ]


def test_table_renders_docker_headers_then_aligned_rows() -> None:
    rows = [
        Struct(
            "row", {"ID": "0123456789ab", "Names": "web", "Label": Method(lambda k: k, ("string",))}
        ),
        Struct(
            "row",
            {"ID": "ba9876543210", "Names": "database", "Label": Method(lambda k: "", ("string",))},
        ),
    ]
    headers = {"ID": "CONTAINER ID", "Names": "NAMES", "Label": "LABEL"}
    text = render_table(parse('{{.ID}}\t{{upper .Names}}\t{{.Label "x"}}'), rows, headers)
    assert text.splitlines() == [
        "CONTAINER ID   NAMES      LABEL",
        "0123456789ab   WEB        x",
        # tabwriter pads every cell of a column, the one before an empty last cell too.
        "ba9876543210   DATABASE   ",
    ]


def test_tabwriter_counts_wide_characters_twice() -> None:
    assert align("名前\tx\nab\ty\n", padding=1).splitlines() == ["名前 x", "ab   y"]


def test_table_header_keeps_names_through_docker_functions() -> None:
    text = render_table(parse("{{json .Names}}|{{lower .ID}}"), [], {"ID": "ID", "Names": "NAMES"})
    assert text == "NAMES|ID\n"


def test_table_rows_fail_as_plain_templates() -> None:
    with pytest.raises(TemplateError, match="can't evaluate field Nope"):
        render_table(parse("{{.Nope}}"), [Struct("row", {"ID": "a"})], {"ID": "ID"})
