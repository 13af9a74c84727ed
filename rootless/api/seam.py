"""The one seam between rctl's errors and Docker's: an HTTP status and ``{"message": ...}``.

Every handler raises :class:`~rctlbase.errors.RctlError` subclasses as the CLI's code does;
:func:`error_reply` is the only place they become HTTP. The status is the class's
``http_status`` (400 usage, 404 not found, 409 conflict, 500 the rest); the message is the
error's line with its hint after it, since docker clients print ``message`` alone. Anything
else is a bug: a 500 naming it, logged with its traceback by the server, never sent.
"""

from __future__ import annotations

from rctlbase.errors import RctlError, one_line
from rootless.api.http import Reply, error_body


def error_message(exc: BaseException) -> str:
    """The ``message`` docker clients show for ``exc``."""
    if not isinstance(exc, RctlError):
        said = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return f"internal error: {one_line(said)}"
    message = one_line(exc.message)
    return f"{message} (hint: {one_line(exc.hint)})" if exc.hint else message


def error_status(exc: BaseException) -> int:
    """The HTTP status for ``exc``: its class's, 500 for anything not an RctlError."""
    status = exc.http_status if isinstance(exc, RctlError) else 500
    return status if 400 <= status <= 599 else 500


def error_reply(exc: BaseException) -> Reply:
    """Docker's error response for ``exc``."""
    return Reply(error_status(exc), error_body(error_message(exc)))


def stream_error(exc: BaseException) -> dict[str, object]:
    """An error inside a JSON progress stream (pull, push, build), after a 200 was sent:
    docker's ``{"errorDetail": {...}, "error": ...}`` line."""
    message = error_message(exc)
    return {"errorDetail": {"message": message}, "error": message}
