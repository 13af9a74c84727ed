"""Container endpoints: create, list, inspect, start, stop, restart, kill, pause, wait,
attach, logs, top, rename, prune, delete."""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import signal
import stat
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from rctlbase.errors import ConflictError, NotFoundError, UsageError
from rootless.api.framing import STDOUT, frame
from rootless.api.http import (
    MULTIPLEXED_STREAM,
    RAW_STREAM,
    Hijack,
    Reply,
    Request,
    Response,
    Stream,
    json_reply,
    no_content,
)
from rootless.api.images import Sink, produce_bytes
from rootless.api.routes import Route
from rootless.api.translate import run_options

if TYPE_CHECKING:
    from rootless.api.app import Api

ID = r"(?P<id>[^/]+)"
WAIT_POLL = 0.1
RUNNING = ("active", "activating", "reloading", "deactivating")


def create(api: Api, request: Request) -> Response:
    """``POST /containers/create?name=NAME``: 201 ``{"Id", "Warnings"}``."""
    options = run_options(request.json(), request.arg("name") or None)
    record = api.engine().containers.create(options)
    return json_reply({"Id": record.id, "Warnings": []}, 201)


def listing(api: Api, request: Request) -> Response:
    """``GET /containers/json?all=&filters=&limit=&size=``."""
    rows = api.engine().containers.summaries(
        all_containers=request.flag("all"), filters=request.filters()
    )
    rows.sort(key=lambda r: r.created, reverse=True)
    limit = request.integer("limit")
    if limit is not None and limit > 0:
        rows = rows[:limit]
    sizes = {"SizeRw": 0, "SizeRootFs": 0} if request.flag("size") else {}
    return json_reply([{**row.to_docker(), **sizes} for row in rows])


def inspect_document(api: Api, ref: str) -> dict[str, Any]:
    """docker's ``container inspect`` document, with the exec instances of this service."""
    report = api.engine().containers.inspect(ref).to_docker()
    report["ExecIDs"] = api.execs.of_container(report["Id"]) or None
    return report


def inspect(api: Api, request: Request) -> Response:
    """``GET /containers/{id}/json``."""
    return json_reply(inspect_document(api, request.params["id"]))


def start(api: Api, request: Request) -> Response:
    """``POST /containers/{id}/start``: with an attached client, its pipes are the unit's
    standard streams."""
    eng = api.engine()
    record = eng.containers.get(request.params["id"])
    pipes = api.attachments.take(record.id)
    if pipes is None:
        eng.containers.start(record.id)
        return no_content()
    try:
        eng.containers.start(record.id, stdio=pipes.container_ends())
    finally:
        pipes.handed_over()
    return no_content()


def stop(api: Api, request: Request) -> Response:
    """``POST /containers/{id}/stop?t=SECONDS``."""
    api.engine().containers.stop(request.params["id"], request.integer("t"))
    return no_content()


def restart(api: Api, request: Request) -> Response:
    """``POST /containers/{id}/restart``."""
    api.engine().containers.restart(request.params["id"])
    return no_content()


def parse_signal(text: str) -> int:
    """``SIGKILL``, ``KILL`` or ``9``."""
    if not text:
        return int(signal.SIGKILL)
    if text.isdigit():
        number = int(text)
        if 0 < number < signal.NSIG:
            return number
    else:
        name = text.upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        found = getattr(signal.Signals, name, None) if name.isidentifier() else None
        if isinstance(found, signal.Signals):
            return int(found)
    raise UsageError(f"invalid signal: {text!r}", hint="e.g. SIGTERM, KILL or 9")


def kill(api: Api, request: Request) -> Response:
    """``POST /containers/{id}/kill?signal=``."""
    api.engine().containers.kill(request.params["id"], parse_signal(request.arg("signal")))
    return no_content()


def pause(api: Api, request: Request) -> Response:
    api.engine().containers.pause(request.params["id"])
    return no_content()


def unpause(api: Api, request: Request) -> Response:
    api.engine().containers.unpause(request.params["id"])
    return no_content()


def rename(api: Api, request: Request) -> Response:
    name = request.arg("name")
    if not name:
        raise UsageError("name is required", hint="POST /containers/ID/rename?name=NEW")
    api.engine().containers.rename(request.params["id"], name)
    return no_content()


def delete(api: Api, request: Request) -> Response:
    """``DELETE /containers/{id}?force=&v=``."""
    api.engine().containers.remove(
        request.params["id"], force=request.flag("force"), volumes=request.flag("v")
    )
    return no_content()


def prune(api: Api, request: Request) -> Response:
    removed = api.engine().containers.prune(request.filters())
    return json_reply({"ContainersDeleted": removed or None, "SpaceReclaimed": 0})


