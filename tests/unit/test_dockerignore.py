"""``.dockerignore`` matching (the Dockerfile reference's examples, moby/patternmatcher)."""

from __future__ import annotations

import pytest

from rctlbase.errors import UsageError
from rootless.build.ignore import parse_ignore

REFERENCE = """\
# comment
*/temp*
*/*/temp*
temp?
"""


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("somedir/temporary.txt", True),
        ("somedir/temp", True),
        ("somedir/subdir/temporary.txt", True),
        ("tempa", True),
        ("tempb", True),
        ("temp", False),
        ("temporary.txt", False),
        ("a/b/c/temp", False),
        ("# comment", False),
    ],
)
def test_reference_examples(path: str, ignored: bool) -> None:
    assert parse_ignore(REFERENCE).ignored(path) is ignored


def test_exceptions_and_last_match_wins() -> None:
    rules = parse_ignore("*.md\n!README*.md\nREADME-secret.md\n")
    assert rules.ignored("CHANGES.md")
    assert not rules.ignored("README.md")
    assert rules.ignored("README-secret.md")
    assert rules.has_exceptions


def test_directories_match_what_is_below() -> None:
    rules = parse_ignore("node_modules\n/build/\n.git\n")
    assert rules.ignored("node_modules/x/y.js")
    assert rules.ignored("build/out.o")
    assert rules.ignored(".git/HEAD")
    assert not rules.ignored("src/node_modules_x.js")
    assert not rules.has_exceptions


def test_double_star() -> None:
    rules = parse_ignore("**/*.pyc\ndocs/**\n")
    assert rules.ignored("a.pyc")
    assert rules.ignored("a/b/c.pyc")
    assert rules.ignored("docs/x/y.txt")
    assert not rules.ignored("a.py")


def test_exception_inside_an_ignored_directory() -> None:
    rules = parse_ignore("data\n!data/keep.txt\n")
    assert rules.ignored("data/other.txt")
    assert not rules.ignored("data/keep.txt")


def test_classes_escapes_and_cleaning() -> None:
    rules = parse_ignore("./a//[bc].txt\n\\*star\n[!x]y\n")
    assert rules.ignored("a/b.txt") and rules.ignored("a/c.txt")
    assert not rules.ignored("a/d.txt")
    assert rules.ignored("*star") and not rules.ignored("xstar")
    assert rules.ignored("zy") and not rules.ignored("xy")


@pytest.mark.parametrize("text", ["!\n", "[abc\n"])
def test_bad_patterns(text: str) -> None:
    with pytest.raises(UsageError):
        parse_ignore(text)
