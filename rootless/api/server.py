"""The HTTP side of the API: h11 connections over asyncio, every resource bounded.

h11 is a pure-Python HTTP/1.1 state machine (no I/O of its own), so the event loop owns the
sockets while handlers, which call the blocking engine, run in two bounded thread pools: one
for calls that answer at once, one for long-lived streams (pull progress, ``logs -f``,
attach), so that a slow stream never holds up a ``ps``. Bounded: connections at once, header
bytes, JSON bodies and tar uploads (per route), the chunks queued for a slow client
(``drain`` after each one). A malformed request is answered 400 (413 when too big) and the
connection closed; nothing a client sends ends the service. Docker's attach and exec take the
connection over after ``101 UPGRADED`` (h11's protocol switch) as a raw pipe both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, Protocol

import h11

from rootless.api.http import JSON, Hijack, Reply, Request, Response, Stream, error_body
from rootless.api.routes import Match


@dataclass(frozen=True, slots=True)
class Limits:
    """What one service accepts at most."""

    connections: int = 256
    header_bytes: int = 64 * 1024
    json_body: int = 8 * 2**20
    upload_body: int = 16 * 2**30
    calls: int = 16  # threads answering calls
    streams: int = 128  # threads pumping streams and hijacked connections
    read_chunk: int = 64 * 1024
    keepalive: float = 600.0  # an idle kept-alive connection is closed after this


class App(Protocol):
    """What the server serves: routing (pure, on the event loop) and handling (threads)."""

    def resolve(self, method: str, path: str) -> Match | Reply:
        """The route for a request, or the reply that says there is none."""
        ...

    def call(self, match: Match, request: Request) -> Response:
        """Run the route's handler; every error is already a reply."""
        ...

    def headers(self) -> tuple[tuple[str, str], ...]:
        """Headers on every response (``Api-Version``...)."""
        ...


class TooLarge(Exception):
    """A body over its route's limit."""


