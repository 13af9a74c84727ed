"""What every fuzz test checks: an input is accepted, or refused with one RctlError line.

Anything else (a traceback of KeyError, ValueError, OverflowError, RecursionError...) is a
finding: the CLI would print a traceback instead of ``Error: ...`` and exit 125.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from rctlbase.errors import RctlError, format_error

T = TypeVar("T")
CORPUS = Path(__file__).parent / "corpus"


def accepted_or_refused(parse: Callable[..., T], *args: object, **kwargs: object) -> T | None:
    """``parse(*args)``'s value, or None when it refused the input the way users see it."""
    try:
        return parse(*args, **kwargs)
    except RctlError as exc:
        check_one_line(exc)
        return None


def check_one_line(exc: RctlError) -> None:
    """A user-facing error prints as one line of message (and one of hint) however hostile
    the text it quotes; only an error listing problems (a definition file's) prints one
    line for each."""
    assert exc.message, f"{type(exc).__name__} without a message"
    lines = format_error(exc).split("\n")
    said = [line for line in lines if not line.startswith("Hint: ")]
    assert len(said) == 1 or getattr(exc, "problems", None), f"multi-line: {exc.message!r}"
    assert all(line.isprintable() for line in lines), f"control characters: {exc.message!r}"


def corpus_lines(name: str) -> list[str]:
    """The seed inputs of ``corpus/NAME.txt``: one a line; ``#`` starts a comment line,
    ``\\n``-style escapes are decoded so that control characters can be kept."""
    lines = (CORPUS / f"{name}.txt").read_text().splitlines()
    return [
        line.encode("latin-1", "backslashreplace").decode("unicode_escape")
        for line in lines
        if not line.startswith("#")
    ]


def corpus_files(directory: str) -> list[Path]:
    """The seed files of ``corpus/DIRECTORY/``, sorted (test IDs are their names)."""
    return sorted(p for p in (CORPUS / directory).iterdir() if p.is_file())
