"""A container's use: ``GET /containers/{id}/stats``, one reading or a stream of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rootless.api.http import Request, Response, Stream, json_reply
from rootless.api.routes import Route

if TYPE_CHECKING:
    from rootless.api.app import Api

ID = "(?P<id>[^/]+)"


def stats(api: Api, request: Request) -> Response:
    """``GET /containers/{id}/stats?stream=&one-shot=``: docker's stats document, a line a
    second while streamed. Each reading carries the one before as ``precpu_stats`` (so the
    first comes after a second, as docker's); ``one-shot`` without a stream answers at
    once, its CPU delta taken over no time, as docker's has none."""
    one_shot = request.flag("one-shot")
    streamed = request.flag("stream", True)
    readings = api.engine().stats(
        (request.params["id"],), interval=0.0 if one_shot and not streamed else 1.0
    )
    if not streamed:
        try:
            first = next(readings, [])
        finally:
            readings.close()  # type: ignore[attr-defined]
        if not first:
            from rctlbase.errors import NotFoundError  # noqa: PLC0415

            raise NotFoundError(
                f"no such container: {request.params['id']}", hint="see docker ps -a"
            )
        return json_reply(first[0].to_docker())

    def chunks() -> Iterator[bytes]:
        try:
            for reading in readings:
                if request.gone.is_set() or not reading:
                    return  # the client left, or the container was removed
                yield json.dumps(reading[0].to_docker()).encode() + b"\n"
        finally:
            readings.close()  # type: ignore[attr-defined]

    return Stream(chunks())


ROUTES = [
    Route("GET", f"/containers/{ID}/stats", stats),
]
