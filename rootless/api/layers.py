"""A container's filesystem: ``changes`` (docker diff), ``export`` (a tar stream) and
``POST /commit`` (a new image of it); ``POST /build/prune``."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from rctlbase.errors import UsageError
from rootless.api.http import Request, Response, Stream, json_reply
from rootless.api.images import produce_bytes
from rootless.api.routes import Route
from rootless.models import CommitOptions

if TYPE_CHECKING:
    from rootless.api.app import Api

ID = "(?P<id>[^/]+)"
KINDS = {"C": 0, "A": 1, "D": 2}  # docker's ChangeType numbers
CHUNK = 64 * 1024


def changes(api: Api, request: Request) -> Response:
    """``GET /containers/{id}/changes``: ``[{"Path", "Kind"}]``, Kind 0 changed, 1 added,
    2 deleted."""
    found = api.engine().diff(request.params["id"])
    return json_reply([{"Path": c.path, "Kind": KINDS[c.kind]} for c in found])


def export(api: Api, request: Request) -> Response:
    """``GET /containers/{id}/export``: the filesystem as a tar stream. The archiver
    writes into a pipe that a worker drains to the client; a client leaving closes the
    pipe's read end, which ends the archiver."""
    eng = api.engine()
    record = eng.containers.get(request.params["id"])  # 404 before the 200 goes out

    def work(emit: Callable[[bytes], None]) -> None:
        read_end, write_end = os.pipe()
        failed: list[BaseException] = []

        def archive() -> None:
            try:
                eng.export(record.id, write_end)
            except BaseException as exc:  # reported by the reader below
                failed.append(exc)
            finally:
                os.close(write_end)

        writer = threading.Thread(target=archive, name="api-export", daemon=True)
        writer.start()
        try:
            while data := os.read(read_end, CHUNK):
                emit(data)
        finally:
            os.close(read_end)
            writer.join()
        if failed:
            raise failed[0]

    return Stream(produce_bytes(work, request), content_type="application/x-tar")


def commit(api: Api, request: Request) -> Response:
    """``POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=``:
    ``{"Id"}`` of the new image; ``changes`` are Dockerfile instructions, one a value or
    one a line."""
    if not request.arg("container"):
        raise UsageError("commit needs a container", hint="POST /commit?container=NAME")
    repo, tag = request.arg("repo"), request.arg("tag")
    name = (f"{repo}:{tag}" if tag else repo) if repo else None
    instructions = tuple(
        line.strip()
        for value in request.query.get("changes", ())
        for line in value.splitlines()
        if line.strip()
    )
    image = api.engine().commit(
        CommitOptions(
            container=request.arg("container"),
            name=name,
            changes=instructions,
            message=request.arg("comment"),
            author=request.arg("author"),
            pause=request.flag("pause", True),
        )
    )
    return json_reply({"Id": image.id}, 201)


def build_prune(api: Api, request: Request) -> Response:
    """``POST /build/prune`` (``docker system prune`` and ``builder prune`` call it): the
    build cache forgotten; its images become dangling, reclaimed by the image prune."""
    api.engine().builder_prune()
    return json_reply({"CachesDeleted": [], "SpaceReclaimed": 0})


ROUTES = [
    Route("POST", "/build/prune", build_prune),
    Route("GET", f"/containers/{ID}/changes", changes),
    Route("GET", f"/containers/{ID}/export", export),
    Route("POST", "/commit", commit),
]
