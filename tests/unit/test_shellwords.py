"""Dockerfile words: quotes, escapes, substitution (cases from the Dockerfile reference's
"Environment replacement" and BuildKit's shell lexer tests)."""

from __future__ import annotations

import pytest

from rctlbase.errors import UsageError
from rootless.build.shellwords import expand_word, expand_words

ENV = {"foo": "bar", "empty": "", "spaced": "a b  c", "path": "/usr/local/lib/file.tar.gz"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$foo", "bar"),
        ("${foo}", "bar"),
        ("${foo}_x", "bar_x"),
        ("$foo_x", ""),  # the name runs to the end of the word characters
        ("\\$foo", "$foo"),
        ("'$foo'", "$foo"),
        ('"$foo"', "bar"),
        ('"\\$foo"', "$foo"),
        ('"a\\b"', "a\\b"),  # in double quotes only " $ and \ are escaped
        ("a\\ b", "a b"),
        ("${missing:-word}", "word"),
        ("${empty:-word}", "word"),
        ("${empty-word}", ""),
        ("${missing-word}", "word"),
        ("${foo:-word}", "bar"),
        ("${foo:+word}", "word"),
        ("${empty:+word}", ""),
        ("${empty+word}", "word"),
        ("${missing+word}", ""),
        ("${missing:-$foo}", "bar"),
        ("${missing:-${foo:+x}y}", "xy"),
        ("${path#*/}", "usr/local/lib/file.tar.gz"),
        ("${path##*/}", "file.tar.gz"),
        ("${path%.*}", "/usr/local/lib/file.tar"),
        ("${path%%.*}", "/usr/local/lib/file"),
        ("${foo/a/o}", "bor"),
        ("${spaced// /_}", "a_b__c"),
        ("$", "$"),
        ("a$", "a$"),
        ("$1", "$1"),
        ("", ""),
    ],
)
def test_expand_word(text: str, expected: str) -> None:
    assert expand_word(text, ENV) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a b  c", ["a", "b", "c"]),
        ('"a b" c', ["a b", "c"]),
        ("$spaced", ["a", "b", "c"]),
        ('"$spaced"', ["a b  c"]),
        ("x$spaced", ["xa", "b", "c"]),
        ('""', [""]),
        ("a=$foo b='$foo'", ["a=bar", "b=$foo"]),
        ("  ", []),
    ],
)
def test_expand_words(text: str, expected: list[str]) -> None:
    assert expand_words(text, ENV) == expected


def test_backtick_escape() -> None:
    assert expand_word("C:`\\dir `$foo", ENV, escape="`") == "C:\\dir $foo"


@pytest.mark.parametrize(
    "text", ["'open", '"open', "${foo", "${1bad}", "${foo:x}", "${missing:?must be set}"]
)
def test_errors_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        expand_word(text, ENV)


def test_required_message_is_said() -> None:
    with pytest.raises(UsageError, match="must be set"):
        expand_word("${missing:?must be set}", ENV)


def test_nesting_is_bounded() -> None:
    text = "${a:-" * 40 + "x" + "}" * 40
    with pytest.raises(UsageError, match="nested"):
        expand_word(text, {})
