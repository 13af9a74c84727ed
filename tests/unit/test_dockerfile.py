"""The Dockerfile parser: directives, continuations, comments, flags, forms, heredocs,
stages (cases after the Dockerfile reference and BuildKit's parser tests)."""

from __future__ import annotations

import pytest

from rctlbase.errors import UsageError
from rootless.build.dockerfile import Heredoc, check_onbuild, exec_form, parse_dockerfile

NOTES = """\
FROM python:2.7
WORKDIR /code
ADD requirements.txt /code/
RUN pip install -r requirements.txt
ADD . /code
CMD ["python", "app.py"]
"""


def test_the_course_notes_example() -> None:
    parsed = parse_dockerfile(NOTES)
    (stage,) = parsed.stages
    assert stage.base == "python:2.7" and stage.name is None
    assert [i.keyword for i in stage.instructions] == ["WORKDIR", "ADD", "RUN", "ADD", "CMD"]
    assert stage.instructions[-1].exec_form() == ["python", "app.py"]
    assert stage.instructions[2].exec_form() is None
    assert stage.instructions[2].line == 4


def test_continuations_drop_comments_and_blank_lines_inside() -> None:
    text = "FROM a\nRUN apt-get update && \\\n# a comment\n\n    apt-get install -y x\n"
    (run,) = parse_dockerfile(text).stages[0].instructions
    assert run.args == "apt-get update &&     apt-get install -y x"
    assert run.line == 2


def test_escape_directive_backtick() -> None:
    text = "# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo ok\n"
    parsed = parse_dockerfile(text)
    assert parsed.escape == "`"
    assert parsed.stages[0].instructions[0].args == "dir c:\\   && echo ok"


def test_directives_only_at_the_top() -> None:
    text = "# syntax=docker/dockerfile:1\n# comment\n# escape=`\nFROM a\nRUN x \\\n y\n"
    parsed = parse_dockerfile(text)
    assert parsed.escape == "\\"
    assert parsed.stages[0].instructions[0].args == "x  y"


def test_bad_escape_and_repeated_directives() -> None:
    with pytest.raises(UsageError, match="escape"):
        parse_dockerfile("# escape=x\nFROM a\n")
    with pytest.raises(UsageError, match="twice"):
        parse_dockerfile("# escape=`\n# escape=`\nFROM a\n")


def test_instructions_are_case_insensitive_and_unknown_ones_name_the_line() -> None:
    assert parse_dockerfile("from a\nrun true\n").stages[0].instructions[0].keyword == "RUN"
    with pytest.raises(UsageError, match=r"Dockerfile:2: unknown instruction 'FOO'"):
        parse_dockerfile("FROM a\nFOO bar\n")


def test_flags() -> None:
    text = (
        "FROM --platform=linux/amd64 a AS Build\n"
        "COPY --from=build --chown=1:2 --chmod=0644 --link src dst\n"
        "RUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t make\n"
    )
    stage = parse_dockerfile(text).stages[0]
    assert stage.platform == "linux/amd64" and stage.name == "build"
    copy, run = stage.instructions
    assert copy.flag("from") == "build" and copy.flag("chown") == "1:2"
    assert copy.flag("link") == "true" and copy.args == "src dst"
    assert run.flag_values("mount") == ["type=cache,target=/c", "type=tmpfs,target=/t"]
    assert run.args == "make"
    assert copy.text == "COPY --from=build --chown=1:2 --chmod=0644 --link src dst"


def test_unknown_flags_are_refused() -> None:
    with pytest.raises(UsageError, match="unknown flag --frm"):
        parse_dockerfile("FROM a\nCOPY --frm=x a b\n")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ('["a", "b"]', ["a", "b"]),
        ('  [ "a" ]  ', ["a"]),
        ("[a, b]", None),  # not JSON: the shell form, as docker
        ('["a", 1]', None),
        ("echo [x]", None),
        ("[]", []),
    ],
)
def test_exec_form(args: str, expected: list[str] | None) -> None:
    assert exec_form(args) == expected


def test_heredocs() -> None:
    text = (
        "FROM a\n"
        "RUN <<EOF\necho $HOME\nEOF\n"
        "COPY <<-'CONF' /etc/app.conf\n\tkey=$value\n\tCONF\n"
        "RUN python3 <<A && cat <<B\nprint(1)\nA\nb\nB\n"
        "RUN cat <<<here\n"
    )
    run, copy, two, herestring = parse_dockerfile(text).stages[0].instructions
    assert run.heredocs == (Heredoc("EOF", "echo $HOME\n", expand=True),)
    assert copy.heredocs == (Heredoc("CONF", "key=$value\n", expand=False),)
    assert copy.args == "<<-'CONF' /etc/app.conf"
    assert [h.body for h in two.heredocs] == ["print(1)\n", "b\n"]
    assert herestring.heredocs == ()


def test_unterminated_heredoc() -> None:
    with pytest.raises(UsageError, match="not terminated"):
        parse_dockerfile("FROM a\nRUN <<EOF\necho\n")


def test_stages_meta_args_and_names() -> None:
    text = (
        "ARG VERSION=1\nFROM base:$VERSION AS builder\nRUN make\n"
        "FROM scratch\nCOPY --from=builder /out /\n"
    )
    parsed = parse_dockerfile(text)
    assert [a.args for a in parsed.meta_args] == ["VERSION=1"]
    assert [(s.index, s.base, s.name) for s in parsed.stages] == [
        (0, "base:$VERSION", "builder"),
        (1, "scratch", None),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("RUN x\n", "RUN before the first FROM"),
        ("# only a comment\n", "no FROM"),
        ("FROM a AS x\nFROM b AS x\n", "duplicate stage name"),
        ("FROM a AS\n", "FROM takes"),
        ("FROM a AS 1x\n", "invalid stage name"),
        ("FROM a\nONBUILD FROM b\n", "ONBUILD can't hold FROM"),
        ("FROM a\nONBUILD BOGUS x\n", "unknown instruction"),
    ],
)
def test_structure_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_dockerfile(text)


def test_onbuild_holds_one_instruction() -> None:
    inner = check_onbuild("RUN echo hi", "Dockerfile", 3)
    assert inner.keyword == "RUN" and inner.args == "echo hi"


def test_size_is_bounded() -> None:
    with pytest.raises(UsageError, match="larger than"):
        parse_dockerfile("FROM a\n" + "#" * (5 << 20))


def test_a_byte_order_mark_and_crlf_lines() -> None:
    parsed = parse_dockerfile("\ufeffFROM a\r\nRUN x \\\r\n  y\r\n")
    assert parsed.stages[0].instructions[0].args == "x   y"
