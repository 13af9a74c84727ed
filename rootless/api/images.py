"""Image endpoints: pull (``/images/create``), list, inspect, history, tag, delete, prune,
push, save (``get``) and load; search is not served (501).

Pull and push take the client's credentials from ``X-Registry-Auth`` (base64url of docker's
auth config JSON) for that request alone; without them the registry client uses those
stored by ``rctl login``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import json
import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from rctlbase.errors import NotFoundError, UsageError
from rootless.api.http import NotServed, Reply, Request, Response, Stream, json_reply
from rootless.api.routes import Route
from rootless.api.seam import stream_error
from rootless.models import PullEvent, PullOptions, RegistryAuth

if TYPE_CHECKING:
    from rootless.api.app import Api

IMAGE = r"(?P<name>.+)"
QUEUE_DEPTH = 256  # progress lines held for a slow client before the work waits


def epoch(text: str) -> int:
    """An RFC 3339 time as docker's integer seconds (0 when unreadable)."""
    if not text:
        return 0
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        # Go's nanoseconds are longer than fromisoformat reads: cut to microseconds.
        head, dot, rest = text.partition(".")
        if not dot:
            return 0
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :].replace("Z", "+00:00")
        try:
            parsed = datetime.datetime.fromisoformat(f"{head}.{digits[:6]}{zone}")
        except ValueError:
            return 0
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return int(parsed.timestamp())


def familiar(name: str) -> str:
    """docker's short form of a full name: ``docker.io/library/busybox:1`` → ``busybox:1``."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def line(value: Any) -> bytes:
    return json.dumps(value).encode() + b"\r\n"


def produce(
    work: Callable[[Callable[[dict[str, Any]], None]], list[dict[str, Any]]],
    request: Request,
) -> Iterator[bytes]:
    """Run ``work`` on a thread of its own, yielding each progress line it emits as it
    comes, then its final lines; an error becomes docker's error line (the 200 is sent)."""
    lines: queue.Queue[tuple[str, Any]] = queue.Queue(QUEUE_DEPTH)

    def emit(value: dict[str, Any]) -> None:
        while not request.gone.is_set():
            try:
                lines.put(("line", value), timeout=0.5)
                return
            except queue.Full:
                continue

    def run() -> None:
        try:
            result = work(emit)
        except Exception as exc:  # reported in the stream: the status line went out already
            outcome: tuple[str, Any] = ("error", exc)
        else:
            outcome = ("done", result)
        while not request.gone.is_set():
            try:
                lines.put(outcome, timeout=0.5)
                return
            except queue.Full:
                continue

    threading.Thread(target=run, name="api-work", daemon=True).start()
    while True:
        kind, value = lines.get()
        if kind == "line":
            yield line(value)
        elif kind == "error":
            yield line(stream_error(value))
            return
        else:
            for final in value:
                yield line(final)
            return


def pull_name(request: Request) -> str:
    image = request.arg("fromImage")
    if not image:
        if request.arg("fromSrc"):
            raise NotServed("importing an image through /images/create?fromSrc")
        raise UsageError("fromImage is required", hint="POST /images/create?fromImage=NAME")
    tag = request.arg("tag")
    if tag:
        image += ("@" if ":" in tag else ":") + tag
    return image


@contextlib.contextmanager
def docker_not_found(name: str) -> Iterator[None]:
    """An unknown image as docker says it: clients match ``No such image`` in a 404
    (docker-py's ImageNotFound, compose's pull-if-missing)."""
    try:
        yield
    except NotFoundError as exc:
        if "No such image" in exc.message:
            raise
        raise NotFoundError(f"No such image: {name}", hint=exc.hint) from exc


def registry_auth(request: Request) -> RegistryAuth | None:
    """The credentials in ``X-Registry-Auth``, None when it names none; a header that is
    not base64 of a JSON object is the client's error (400), as docker answers."""
    header = request.headers.get("x-registry-auth", "").strip()
    if not header:
        return None
    try:
        padded = header + "=" * (-len(header) % 4)
        decoded = json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
    except (binascii.Error, ValueError, RecursionError):
        decoded = None
    if not isinstance(decoded, dict):
        raise UsageError(
            "X-Registry-Auth is not base64 of a JSON object",
            hint="send the auth config base64url-encoded, as docker clients do",
        )
    username, password = decoded.get("username"), decoded.get("password")
    combined = decoded.get("auth")
    if not username and isinstance(combined, str) and combined:
        try:
            username, _, password = (
                base64.b64decode(combined, validate=True).decode().partition(":")
            )
        except (binascii.Error, ValueError):
            raise UsageError(
                "X-Registry-Auth: auth is not base64 of USER:PASSWORD", hint="send username"
            ) from None
    if not username:
        return None  # anonymous (docker's CLI sends {} when it has nothing stored)
    if not isinstance(username, str) or not isinstance(password, str):
        raise UsageError("X-Registry-Auth: username and password must be strings", hint="send both")
    return RegistryAuth(username, password)


