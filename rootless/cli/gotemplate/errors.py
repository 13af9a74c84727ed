"""The template's one error type, kept apart so that every stage can raise it."""

from __future__ import annotations

from rctlbase.errors import UsageError


class TemplateError(UsageError):
    """A template that does not parse, or fails on the data it is given (one line, like Go's
    ``template: :1:2: executing "" at <.Nope>: can't evaluate field Nope in type ...``)."""

    default_hint = "Go template syntax; --format '{{json .}}' shows every field there is"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(" ".join(message.split("\n")), hint=hint)