def top(api: Api, request: Request) -> Response:
    """``GET /containers/{id}/top?ps_args=``: ps's table as titles and rows."""
    args = tuple(request.arg("ps_args").split())
    text = api.engine().containers.top(request.params["id"], args)
    lines = [line for line in text.splitlines() if line.strip()]
    titles = lines[0].split() if lines else []
    rows = [line.split(None, max(len(titles) - 1, 0)) for line in lines[1:]]
    return json_reply({"Titles": titles, "Processes": rows})


def wait(api: Api, request: Request) -> Response:
    """``POST /containers/{id}/wait?condition=not-running|next-exit|removed``: the headers
    at once (clients send the start after them), the exit status when it comes."""
    condition = request.arg("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise UsageError(
            f"invalid condition: {condition!r}", hint="use not-running, next-exit or removed"
        )
    eng = api.engine()
    record = eng.containers.get(request.params["id"])
    state = eng.containers.unit_state(record)
    since = time.time()
    started_before = state.exec_main_start_usec if state is not None else 0

    def result() -> Iterator[bytes]:
        code = wait_exit(api, record, condition, started_before, since, request)
        if code is not None:
            yield json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n"

    return Stream(result())


def wait_exit(
    api: Api, record: Any, condition: str, started_before: int, since: float, request: Request
) -> int | None:
    """The exit status ``condition`` waits for (None: the client left first)."""
    eng = api.engine()
    last: int | None = None
    while not request.gone.is_set():
        try:
            state = eng.containers.unit_state(record)
        except NotFoundError:
            state = None
        try:
            current = eng.containers.get(record.id)
        except NotFoundError:
            current = None
        running = state is not None and state.active_state in RUNNING
        if running:
            code = eng.containers.wait(record.id) if current is not None else None
            last = code if code is not None else _unit_status(state)
            if condition != "removed":
                return last
        ran = state is not None and state.exec_main_start_usec > started_before
        if not running and ran and state is not None:
            last = _unit_status(state)
            if last is None and current is not None:
                last = eng.containers.exit_code(current)
            if condition != "removed":
                return last or 0
        if current is None:
            return last if last is not None else 0
        if condition == "not-running" and not running:
            code = eng.containers.exit_code(current)
            return code or 0
        if condition == "next-exit" and not running and _ended_since(eng, current, since):
            return eng.containers.exit_code(current) or 0
        time.sleep(WAIT_POLL)
    return None


def _unit_status(state: Any) -> int | None:
    status = getattr(state, "exit_status", None)
    return status if isinstance(status, int) else None


def _ended_since(eng: Any, record: Any, since: float) -> bool:
    try:
        ended = eng.containers.last_exit(record.id)
    except NotFoundError:  # removed meanwhile: the caller sees it on its next look
        return False
    return ended is not None and ended[1] >= since


def attach(api: Api, request: Request) -> Response:
    """``POST /containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1``: hijacked.

    Before the start, the container's streams become the client's pipes; attached to a
    running container, the client follows its output from the journal."""
    eng = api.engine()
    record = eng.containers.get(request.params["id"])
    tty = bool(record.options.get("Tty"))
    kind = RAW_STREAM if tty else MULTIPLEXED_STREAM
    state = eng.containers.unit_state(record)
    if state is not None and state.active_state in RUNNING:
        since = datetime.datetime.now(datetime.UTC).isoformat()
        entries = eng.containers.logs(record.id, since=since, follow=True)
        return Hijack(JournalSession(entries, tty, request), kind)
    stdin = request.flag("stdin") and bool(record.options.get("OpenStdin"))
    return Hijack(api.attachments.attach(record.id, stdin, tty, request.gone), kind)


class JournalSession:
    """An attach to a running container: its output from the journal, no stdin."""

    def __init__(self, entries: Iterator[Any], tty: bool, request: Request) -> None:
        self.entries = entries
        self.tty = tty
        self.request = request

    def output(self) -> Iterator[bytes]:
        for entry in self.entries:
            data = log_line(entry, timestamps=False)
            yield data if self.tty else frame(STDOUT, data)

    def feed(self, data: bytes) -> None:
        pass

    def close_input(self) -> None:
        pass

    def close(self) -> None:
        self.request.gone.set()
        close = getattr(self.entries, "close", None)
        if close is not None:
            close()


def log_line(entry: Any, timestamps: bool) -> bytes:
    message = entry.message if isinstance(entry.message, bytes) else entry.message.encode()
    if timestamps:
        when = datetime.datetime.fromtimestamp(entry.timestamp_usec / 1e6, datetime.UTC)
        message = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode() + b" " + message
    return message + b"\n"


