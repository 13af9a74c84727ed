"""Network endpoints: list, create, inspect, delete, prune, connect, disconnect."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from rctlbase.errors import NotFoundError
from rootless.api.http import Reply, Request, Response, json_reply, no_content
from rootless.api.routes import Route
from rootless.api.translate import Body, bad
from rootless.models import NetworkCreateOptions

if TYPE_CHECKING:
    from rootless.api.app import Api

NAME = r"(?P<name>[^/]+)"


def listing(api: Api, request: Request) -> Response:
    eng = api.engine()
    rows = eng.networks.summaries(request.filters(), builtin=True)
    found = []
    for row in rows:
        with contextlib.suppress(NotFoundError):  # removed meanwhile: left out
            found.append(eng.networks.inspect(row.name).to_docker())
    return json_reply(found)


def create(api: Api, request: Request) -> Response:
    """``POST /networks/create``: 201 ``{"Id", "Warning"}``."""
    body = Body(request.json(), "")
    name = body.string("Name")
    if not name:
        raise bad("Name", "required")
    ipam = body.sub("IPAM")
    configs = ipam.objects("Config")
    subnet = configs[0].string("Subnet") if configs else None
    gateway = configs[0].string("Gateway") if configs else None
    labels = []
    for key, value in body.mapping("Labels").items():
        if not isinstance(value, str):
            raise bad(f"Labels.{key}", "expected a string")
        labels.append(f"{key}={value}")
    options = NetworkCreateOptions(
        name=name,
        subnet=subnet,
        gateway=gateway,
        internal=body.boolean("Internal"),
        labels=tuple(labels),
        driver=body.string("Driver") or "bridge",
    )
    record = api.engine().networks.create(options)
    return json_reply({"Id": record.id, "Warning": ""}, 201)


def inspect(api: Api, request: Request) -> Response:
    return json_reply(api.engine().networks.inspect(request.params["name"]).to_docker())


def delete(api: Api, request: Request) -> Response:
    api.engine().networks.remove([request.params["name"]])
    return no_content()


def prune(api: Api, request: Request) -> Response:
    removed = api.engine().networks.prune(request.filters())
    return json_reply({"NetworksDeleted": removed or None})


def connect(api: Api, request: Request) -> Response:
    body = Body(request.json(), "")
    container = body.string("Container")
    if not container:
        raise bad("Container", "required")
    aliases = body.sub("EndpointConfig").strings("Aliases") or ()
    api.engine().networks.connect(request.params["name"], container, aliases)
    return Reply(200, b"", "text/plain")


def disconnect(api: Api, request: Request) -> Response:
    body = Body(request.json(), "")
    container = body.string("Container")
    if not container:
        raise bad("Container", "required")
    api.engine().networks.disconnect(request.params["name"], container)
    return Reply(200, b"", "text/plain")


ROUTES = [
    Route("GET", "/networks", listing),
    Route("POST", "/networks/create", create),
    Route("POST", "/networks/prune", prune),
    Route("GET", f"/networks/{NAME}", inspect),
    Route("DELETE", f"/networks/{NAME}", delete),
    Route("POST", f"/networks/{NAME}/connect", connect),
    Route("POST", f"/networks/{NAME}/disconnect", disconnect),
]
