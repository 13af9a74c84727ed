"""``PUT /containers/{id}/archive?path=DIR``: a tar extracted into a container (``docker cp
SRC CONTAINER:DEST``).

The upload is unpacked on the host first, by the hardened extractor into a private directory
(every entry the user's own), then copied in with ``rctl cp``'s copy: in the container's
view, symlink-safe, owners the container's root as docker's ``cp`` gives them. The docker
CLI sends the entries named as they should land below ``DIR`` (it asked ``HEAD archive``
where the destination is first).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rctlbase.errors import UsageError
from rootless.api.http import Reply, Request, Response
from rootless.api.routes import Route

if TYPE_CHECKING:
    from rootless.api.app import Api

ID = "(?P<id>[^/]+)"


def put_archive(api: Api, request: Request) -> Response:
    """Extract the uploaded tar into directory ``path`` of the container."""
    path = request.arg("path")
    if not path:
        raise UsageError("path is required", hint="PUT /containers/ID/archive?path=/dir")
    if request.upload is None:
        raise UsageError("no archive sent", hint="send a tar as the request body")
    request.flag("noOverwriteDirNonDir")  # accepted: the copy replaces what it meets
    request.flag("copyUIDGID")  # accepted: entries belong to the container's root
    eng = api.engine()
    record = eng.containers.get(request.params["id"])
    with eng.build_context(request.upload, "the copied archive") as root:
        eng.containers.copy(f"{root}/.", f"{record.id}:{path}")
    return Reply(200, b"", "text/plain")


ROUTES = [Route("PUT", f"/containers/{ID}/archive", put_archive, upload=True)]
