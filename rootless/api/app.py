"""The API application: the route table, an engine per worker thread, the error seam.

Handlers are plain functions ``(api, request) -> response`` grouped by resource
(:mod:`.system`, :mod:`.images`, :mod:`.containers`, :mod:`.execs`, :mod:`.volumes`,
:mod:`.networks`). Each worker thread gets an :class:`~rootless.engine.Engine` of its own:
an engine holds one D-Bus connection and caches that are not shared between threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from rctlbase.errors import RctlError
from rootless import __version__
from rootless.api import (
    archive,
    build,
    containers,
    execs,
    images,
    layers,
    networks,
    system,
    update,
    usage,
    volumes,
)
from rootless.api.attach import Attachments
from rootless.api.execs import Execs
from rootless.api.http import Reply, Request, Response
from rootless.api.routes import API_VERSION, Match, Route, Router
from rootless.api.seam import error_reply
from rootless.engine import Engine


def route_table() -> list[Route]:
    """Every endpoint served, specific patterns before general ones."""
    return [
        *system.ROUTES,
        *usage.ROUTES,
        *layers.ROUTES,
        *build.ROUTES,
        *archive.ROUTES,
        *update.ROUTES,
        *images.ROUTES,
        *containers.ROUTES,
        *execs.ROUTES,
        *volumes.ROUTES,
        *networks.ROUTES,
    ]


class Api:
    """What the handlers share: engines, pending attachments, exec instances."""

    def __init__(self, make_engine: Callable[[], Engine] = Engine) -> None:
        self.make_engine = make_engine
        self.router = Router(route_table())
        self.local = threading.local()
        self.attachments = Attachments()
        self.execs = Execs()
        self.on_bug: Callable[[BaseException], None] = lambda exc: None

    def engine(self) -> Engine:
        """This thread's engine, made on first use."""
        found: Engine | None = getattr(self.local, "engine", None)
        if found is None:
            found = self.make_engine()
            self.local.engine = found
        return found

    def resolve(self, method: str, path: str) -> Match | Reply:
        return self.router.resolve(method, path)

    def call(self, match: Match, request: Request) -> Response:
        try:
            return match.handler(self, request)
        except RctlError as exc:
            return error_reply(exc)
        except Exception as exc:  # a bug: the client gets a 500, the journal the traceback
            self.on_bug(exc)
            return error_reply(exc)

    def headers(self) -> tuple[tuple[str, str], ...]:
        return (
            ("Api-Version", API_VERSION),
            ("Docker-Experimental", "false"),
            ("Ostype", "linux"),
            ("Server", f"rctl/{__version__} (linux)"),
        )
