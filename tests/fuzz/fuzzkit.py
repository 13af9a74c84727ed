"""What every fuzz test checks: an input is accepted, or refused with one RctlError line.

Anything else (a traceback of KeyError, ValueError, OverflowError, RecursionError...) is a
finding: the CLI would print a traceback instead of ``Error: ...`` and exit 125.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from rctlbase.errors import RctlError

T = TypeVar("T")
CORPUS = Path(__file__).parent / "corpus"


def accepted_or_refused(parse: Callable[..., T], *args: object, **kwargs: object) -> T | None:
    """``parse(*args)``'s value, or None when it refused the input the way users see it.

    A flag's value is the user's own text: a message may quote it as it is, newlines and
    all. Parsers of what others wrote (images, registries, archives) are checked with
    :func:`check_one_line` on the message alone.
    """
    try:
        return parse(*args, **kwargs)
    except RctlError as exc:
        check_one_line(exc, echoed=[a for a in (*args, *kwargs.values()) if isinstance(a, str)])
        return None


def check_one_line(exc: RctlError, echoed: list[str] | tuple[str, ...] = ()) -> None:
    """A user-facing error is one line of message (and one of hint): the CLI prints both.
    A message may break lines where the user's own input (``echoed``) did."""
    assert exc.message, f"{type(exc).__name__} without a message"
    if not any("\n" in text for text in echoed):
        assert "\n" not in exc.message, f"multi-line message: {exc.message!r}"
    assert exc.hint is None or "\n" not in exc.hint, f"multi-line hint: {exc.hint!r}"


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
