"""``POST /build``: docker's classic builder endpoint over rctl's builder.

The body is the build context as a tar (plain or gzip-compressed, bounded), unpacked by
the hardened extractor (:func:`rootless.images.unpack.unpack_tree`) into a private
directory of the user's data directory that is removed afterwards. The query carries
``docker build``'s flags; the answer is docker's JSON progress stream: ``{"stream": ...}``
lines (steps, RUN output), ``{"aux": {"ID": ...}}`` and ``Successfully built``/``tagged``
lines at the end, ``{"errorDetail": ..., "error": ...}`` when a step fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rctlbase.errors import UsageError
from rootless.api.http import NotServed, Request, Response, Stream
from rootless.api.images import produce
from rootless.api.routes import Route
from rootless.models import BuildOptions

if TYPE_CHECKING:
    from rootless.api.app import Api

OUTPUT_CHUNK = 64 * 1024
NETWORKS = ("none", "host", "slirp4netns", "pasta")
STEP = re.compile(r"^(\[\d+/\d+\] )?STEP (\d+/\d+): (.*)$")


def json_map(request: Request, name: str) -> dict[str, str]:
    """A query parameter holding a JSON object of strings (``buildargs``, ``labels``);
    ``null`` values (docker's "take it from the client's environment", unset there) are
    left out."""
    raw = request.arg(name)
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in parsed.items()
    ):
        raise UsageError(
            f"query parameter {name}: not a JSON object of strings", hint='send {"KEY": "VALUE"}'
        )
    return {k: v for k, v in parsed.items() if v is not None}


def dockerfile_name(request: Request) -> str | None:
    """The ``dockerfile`` parameter: a relative path inside the context, or None."""
    given = request.arg("dockerfile")
    if not given:
        return None
    parts = given.split("/")
    if given.startswith("/") or "\0" in given or ".." in parts:
        raise UsageError(
            f"dockerfile {given!r} is not a path inside the build context",
            hint="name the Dockerfile relative to the context",
        )
    return given


def build_options(request: Request, context: Path) -> tuple[BuildOptions, bool]:
    """``docker build``'s query parameters as rctl's options, and whether ``q`` was set."""
    if request.arg("remote"):
        raise NotServed("building from a remote context (/build?remote=)")
    network = request.arg("networkmode") or None
    if network == "default":
        network = None
    if network is not None and network not in NETWORKS:
        raise UsageError(
            f"networkmode {network!r} is not supported for build steps",
            hint=f"use one of: default, {', '.join(NETWORKS)}",
        )
    given = dockerfile_name(request)
    dockerfile = str(inside(context, given)) if given else None
    args = json_map(request, "buildargs")
    labels = json_map(request, "labels")
    options = BuildOptions(
        context=str(context),
        dockerfile=dockerfile,
        tags=tuple(t for t in request.query.get("t", ()) if t),
        build_args=tuple(f"{k}={v}" for k, v in args.items()),
        target=request.arg("target") or None,
        no_cache=request.flag("nocache"),
        pull="always" if request.flag("pull") else "missing",
        labels=tuple(f"{k}={v}" for k, v in labels.items()),
        network=network,
    )
    request.flag("rm", True)  # accepted: step containers are always removed
    request.flag("forcerm")
    return options, request.flag("q")


def inside(context: Path, name: str) -> Path:
    """``name`` below ``context`` with its links resolved, refused when they lead out of
    it (the tar is the client's: a ``Dockerfile`` link to a file elsewhere is not read)."""
    root = context.resolve()
    found = (context / name).resolve()
    if found != root and root not in found.parents:
        raise UsageError(
            f"dockerfile {name!r} leads out of the build context",
            hint="send the Dockerfile itself in the context",
        )
    return found


def docker_step(line: str) -> str:
    """The builder's progress line as docker's classic builder words it."""
    found = STEP.match(line)
    if found:
        return f"Step {found.group(2)} : {found.group(3)}\n"
    if line.startswith("--> "):
        return f" ---> {line[4:]}\n"
    return f"{line}\n"


@contextlib.contextmanager
def step_output(emit: Callable[[dict[str, Any]], None], quiet: bool) -> Iterator[int]:
    """A pipe whose write end RUN steps get as stdout and stderr; a thread forwards what
    they write as ``{"stream": ...}`` lines (dropped with ``q``)."""
    read_end, write_end = os.pipe()

    def forward() -> None:
        while data := os.read(read_end, OUTPUT_CHUNK):
            if not quiet:
                emit({"stream": data.decode("utf-8", "replace")})

    reader = threading.Thread(target=forward, name="api-build-output", daemon=True)
    reader.start()
    try:
        yield write_end
    finally:
        os.close(write_end)
        reader.join(10)  # a step's stray process may hold the pipe: the read end goes anyway
        os.close(read_end)


def build(api: Api, request: Request) -> Response:
    """``POST /build?t=&dockerfile=&buildargs=&target=&nocache=&pull=&labels=&q=``."""
    if request.upload is None:
        raise UsageError("no build context sent", hint="send the context as a tar body")
    eng = api.engine()
    held = contextlib.ExitStack()
    try:
        context = held.enter_context(eng.build_context(request.upload))
        options, quiet = build_options(request, context)
    except BaseException:
        held.close()
        raise

    def work(emit: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
        def say(text: str) -> None:
            if not quiet:
                emit({"stream": docker_step(text)})

        try:
            with open(os.devnull, "rb") as devnull, step_output(emit, quiet) as out:
                image = api.engine().build(options, say, (devnull.fileno(), out, out))
        finally:
            held.close()
        short = image.id.removeprefix("sha256:")[:12]
        if quiet:
            return [{"aux": {"ID": image.id}}, {"stream": f"{image.id}\n"}]
        return [
            {"aux": {"ID": image.id}},
            {"stream": f"Successfully built {short}\n"},
            *({"stream": f"Successfully tagged {tag}\n"} for tag in options.tags),
        ]

    return Stream(produce(work, request))


ROUTES = [Route("POST", "/build", build, upload=True)]
