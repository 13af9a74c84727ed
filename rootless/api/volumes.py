"""Volume endpoints: list, create, inspect, delete, prune."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rootless.api.http import Request, Response, json_reply, no_content
from rootless.api.routes import Route
from rootless.api.translate import Body, bad

if TYPE_CHECKING:
    from rootless.api.app import Api

NAME = r"(?P<name>[^/]+)"


def listing(api: Api, request: Request) -> Response:
    """``GET /volumes``: ``{"Volumes": [...], "Warnings": []}``."""
    reports = api.engine().volumes.reports(request.filters())
    return json_reply({"Volumes": [r.to_docker() for r in reports], "Warnings": []})


def create(api: Api, request: Request) -> Response:
    """``POST /volumes/create``: 201 with the volume (an existing name is returned as is,
    as docker does for compose's repeated ``up``)."""
    body = Body(request.json(), "")
    name = body.string("Name")
    eng = api.engine()
    if name:
        from rctlbase.errors import NotFoundError  # noqa: PLC0415

        try:
            return json_reply(eng.volumes.inspect(name).to_docker(), 201)
        except NotFoundError:
            pass
    labels = {}
    for key, value in body.mapping("Labels").items():
        if not isinstance(value, str):
            raise bad(f"Labels.{key}", "expected a string")
        labels[key] = value
    options = []
    for key, value in body.mapping("DriverOpts").items():
        if not isinstance(value, str):
            raise bad(f"DriverOpts.{key}", "expected a string")
        options.append(f"{key}={value}")
    record = eng.volumes.create(name, labels, options, body.string("Driver") or "local")
    return json_reply(eng.volumes.inspect(record.name).to_docker(), 201)


def inspect(api: Api, request: Request) -> Response:
    return json_reply(api.engine().volumes.inspect(request.params["name"]).to_docker())


def delete(api: Api, request: Request) -> Response:
    api.engine().volumes.remove([request.params["name"]], force=request.flag("force"))
    return no_content()


def prune(api: Api, request: Request) -> Response:
    removed = api.engine().volumes.prune(request.filters())
    return json_reply({"VolumesDeleted": removed or None, "SpaceReclaimed": 0})


ROUTES = [
    Route("GET", "/volumes", listing),
    Route("POST", "/volumes/create", create),
    Route("POST", "/volumes/prune", prune),
    Route("GET", f"/volumes/{NAME}", inspect),
    Route("DELETE", f"/volumes/{NAME}", delete),
]
