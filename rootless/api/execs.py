"""Exec endpoints: ``/containers/{id}/exec`` makes an instance, ``/exec/{id}/start`` runs it
(hijacked, or detached; with a terminal, :mod:`.console`), ``/exec/{id}/json`` reports it,
``resize`` sets its terminal's window size.

Instances live in this service's memory, as docker's live in its daemon's; at most
:data:`MAX_INSTANCES`, the oldest ended ones forgotten first.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rctlbase.errors import ConflictError, NotFoundError, RctlError
from rootless.api.attach import Pipes, PipeSession
from rootless.api.console import ConsoleSession
from rootless.api.http import (
    MULTIPLEXED_STREAM,
    RAW_STREAM,
    Hijack,
    Reply,
    Request,
    Response,
    json_reply,
)
from rootless.api.routes import Route
from rootless.api.translate import Body

if TYPE_CHECKING:
    from rootless.api.app import Api

MAX_INSTANCES = 1024


@dataclass(slots=True)
class ExecInstance:
    """One exec: what to run and, once started, how it went."""

    id: str
    container_id: str
    argv: tuple[str, ...]
    env: tuple[str, ...]
    user: str | None
    workdir: str | None
    tty: bool
    stdin: bool
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    console: ConsoleSession | None = None  # an attached exec's terminal

    def document(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "ContainerID": self.container_id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "OpenStdin": self.stdin,
            "OpenStdout": True,
            "OpenStderr": True,
            "CanRemove": False,
            "DetachKeys": "",
            "Pid": 0,
            "ProcessConfig": {
                "tty": self.tty,
                "entrypoint": self.argv[0] if self.argv else "",
                "arguments": list(self.argv[1:]),
                "privileged": False,
                "user": self.user or "",
            },
        }


class Execs:
    """The exec instances of this service."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.instances: OrderedDict[str, ExecInstance] = OrderedDict()

    def add(self, instance: ExecInstance) -> None:
        with self.lock:
            while len(self.instances) >= MAX_INSTANCES:
                ended = next((k for k, v in self.instances.items() if not v.running), None)
                if ended is None:
                    raise ConflictError("too many exec instances running", hint="try later")
                del self.instances[ended]
            self.instances[instance.id] = instance

    def get(self, exec_id: str) -> ExecInstance:
        with self.lock:
            found = self.instances.get(exec_id)
        if found is None:
            raise NotFoundError(f"No such exec instance: {exec_id}", hint="create it first")
        return found

    def of_container(self, container_id: str) -> list[str]:
        with self.lock:
            return [k for k, v in self.instances.items() if v.container_id == container_id]


def create(api: Api, request: Request) -> Response:
    """``POST /containers/{id}/exec``: 201 ``{"Id"}``."""
    body = Body(request.json(), "")
    argv = body.strings("Cmd") or ()
    if not argv:
        from rctlbase.errors import UsageError  # noqa: PLC0415

        raise UsageError("exec needs a command: Cmd is empty", hint='send {"Cmd": ["sh"]}')
    record = api.engine().containers.get(request.params["id"])
    if body.boolean("Privileged"):
        from rctlbase.errors import UsageError  # noqa: PLC0415

        raise UsageError("privileged exec is not supported by rctl", hint="drop Privileged")
    instance = ExecInstance(
        id=secrets.token_hex(32),
        container_id=record.id,
        argv=argv,
        env=body.strings("Env") or (),
        user=body.string("User"),
        workdir=body.string("WorkingDir"),
        tty=body.boolean("Tty"),
        stdin=body.boolean("AttachStdin"),
    )
    api.execs.add(instance)
    return json_reply({"Id": instance.id}, 201)


def start(api: Api, request: Request) -> Response:
    """``POST /exec/{id}/start``: run it; hijacked unless ``Detach``."""
    body = Body(request.json(), "")
    instance = api.execs.get(request.params["id"])
    with api.execs.lock:
        if instance.started:
            raise ConflictError(f"exec {instance.id[:12]} has already started", hint="make another")
        instance.started = True
        instance.running = True
    tty = body.boolean("Tty") or instance.tty
    detach = body.boolean("Detach")
    eng = api.engine()
    eng.containers.get(instance.container_id)
    if tty and not detach:
        return start_console(api, instance, request)
    pipes = Pipes.make(instance.stdin and not detach, tty)

    def run() -> None:
        engine = api.make_engine()
        try:
            instance.exit_code = engine.containers.exec(
                instance.container_id,
                instance.argv,
                env=(*instance.env, *(("TERM=xterm",) if tty else ())),
                user=instance.user,
                workdir=instance.workdir,
                stdio=pipes.container_ends(),
                started=pipes.handed_over,
            )
        except RctlError as exc:
            message = f"rctl: {exc.message}\n".encode()
            _write_all(pipes.stderr_write, message)
            instance.exit_code = 126
        finally:
            pipes.handed_over()
            instance.running = False
            ended.set()
            if detach:
                session.close()

    ended = threading.Event()
    session = ExecSession(pipes, tty, request.gone, ended)
    threading.Thread(target=run, name="api-exec", daemon=True).start()
    if detach:
        return Reply(200, b"", "text/plain")
    return Hijack(session, RAW_STREAM if tty else MULTIPLEXED_STREAM)


def start_console(api: Api, instance: ExecInstance, request: Request) -> Response:
    """An attached exec with a terminal: crun makes it, the session relays its master."""
    ended = threading.Event()
    session = ConsoleSession(api.engine().console_socket_path(), request.gone, ended)
    instance.console = session

    def run() -> None:
        engine = api.make_engine()
        try:
            instance.exit_code = engine.containers.exec(
                instance.container_id,
                instance.argv,
                env=instance.env,
                user=instance.user,
                workdir=instance.workdir,
                console_socket=str(session.path),
            )
        except RctlError:
            instance.exit_code = 126
        finally:
            instance.running = False
            ended.set()

    threading.Thread(target=run, name="api-exec", daemon=True).start()
    return Hijack(session, RAW_STREAM)


class ExecSession(PipeSession):
    """An exec's hijacked connection: it ends once the command has, so that the client's
    inspect that follows finds the exit code (output can end before the process does)."""

    def __init__(
        self, pipes: Pipes, tty: bool, gone: threading.Event, ended: threading.Event
    ) -> None:
        super().__init__(pipes, tty, gone)
        self.ended = ended

    def output(self) -> Iterator[bytes]:
        yield from super().output()
        while not self.ended.wait(0.5) and not self.gone.is_set():
            pass


def _write_all(fd: int, data: bytes) -> None:
    import contextlib  # noqa: PLC0415
    import os  # noqa: PLC0415

    with contextlib.suppress(OSError):
        os.write(fd, data)


def inspect(api: Api, request: Request) -> Response:
    """``GET /exec/{id}/json``."""
    return json_reply(api.execs.get(request.params["id"]).document())


def resize(api: Api, request: Request) -> Response:
    """``POST /exec/{id}/resize?h=&w=``: the window size of its terminal, if it has one."""
    instance = api.execs.get(request.params["id"])
    rows, columns = request.integer("h", 0) or 0, request.integer("w", 0) or 0
    if instance.console is not None and 0 < rows < 2**16 and 0 < columns < 2**16:
        instance.console.resize(rows, columns)
    return Reply(200, b"", "text/plain")


ROUTES = [
    Route("POST", "/containers/(?P<id>[^/]+)/exec", create),
    Route("POST", "/exec/(?P<id>[^/]+)/start", start),
    Route("POST", "/exec/(?P<id>[^/]+)/resize", resize),
    Route("GET", "/exec/(?P<id>[^/]+)/json", inspect),
]
