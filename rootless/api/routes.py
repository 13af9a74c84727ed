"""Routing: the version prefix, the path patterns, and what each route accepts.

Pure: a method and a request target in, a :class:`Match` (or the error :class:`Reply`) out.
Paths may start with ``/vMAJOR.MINOR`` (docker clients always send one, after negotiating
through ``/_ping`` or ``/version``); versions above the newest served are refused as docker
does, older ones down to the minimum are served with the same documents.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rootless.api.http import Handler, Reply, error_body

API_VERSION = "1.44"
MIN_API_VERSION = "1.24"
VERSION_PREFIX = re.compile(r"^/v(\d{1,3})\.(\d{1,3})(/.*)$")
MAX_TARGET = 16 * 1024


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint: method, a path pattern with named groups, its handler."""

    method: str
    pattern: str
    handler: Handler
    upload: bool = False  # the body is a tar stream (spooled, bounded by the upload limit)
    compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", re.compile(f"^{self.pattern}$"))


@dataclass(frozen=True, slots=True)
class Match:
    """A request resolved to its route."""

    route: Route
    path: str
    params: Mapping[str, str]
    query: Mapping[str, tuple[str, ...]]
    version: str

    @property
    def upload(self) -> bool:
        return self.route.upload

    @property
    def handler(self) -> Handler:
        return self.route.handler


def version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor)


def split_target(target: str) -> tuple[str, dict[str, tuple[str, ...]]]:
    """The decoded path and the query of a request target."""
    parts = urllib.parse.urlsplit(target)
    query: dict[str, list[str]] = {}
    for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(key, []).append(value)
    return urllib.parse.unquote(parts.path), {k: tuple(v) for k, v in query.items()}


class Router:
    """The route table; the first pattern that matches wins."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)

    def resolve(self, method: str, target: str) -> Match | Reply:
        if len(target) > MAX_TARGET or not target.startswith("/"):
            return Reply(400, error_body("malformed request target"))
        path, query = split_target(target)
        version = API_VERSION
        prefixed = VERSION_PREFIX.match(path)
        if prefixed:
            version = f"{int(prefixed.group(1))}.{int(prefixed.group(2))}"
            path = prefixed.group(3)
            if version_tuple(version) > version_tuple(API_VERSION):
                return Reply(
                    400,
                    error_body(
                        f"client version {version} is too new. "
                        f"Maximum supported API version is {API_VERSION}"
                    ),
                )
            if version_tuple(version) < version_tuple(MIN_API_VERSION):
                return Reply(
                    400,
                    error_body(
                        f"client version {version} is too old. "
                        f"Minimum supported API version is {MIN_API_VERSION}, "
                        "please upgrade your client to a newer version"
                    ),
                )
        if len(path) > 1:
            path = path.rstrip("/") or "/"
        allowed = False
        for route in self.routes:
            found = route.compiled.match(path)
            if found is None:
                continue
            if route.method != method and not (method == "HEAD" and route.method == "GET"):
                allowed = True
                continue
            params: dict[str, Any] = found.groupdict()
            return Match(route, path, params, query, version)
        if allowed:
            return Reply(405, error_body(f"method {method} not allowed on {path}"))
        return Reply(404, error_body(f"page not found: {method} {path} is not served by rctl"))