class Server:
    """Serves one listening socket until idle for ``idle_exit`` seconds (None: forever)."""

    def __init__(self, app: App, limits: Limits | None = None) -> None:
        self.app = app
        self.limits = limits or Limits()
        self.calls = ThreadPoolExecutor(self.limits.calls, "api-call")
        self.streams = ThreadPoolExecutor(self.limits.streams, "api-stream")
        self.connections = 0
        self.last_active = time.monotonic()

    async def serve(self, sock: socket.socket, idle_exit: float | None = None) -> None:
        """Accept connections on ``sock`` (unix or TCP, already listening)."""
        if sock.family == socket.AF_UNIX:
            server = await asyncio.start_unix_server(self.connection, sock=sock)
        else:
            server = await asyncio.start_server(self.connection, sock=sock)
        async with server:
            while True:
                await asyncio.sleep(0.5 if idle_exit is None else min(0.5, idle_exit / 4))
                if idle_exit is None or self.connections:
                    continue
                if time.monotonic() - self.last_active >= idle_exit:
                    return

    def close(self) -> None:
        """Stop the pools without waiting for streams that block (their threads are daemons
        of the pool and end with the process)."""
        self.calls.shutdown(wait=False, cancel_futures=True)
        self.streams.shutdown(wait=False, cancel_futures=True)

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection, from accept to close."""
        self.last_active = time.monotonic()
        if self.connections >= self.limits.connections:
            body = error_body("too many connections to the rctl API; try again")
            writer.write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            with contextlib.suppress(OSError):
                await writer.drain()
            writer.close()
            return
        self.connections += 1
        try:
            await Connection(self, reader, writer).run()
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client left
        except Exception as exc:  # a bug: logged, and only this connection ends
            log_bug(exc)
        finally:
            self.connections -= 1
            self.last_active = time.monotonic()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class Connection:
    """The h11 state of one connection and its request/response cycles."""

    def __init__(
        self, server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.limits = server.limits
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.header_bytes)

    async def run(self) -> None:
        while True:
            event = await self.next_event()
            if not isinstance(event, h11.Request):
                return
            if not await self.cycle(event):
                return
            if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
                self.conn.start_next_cycle()
            else:
                return

    async def next_event(self) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA] | None:
        """The next event, reading as needed; None when the connection is over (closed,
        idle too long, or malformed: then a 400 went out first)."""
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                await self.refuse(exc.error_status_hint, f"malformed request: {exc}")
                return None
            if event is h11.NEED_DATA:
                try:
                    data = await asyncio.wait_for(
                        self.reader.read(self.limits.read_chunk), self.limits.keepalive
                    )
                except TimeoutError:
                    return None
                self.conn.receive_data(data)
                continue
            if isinstance(event, h11.ConnectionClosed):
                return None
            return event

    async def refuse(self, status: int, message: str) -> None:
        """An error response ending the connection, if one can still be sent."""
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        await self.send_reply(Reply(status, error_body(message)), extra=(("Connection", "close"),))

    async def cycle(self, event: h11.Request) -> bool:
        """Answer one request; False when the connection must end."""
        method = event.method.decode("ascii", "replace")
        target = event.target.decode("latin-1")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}
        routed = self.server.app.resolve(method, target)
        if isinstance(routed, Reply):
            await self.send_reply(routed, (("Connection", "close"),), head=method == "HEAD")
            return False
        limit = self.limits.upload_body if routed.upload else self.limits.json_body
        if declared_length(headers) > limit:
            await self.refuse(413, f"request body too large: at most {limit} bytes here")
            return False
        with contextlib.ExitStack() as stack:
            upload: IO[bytes] | None = None
            if routed.upload:
                upload = stack.enter_context(tempfile.SpooledTemporaryFile(max_size=2**20))
            try:
                body = await self.read_body(limit, upload)
            except TooLarge:
                await self.refuse(413, f"request body too large: at most {limit} bytes here")
                return False
            if body is None:
                return False
            if upload is not None:
                upload.seek(0)
            request = Request(
                method=method,
                path=routed.path,
                query=routed.query,
                headers=headers,
                body=body,
                upload=upload,
                version=routed.version,
                params=routed.params,
            )
            return await self.respond(routed, request, headers)
        return False  # pragma: no cover - the block returns

    async def respond(self, routed: Match, request: Request, headers: dict[str, str]) -> bool:
        """Run the handler and send what it returns; False when the connection must end."""
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(
            self.server.calls, self.server.app.call, routed, request
        )
        if isinstance(response, Reply):
            await self.send_reply(response, head=request.method == "HEAD")
            return True
        if isinstance(response, Stream):
            return await self.stream(response, request)
        await self.hijack(response, request, headers)
        return False

    async def read_body(self, limit: int, upload: IO[bytes] | None) -> bytes | None:
        """The request's body (into ``upload`` when given), None if the client left."""
        body = bytearray()
        size = 0
        while True:
            event = await self.next_event()
            if event is None:
                return None
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    raise TooLarge
                if upload is not None:
                    upload.write(event.data)
                else:
                    body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return bytes(body)

    def response_headers(
        self, content_type: str, extra: tuple[tuple[str, str], ...]
    ) -> list[tuple[str, str]]:
        return [("Content-Type", content_type), *self.server.app.headers(), *extra]

    async def send_reply(
        self, reply: Reply, extra: tuple[tuple[str, str], ...] = (), *, head: bool = False
    ) -> None:
        """``reply``; to a HEAD request its headers alone (an error's too: h11 refuses a
        body there, and the length stays the one a GET would get)."""
        headers = self.response_headers(reply.content_type, (*reply.headers, *extra))
        headers.append(("Content-Length", str(len(reply.body))))
        self.send(
            h11.Response(status_code=reply.status, headers=headers, reason=reason(reply.status))
        )
        if reply.body and not head:
            self.send(h11.Data(data=reply.body))
        self.send(h11.EndOfMessage())
        await self.writer.drain()

    def send(self, event: h11.Event) -> None:
        data = self.conn.send(event)
        if data:
            self.writer.write(data)

    async def stream(self, response: Stream, request: Request) -> bool:
        """Send ``response.chunks`` as they come, chunked; False when the client left."""
        headers = self.response_headers(response.content_type, response.headers)
        self.send(
            h11.Response(
                status_code=response.status, headers=headers, reason=reason(response.status)
            )
        )
        await self.writer.drain()

        async def write(chunk: bytes) -> None:
            self.send(h11.Data(data=chunk))
            await self.writer.drain()

        ended = await self.pump(response.chunks, write, request)
        if not ended:
            return False
        self.send(h11.EndOfMessage())
        await self.writer.drain()
        return True

    async def pump(
        self,
        chunks: Iterator[bytes],
        write: Callable[[bytes], Coroutine[Any, Any, None]],
        request: Request,
        watch_eof: bool = True,
    ) -> bool:
        """Write what ``chunks`` yields (pulled on a stream thread); True when it ended,
        False when the client left first (then ``request.gone`` is set)."""
        loop = asyncio.get_running_loop()

        def produce() -> None:
            try:
                for chunk in chunks:
                    if request.gone.is_set():
                        return
                    if chunk:
                        asyncio.run_coroutine_threadsafe(write(chunk), loop).result()
            except (ConnectionError, RuntimeError, h11.LocalProtocolError):
                request.gone.set()
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()

        producer = asyncio.ensure_future(loop.run_in_executor(self.server.streams, produce))
        waiting: set[asyncio.Future[None]] = {producer}
        watcher = None
        if watch_eof:
            watcher = asyncio.ensure_future(self.wait_eof())
            waiting.add(watcher)
        try:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if watcher is not None:
                watcher.cancel()
        if producer not in done or request.gone.is_set():
            request.gone.set()
            return False
        producer.result()  # a bug in a handler's stream surfaces here
        return True

    async def wait_eof(self) -> None:
        """Return when the client closes its side (what it sends meanwhile is dropped)."""
        while await self.reader.read(self.limits.read_chunk):
            pass

    async def hijack(self, response: Hijack, request: Request, headers: dict[str, str]) -> None:
        """Docker's hijacked connection: 101 (or 200) and then raw bytes both ways."""
        session = response.session
        upgrade = "upgrade" in headers.get("connection", "").lower() and "upgrade" in headers
        leftover = b""
        if upgrade:
            self.send(
                h11.InformationalResponse(
                    status_code=101,
                    reason=b"UPGRADED",
                    headers=[
                        ("Content-Type", response.content_type),
                        ("Connection", "Upgrade"),
                        ("Upgrade", "tcp"),
                        *self.server.app.headers(),
                    ],
                )
            )
            leftover = self.conn.trailing_data[0]
        else:
            # Old clients hijack a plain 200 response (no length, no chunks).
            self.writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n" % response.content_type.encode()
            )
        await self.writer.drain()
        loop = asyncio.get_running_loop()

        async def write(chunk: bytes) -> None:
            self.writer.write(chunk)
            await self.writer.drain()

        async def forward_input() -> None:
            if leftover:
                await loop.run_in_executor(self.server.streams, session.feed, leftover)
            while data := await self.reader.read(self.limits.read_chunk):
                await loop.run_in_executor(self.server.streams, session.feed, data)
            await loop.run_in_executor(self.server.streams, session.close_input)

        feeder = asyncio.ensure_future(forward_input())
        try:
            await self.pump(session.output(), write, request, watch_eof=False)
        finally:
            feeder.cancel()
            await loop.run_in_executor(self.server.streams, session.close)
            with contextlib.suppress(OSError):
                if self.writer.can_write_eof():
                    self.writer.write_eof()


def reason(status: int) -> bytes:
    """The standard reason phrase (``OK``, ``Not Found``)."""
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def declared_length(headers: dict[str, str]) -> int:
    """The Content-Length a request declares (0 when none; h11 refuses malformed ones)."""
    try:
        return int(headers.get("content-length", "0") or "0")
    except ValueError:
        return 0


def log_bug(exc: BaseException) -> None:
    """A bug in the service: its traceback to the journal (stderr), the service goes on."""
    traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.flush()


__all__ = ["JSON", "Limits", "Server"]
