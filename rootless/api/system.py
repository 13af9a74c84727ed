"""System endpoints: ``/_ping``, ``/version``, ``/info``, ``/system/df``, ``/auth``,
``/events``."""

from __future__ import annotations

import json
import platform
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rootless.api.http import Reply, Request, Response, Stream, json_reply
from rootless.api.routes import API_VERSION, MIN_API_VERSION, Route

if TYPE_CHECKING:
    from rootless.api.app import Api


def ping(api: Api, request: Request) -> Response:
    """``GET``/``HEAD /_ping``: "OK"; the headers carry the API version to negotiate."""
    return Reply(
        200,
        b"" if request.method == "HEAD" else b"OK",
        "text/plain; charset=utf-8",
        (("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache")),
    )


def version(api: Api, request: Request) -> Response:
    """``/version``: the engine's part of ``rctl version``, as docker's server sends it."""
    server = api.engine().version().to_docker()
    server.update(
        ApiVersion=API_VERSION,
        MinAPIVersion=MIN_API_VERSION,
        GoVersion=f"python{platform.python_version()}",
        BuildTime="",
        Experimental=False,
    )
    server.pop("PythonVersion", None)
    return json_reply(server)


def info(api: Api, request: Request) -> Response:
    """``/info``: ``rctl info``'s document (it is docker's already)."""
    report = api.engine().info().to_docker()
    report.setdefault("ID", report.get("Name", ""))
    return json_reply(report)


def auth(api: Api, request: Request) -> Response:
    """``/auth``: check credentials against a registry. As docker's daemon, the service
    keeps nothing: the client stores them and sends them with each pull and push."""
    body = request.json_object()
    server = str(body.get("serveraddress") or "docker.io")
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        from rctlbase.errors import UsageError  # noqa: PLC0415

        raise UsageError("auth needs a username and a password", hint="send both as strings")
    api.engine().check_login(server, username, password, None)
    return json_reply({"Status": "Login Succeeded", "IdentityToken": ""})


def disk_usage(api: Api, request: Request) -> Response:
    """``GET /system/df``: images, containers, volumes and the layers' size."""
    return json_reply(api.engine().disk_usage().to_docker())


def _seconds(text: str) -> str | None:
    """docker sends since/until as Unix seconds; empty and 0 are unset."""
    return None if not text or text.strip("0.") == "" else text


def events(api: Api, request: Request) -> Response:
    """``GET /events?since=&until=&filters=``: docker's event messages, one JSON document a
    line; past ones from ``since``, then new ones until ``until`` passes or the client
    leaves. The arguments are checked before the 200 goes out."""
    found = api.engine().events(
        _seconds(request.arg("since")),
        _seconds(request.arg("until")),
        request.filters(),
        should_stop=request.gone.is_set,
    )

    def chunks() -> Iterator[bytes]:
        try:
            for event in found:
                if request.gone.is_set():
                    return
                yield json.dumps(event.to_docker(), separators=(",", ":")).encode() + b"\n"
        finally:
            close = getattr(found, "close", None)
            if close is not None:
                close()

    return Stream(chunks())


ROUTES = [
    Route("GET", "/_ping", ping),
    Route("HEAD", "/_ping", ping),
    Route("GET", "/version", version),
    Route("GET", "/info", info),
    Route("POST", "/auth", auth),
    Route("GET", "/system/df", disk_usage),
    Route("GET", "/events", events),
]