class PullProgress:
    """docker's pull progress lines from rctl's pull events."""

    def __init__(self, emit: Callable[[dict[str, Any]], None]) -> None:
        self.emit = emit
        self.layers: list[str] = []

    def __call__(self, event: PullEvent) -> None:
        short = event.digest.removeprefix("sha256:")[:12]
        if event.kind == "resolved":
            name, _, tag = event.text.rpartition(":")
            self.emit({"status": f"Pulling from {name or event.text}", "id": tag or "latest"})
        elif event.kind == "exists":
            self.emit({"status": "Already exists", "progressDetail": {}, "id": short})
        elif event.kind == "start":
            self.layers.append(short)
            self.emit({"status": "Pulling fs layer", "progressDetail": {}, "id": short})
        elif event.kind == "progress":
            detail = {"current": event.done, "total": event.total}
            self.emit({"status": "Downloading", "progressDetail": detail, "id": short})
        elif event.kind == "done":
            self.emit({"status": "Download complete", "progressDetail": {}, "id": short})
        elif event.kind == "unpacking":
            self.emit({"status": "Extracting", "progressDetail": {}, "id": short})


def create(api: Api, request: Request) -> Response:
    """``POST /images/create?fromImage=NAME&tag=TAG``: pull, with docker's progress stream."""
    name = pull_name(request)
    options = PullOptions(name, request.arg("platform") or None, auth=registry_auth(request))

    def work(emit: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
        progress = PullProgress(emit)
        image = api.engine().pull(options, progress)
        full = api.engine().resolve_name(name)
        done = [{"status": "Pull complete", "progressDetail": {}, "id": s} for s in progress.layers]
        return [
            *done,
            {"status": f"Digest: {image.manifest_digest}"},
            {"status": f"Status: Image is up to date for {full}"},
        ]

    return Stream(produce(work, request))


def listing(api: Api, request: Request) -> Response:
    """``GET /images/json``: one entry per image, its names as RepoTags."""
    rows = api.engine().images.summaries(all_images=request.flag("all"), filters=request.filters())
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = found.get(row.id)
        if entry is None:
            entry = found[row.id] = {
                "Id": row.id,
                "ParentId": "",
                "RepoTags": [],
                "RepoDigests": [],
                "Created": epoch(row.created),
                "Size": row.size,
                "SharedSize": -1,
                "Labels": {},
                "Containers": -1,
            }
            if request.version < "1.44":
                entry["VirtualSize"] = row.size
        if not row.dangling:
            entry["RepoTags"].append(familiar(f"{row.repository}:{row.tag}"))
            if row.digest:
                digest = familiar(f"{row.repository}@{row.digest}")
                if digest not in entry["RepoDigests"]:
                    entry["RepoDigests"].append(digest)
    return json_reply(list(found.values()))


def inspect(api: Api, request: Request) -> Response:
    """``GET /images/{name}/json``: docker's inspect document."""
    eng = api.engine()
    with docker_not_found(request.params["name"]):
        report = eng.images.inspect(request.params["name"]).to_docker()
    report.update(
        RepoTags=[familiar(n) for n in report.get("RepoTags") or []],
        RepoDigests=[familiar(n) for n in report.get("RepoDigests") or []],
    )
    if request.version < "1.44":
        report["VirtualSize"] = report.get("Size", 0)
    return json_reply(report)


def history(api: Api, request: Request) -> Response:
    """``GET /images/{name}/history``."""
    with docker_not_found(request.params["name"]):
        rows = api.engine().images.history(request.params["name"])
    return json_reply([row.to_docker() for row in rows])


def tag(api: Api, request: Request) -> Response:
    """``POST /images/{name}/tag?repo=REPO&tag=TAG``: 201."""
    repo = request.arg("repo")
    if not repo:
        raise UsageError("repo is required", hint="POST /images/NAME/tag?repo=REPO&tag=TAG")
    target = f"{repo}:{request.arg('tag')}" if request.arg("tag") else repo
    with docker_not_found(request.params["name"]):
        api.engine().images.tag(request.params["name"], target)
    return Reply(201, b"", "text/plain")


def delete(api: Api, request: Request) -> Response:
    """``DELETE /images/{name}?force=``: what was untagged and deleted."""
    with docker_not_found(request.params["name"]):
        removed = api.engine().images.remove([request.params["name"]], force=request.flag("force"))
    return json_reply(
        [{"Untagged": n} for n in removed.untagged] + [{"Deleted": i} for i in removed.deleted]
    )


def prune(api: Api, request: Request) -> Response:
    """``POST /images/prune``."""
    filters = request.filters()
    every = any(f.replace(" ", "").lower() == "dangling=false" for f in filters)
    removed = api.engine().images.prune(all_images=every, filters=filters)
    return json_reply(
        {"ImagesDeleted": [{"Deleted": i} for i in removed] or None, "SpaceReclaimed": 0}
    )


def search(api: Api, request: Request) -> Response:
    raise NotServed("searching registries (/images/search)")


def save(api: Api, request: Request) -> Response:
    """``GET /images/{name}/get`` and ``GET /images/get?names=...``: a docker archive."""
    names = [request.params["name"]] if "name" in request.params else []
    names += list(request.query.get("names", ()))
    if not names:
        raise UsageError("no image named", hint="GET /images/get?names=NAME")
    eng = api.engine()
    for name in names:
        with docker_not_found(name):
            eng.images.get(name)  # a 404 before the stream starts

    def work(emit: Callable[[bytes], None]) -> None:
        eng.save(names, Sink(emit), "docker-archive")  # type: ignore[arg-type]

    return Stream(produce_bytes(work, request), content_type="application/x-tar")


class Sink:
    """A write-only file object handing what is written to ``emit``."""

    def __init__(self, emit: Callable[[bytes], None]) -> None:
        self.emit = emit

    def write(self, data: bytes) -> int:
        if data:
            self.emit(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


def produce_bytes(
    work: Callable[[Callable[[bytes], None]], None], request: Request
) -> Iterator[bytes]:
    """Like :func:`produce` for raw bytes (an archive): an error ends the stream early."""
    chunks: queue.Queue[bytes | None] = queue.Queue(64)

    def emit(data: bytes) -> None:
        while not request.gone.is_set():
            try:
                chunks.put(data, timeout=0.5)
                return
            except queue.Full:
                continue
        raise ConnectionError("the client left")

    def run() -> None:
        try:
            work(emit)
        except Exception:  # noqa: S110 - the truncated archive is how docker reports it too
            pass
        finally:
            while not request.gone.is_set():
                try:
                    chunks.put(None, timeout=0.5)
                    break
                except queue.Full:
                    continue

    threading.Thread(target=run, name="api-work", daemon=True).start()
    while (chunk := chunks.get()) is not None:
        yield chunk


def load(api: Api, request: Request) -> Response:
    """``POST /images/load``: a docker or OCI archive upload."""
    if request.upload is None:
        raise UsageError("no archive sent", hint="send the archive as the request body")
    images = api.engine().load(request.upload)
    lines = []
    for image in images:
        for name in image.names or (image.id,):
            lines.append({"stream": f"Loaded image: {name}\n"})
    return Reply(200, b"".join(line(x) for x in lines))


def push(api: Api, request: Request) -> Response:
    """``POST /images/{name}/push?tag=``: upload, with a progress stream."""
    name = request.params["name"]
    if request.arg("tag"):
        name = f"{name}:{request.arg('tag')}"
    eng = api.engine()
    auth = registry_auth(request)
    with docker_not_found(name):
        eng.images.get(name)

    def work(emit: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
        def progress(digest: str, status: str) -> None:
            emit(
                {"status": status, "progressDetail": {}, "id": digest.removeprefix("sha256:")[:12]}
            )

        digest = eng.push(name, None, None, progress, auth)
        tag_ = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else "latest"
        return [
            {"status": f"{tag_}: digest: {digest} size: 0"},
            {"progressDetail": {}, "aux": {"Tag": tag_, "Digest": digest, "Size": 0}},
        ]

    return Stream(produce(work, request))


ROUTES = [
    Route("GET", "/images/json", listing),
    Route("POST", "/images/create", create),
    Route("POST", "/images/load", load, upload=True),
    Route("GET", "/images/get", save),
    Route("GET", "/images/search", search),
    Route("POST", "/images/prune", prune),
    Route("GET", f"/images/{IMAGE}/json", inspect),
    Route("GET", f"/images/{IMAGE}/history", history),
    Route("GET", f"/images/{IMAGE}/get", save),
    Route("POST", f"/images/{IMAGE}/tag", tag),
    Route("POST", f"/images/{IMAGE}/push", push),
    Route("DELETE", f"/images/{IMAGE}", delete),
]
