"""The API's request and response values, shared by the server and the handlers.

A handler gets a :class:`Request` and returns one of three responses: a :class:`Reply`
(a whole body), a :class:`Stream` (chunks produced on a worker thread: pull progress, logs,
events) or a :class:`Hijack` (the connection becomes a raw byte pipe both ways: attach, exec).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from rctlbase.errors import UsageError

JSON = "application/json"
RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"


class NotServed(UsageError):
    """An endpoint, or a mode of one, that rctl does not serve."""

    http_status = 501
    default_hint = "see rctl's docs/api.md for what the API serves"


@dataclass(frozen=True, slots=True)
class Request:
    """One request, its version prefix taken off the path (``/v1.43/info`` → ``/info``)."""

    method: str
    path: str
    query: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    upload: IO[bytes] | None = None  # a tar upload, spooled (routes taking one)
    version: str = ""
    params: Mapping[str, str] = field(default_factory=dict)  # from the path pattern
    gone: threading.Event = field(default_factory=threading.Event)  # the client left

    def arg(self, name: str, default: str = "") -> str:
        """The last value of query parameter ``name``."""
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean query parameter as Go's strconv.ParseBool reads it (``1``, ``true``)."""
        value = self.arg(name)
        if not value:
            return default
        lowered = value.lower()
        if lowered in ("1", "t", "true"):
            return True
        if lowered in ("0", "f", "false"):
            return False
        raise UsageError(
            f"query parameter {name}: not a boolean: {value!r}", hint="use 1/0 or true/false"
        )

    def integer(self, name: str, default: int | None = None) -> int | None:
        """An integer query parameter; ``default`` when absent."""
        value = self.arg(name)
        if not value:
            return default
        try:
            return int(value)
        except ValueError:
            raise UsageError(
                f"query parameter {name}: not an integer: {value!r}", hint="give a number"
            ) from None

    def filters(self) -> tuple[str, ...]:
        """The ``filters`` parameter (JSON: ``{"key": ["value"]}``, or the older
        ``{"key": {"value": true}}``) as the CLI's ``key=value`` filters."""
        raw = self.arg("filters")
        if not raw:
            return ()
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError):
            parsed = None
        if not isinstance(parsed, dict):
            raise UsageError(
                "query parameter filters: not a JSON object", hint='send {"key": ["value"]}'
            )
        found: list[str] = []
        for key, values in parsed.items():
            listed = [v for v, on in values.items() if on] if isinstance(values, dict) else values
            if not isinstance(listed, list) or not all(isinstance(v, str) for v in listed):
                raise UsageError(
                    f"filter {key!r}: values must be a list of strings", hint='{"key": ["v"]}'
                )
            found += [f"{key}={value}" for value in listed]
        return tuple(found)

    def json(self) -> Any:
        """The body as JSON (``None`` when empty); malformed JSON is the client's error."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError) as exc:
            raise UsageError(
                f"the request body is not valid JSON: {exc}", hint="send a JSON document"
            ) from None

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object (``{}`` when empty)."""
        value = self.json()
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise UsageError("the request body must be a JSON object", hint="send {...}")
        return value


@dataclass(frozen=True, slots=True)
class Reply:
    """A whole response."""

    status: int = 200
    body: bytes = b""
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Stream:
    """A chunked response; the server pulls ``chunks`` on a worker thread and closes the
    iterator when the client leaves."""

    chunks: Iterator[bytes]
    status: int = 200
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()


class Session(Protocol):
    """Both directions of a hijacked connection."""

    def output(self) -> Iterator[bytes]:
        """What to send the client; the connection closes when it ends."""
        ...

    def feed(self, data: bytes) -> None:
        """Bytes the client sent (a container's stdin)."""
        ...

    def close_input(self) -> None:
        """The client closed its side (stdin's end)."""
        ...

    def close(self) -> None:
        """Release everything: the client left or the output ended."""
        ...


@dataclass(frozen=True, slots=True)
class Hijack:
    """Take the connection over (``101 UPGRADED`` when the client asked for it)."""

    session: Session
    content_type: str = RAW_STREAM


Response = Reply | Stream | Hijack
Handler = Callable[[Any, Request], Response]


def json_reply(value: Any, status: int = 200) -> Reply:
    """``value`` as a JSON response."""
    return Reply(status, json.dumps(value).encode() + b"\n")


def no_content() -> Reply:
    """204, as docker answers start/stop/kill/delete."""
    return Reply(204, b"", "text/plain")


def error_body(message: str) -> bytes:
    """Docker's error document."""
    return json.dumps({"message": message}).encode() + b"\n"