def logs(api: Api, request: Request) -> Response:
    """``GET /containers/{id}/logs?follow=&stdout=&stderr=&since=&until=&tail=&timestamps=``."""
    eng = api.engine()
    record = eng.containers.get(request.params["id"])
    tty = bool(record.options.get("Tty"))
    tail_text = request.arg("tail", "all")
    tail = None if tail_text in ("all", "") else request.integer("tail")
    wanted = request.flag("stdout") or request.flag("stderr")
    entries = eng.containers.logs(
        record.id,
        since=_time_arg(request.arg("since")),
        until=_time_arg(request.arg("until")),
        tail=tail,
        follow=request.flag("follow"),
    )
    stamps = request.flag("timestamps")

    def chunks() -> Iterator[bytes]:
        try:
            for entry in entries:
                if request.gone.is_set():
                    return
                if not wanted:
                    continue
                data = log_line(entry, stamps)
                yield data if tty else frame(STDOUT, data)
        finally:
            entries.close()  # type: ignore[attr-defined]

    return Stream(chunks(), content_type=RAW_STREAM if tty else MULTIPLEXED_STREAM)


def _time_arg(text: str) -> str | None:
    """docker sends since/until as Unix seconds (``1700000000.000000000``); 0 is unset."""
    if not text or text in ("0", "0.000000000"):
        return None
    try:
        seconds = float(text)
    except ValueError:
        return text
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat()


def archive(api: Api, request: Request) -> Response:
    """``GET``/``HEAD /containers/{id}/archive?path=``: a tar of the path, its stat in
    ``X-Docker-Container-Path-Stat``. The copy is ``rctl cp``'s (symlink-safe, in the
    container's view) into a private scratch directory, archived from there."""
    path = request.arg("path")
    if not path:
        raise UsageError("path is required", hint="GET /containers/ID/archive?path=/etc")
    eng = api.engine()
    record = eng.containers.get(request.params["id"])
    scratch = eng.scratch_directory("api-cp-")
    target = scratch / "out"
    try:
        eng.containers.copy(f"{record.id}:{path}", str(target))
        name = PurePosixPath(path).name or "/"
        headers = (("X-Docker-Container-Path-Stat", path_stat(target, name)),)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    if request.method == "HEAD":
        shutil.rmtree(scratch, ignore_errors=True)
        return Reply(200, b"", "application/x-tar", headers)

    def work(emit: Callable[[bytes], None]) -> None:
        try:
            with tarfile.open(fileobj=Sink(emit), mode="w|") as tar:  # type: ignore[call-overload]
                tar.add(target, arcname=name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    return Stream(produce_bytes(work, request), content_type="application/x-tar", headers=headers)


def path_stat(path: Path, name: str) -> str:
    """docker's path stat header: base64 of ``{"name", "size", "mode", "mtime",
    "linkTarget"}``, the mode in Go's os.FileMode bits."""
    info = os.lstat(path)
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISDIR(info.st_mode):
        mode |= 1 << 31
    elif stat.S_ISLNK(info.st_mode):
        mode |= 1 << 27
    when = datetime.datetime.fromtimestamp(info.st_mtime, datetime.UTC)
    document = {
        "name": name,
        "size": info.st_size,
        "mode": mode,
        "mtime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "linkTarget": os.readlink(path) if stat.S_ISLNK(info.st_mode) else "",
    }
    return base64.b64encode(json.dumps(document).encode()).decode()


def resize(api: Api, request: Request) -> Response:
    """``POST /containers/{id}/resize?h=&w=``: the window size of its terminal (a 409 while
    it has none: docker's CLI tries again as the container starts)."""
    rows, columns = request.integer("h", 0) or 0, request.integer("w", 0) or 0
    if not (0 < rows < 2**16 and 0 < columns < 2**16):
        raise UsageError("resize needs h and w", hint="POST /containers/ID/resize?h=24&w=80")
    if not api.engine().containers.resize_terminal(request.params["id"], rows, columns):
        raise ConflictError(
            f"container {request.params['id']} has no terminal running",
            hint="resize a running container created with Tty",
        )
    return Reply(200, b"", "text/plain")


ROUTES = [
    Route("GET", "/containers/json", listing),
    Route("POST", "/containers/create", create),
    Route("POST", "/containers/prune", prune),
    Route("GET", f"/containers/{ID}/json", inspect),
    Route("POST", f"/containers/{ID}/start", start),
    Route("POST", f"/containers/{ID}/stop", stop),
    Route("POST", f"/containers/{ID}/restart", restart),
    Route("POST", f"/containers/{ID}/kill", kill),
    Route("POST", f"/containers/{ID}/pause", pause),
    Route("POST", f"/containers/{ID}/unpause", unpause),
    Route("POST", f"/containers/{ID}/rename", rename),
    Route("POST", f"/containers/{ID}/wait", wait),
    Route("POST", f"/containers/{ID}/attach", attach),
    Route("POST", f"/containers/{ID}/resize", resize),
    Route("GET", f"/containers/{ID}/logs", logs),
    Route("GET", f"/containers/{ID}/top", top),
    Route("GET", f"/containers/{ID}/archive", archive),
    Route("HEAD", f"/containers/{ID}/archive", archive),
    Route("DELETE", f"/containers/{ID}", delete),
]
