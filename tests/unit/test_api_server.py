"""The API's HTTP server over a real unix socket, with handlers of the test's own: bounds,
malformed requests, streams whose client leaves, hijacked connections, concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rctlbase.errors import NotFoundError
from rootless.api.app import Api
from rootless.api.http import Hijack, Reply, Request, Response, Stream, json_reply
from rootless.api.routes import Match, Route, Router
from rootless.api.seam import error_reply
from rootless.api.server import Limits, Server

CALL_WORKERS = 16


class Echo:
    """A hijack session echoing what the client sends, upper-cased, until it closes."""

    def __init__(self) -> None:
        self.data: list[bytes | None] = []
        self.ready = threading.Condition()
        self.closed = False

    def output(self) -> Iterator[bytes]:
        while True:
            with self.ready:
                self.ready.wait_for(lambda: bool(self.data))
                item = self.data.pop(0)
            if item is None:
                return
            yield item.upper()

    def feed(self, data: bytes) -> None:
        with self.ready:
            self.data.append(data)
            self.ready.notify()

    def close_input(self) -> None:
        with self.ready:
            self.data.append(None)
            self.ready.notify()

    def close(self) -> None:
        self.closed = True


class FakeApp:
    def __init__(self) -> None:
        self.stream_closed = threading.Event()
        self.stream_gone = threading.Event()
        self.calls = 0
        self.sessions: list[Echo] = []
        self.in_flight = 0
        self.peak = 0
        self.gave_up = False
        self.gathered = threading.Condition()
        self.router = Router(
            [
                Route("GET", "/ok", self.ok),
                Route("POST", "/echo", self.echo_body),
                Route("POST", "/upload", self.upload, upload=True),
                Route("GET", "/slow", self.slow),
                Route("GET", "/missing", self.missing),
                Route("GET", "/bug", self.bug),
                Route("GET", "/stream", self.stream),
                Route("POST", "/hijack", self.hijack),
            ]
        )

    def resolve(self, method: str, path: str) -> Match | Reply:
        return self.router.resolve(method, path)

    def call(self, match: Match, request: Request) -> Response:
        self.calls += 1
        try:
            return match.handler(self, request)
        except Exception as exc:  # the seam as the real app has it
            return error_reply(exc)

    def headers(self) -> tuple[tuple[str, str], ...]:
        return (("Api-Version", "1.44"),)

    def ok(self, _: object, request: Request) -> Response:
        return json_reply({"ok": True, "version": request.version})

    def echo_body(self, _: object, request: Request) -> Response:
        return json_reply(request.json())

    def upload(self, _: object, request: Request) -> Response:
        assert request.upload is not None
        return json_reply({"size": len(request.upload.read())})

    def slow(self, _: object, request: Request) -> Response:
        """Held until CALL_WORKERS calls are in at once (or 10 s), then every call goes."""
        with self.gathered:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.gathered.notify_all()
            if not self.gathered.wait_for(
                lambda: self.peak >= CALL_WORKERS or self.gave_up, timeout=10
            ):
                self.gave_up = True  # the test fails on the peak; the rest need not wait
            self.in_flight -= 1
        return json_reply({})

    def missing(self, _: object, request: Request) -> Response:
        raise NotFoundError("No such container: x", hint="see ps")

    def bug(self, _: object, request: Request) -> Response:
        raise KeyError("oops")

    def stream(self, _: object, request: Request) -> Response:
        def chunks() -> Iterator[bytes]:
            try:
                for i in range(10_000):
                    if request.gone.is_set():
                        self.stream_gone.set()
                        return
                    yield b"line %d\n" % i
                    time.sleep(0.01)
            finally:
                self.stream_closed.set()

        return Stream(chunks())

    def hijack(self, _: object, request: Request) -> Response:
        session = Echo()
        self.sessions.append(session)
        return Hijack(session)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[FakeApp, str]]:
    app = FakeApp()
    path = str(tmp_path / "api.sock")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(path)
    sock.listen(64)
    sock.setblocking(False)
    limits = Limits(json_body=4096, upload_body=8192, connections=60, calls=CALL_WORKERS)
    server = Server(app, limits)
    loop = asyncio.new_event_loop()
    task = loop.create_task(server.serve(sock))

    def run() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task)
        left = asyncio.all_tasks(loop)  # connections still open: ended as asyncio.run does
        for pending in left:
            pending.cancel()
        if left:
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield app, path
    loop.call_soon_threadsafe(task.cancel)
    thread.join(5)
    server.close()
    sock.close()


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


def get(
    path: str, target: str, method: str = "GET", body: bytes | None = None
) -> tuple[int, bytes]:
    conn = UnixConnection(path)
    try:
        conn.request(method, target, body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def raw(path: str, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_a_request_and_keep_alive(served: tuple[FakeApp, str]) -> None:
    _, path = served
    conn = UnixConnection(path)
    for version in ("1.41", "1.44"):
        conn.request("GET", f"/v{version}/ok")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Api-Version") == "1.44"
        assert json.loads(response.read()) == {"ok": True, "version": version}
    conn.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"GET /ok HTTP/1.1\r\n" + b"X-Long: " + b"a" * 100_000 + b"\r\n\r\n",
        b"\x00\x01\x02\xff" * 100,
        b"GET /ok HTTP/1.1\r\n\r\n",  # no Host
    ],
)
def test_malformed_requests_get_400_and_the_service_goes_on(
    served: tuple[FakeApp, str], request_bytes: bytes
) -> None:
    _, path = served
    answer = raw(path, request_bytes)
    assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431", b"HTTP/1.1 505")), answer[:80]
    assert b'{"message": ' in answer
    assert get(path, "/ok")[0] == 200


def test_a_malformed_json_body_is_400(served: tuple[FakeApp, str]) -> None:
    _, path = served
    status, body = get(path, "/echo", "POST", b'{"a": ')
    assert status == 400
    assert "not valid JSON" in json.loads(body)["message"]
    status, body = get(path, "/echo", "POST", b"[" * 2000 + b"]" * 2000)
    assert status == 400  # too deep for Python's parser: refused, not a dead thread
    assert "not valid JSON" in json.loads(body)["message"]
    assert get(path, "/ok")[0] == 200


def test_oversized_bodies_are_413_without_reading_them(served: tuple[FakeApp, str]) -> None:
    app, path = served
    calls = app.calls
    declared = raw(path, b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n")
    assert declared.startswith(b"HTTP/1.1 413")
    chunked = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + (b"800\r\n" + b"x" * 2048 + b"\r\n") * 3 + b"0\r\n\r\n"
    )  # fmt: skip
    assert raw(path, chunked).startswith(b"HTTP/1.1 413")
    assert app.calls == calls  # no handler ran
    assert get(path, "/upload", "POST", b"x" * 8192) == (200, b'{"size": 8192}\n')
    assert get(path, "/ok")[0] == 200


def test_head_gets_an_errors_headers_only_and_the_connection_goes_on(
    served: tuple[FakeApp, str],
) -> None:
    _, path = served
    conn = UnixConnection(path)
    for target in ("/missing", "/ok", "/nothing"):
        conn.request("HEAD", target)
        response = conn.getresponse()
        assert response.status == {"/ok": 200}.get(target, 404)
        assert response.read() == b""
        if target == "/nothing":
            break  # an unrouted request ends its connection
        assert int(response.getheader("Content-Length") or 0) > 0
    conn.close()
    assert get(path, "/ok")[0] == 200


def test_errors_go_through_the_seam(served: tuple[FakeApp, str]) -> None:
    _, path = served
    status, body = get(path, "/missing")
    assert status == 404
    assert json.loads(body)["message"].startswith("No such container: x")
    status, body = get(path, "/bug")
    assert status == 500
    assert json.loads(body)["message"] == "internal error: KeyError: 'oops'"
    assert get(path, "/nothing")[0] == 404
    assert get(path, "/ok")[0] == 200


def test_a_client_leaving_mid_stream_closes_the_stream(served: tuple[FakeApp, str]) -> None:
    app, path = served
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 200")
        assert b"chunked" in first.lower()
    assert app.stream_closed.wait(10)
    assert get(path, "/ok")[0] == 200


def test_a_whole_stream_is_chunked(served: tuple[FakeApp, str]) -> None:
    app, path = served
    conn = UnixConnection(path)
    conn.request("GET", "/stream")
    response = conn.getresponse()
    first = response.read(7)
    assert first == b"line 0\n"
    conn.close()
    assert app.stream_closed.wait(10)


def test_hijack_upgrades_and_pipes_both_ways(served: tuple[FakeApp, str]) -> None:
    app, path = served
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(
            b"POST /hijack HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            b"Content-Length: 2\r\n\r\n{}early"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
        assert b"application/vnd.docker.raw-stream" in head
        got = b""
        while len(got) < 5:
            got += sock.recv(100)
        assert got == b"EARLY"  # bytes sent with the request reach the session
        sock.sendall(b"more")
        got = b""
        while len(got) < 4:
            got += sock.recv(100)
        assert got == b"MORE"
        sock.shutdown(socket.SHUT_WR)  # stdin's end: the output ends, the server closes
        assert sock.recv(100) == b""
    deadline = time.monotonic() + 5
    while not app.sessions[0].closed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert app.sessions[0].closed


def test_fifty_concurrent_requests(served: tuple[FakeApp, str]) -> None:
    app, path = served
    results: list[int] = []
    lock = threading.Lock()

    def one() -> None:
        status, _ = get(path, "/slow")
        with lock:
            results.append(status)

    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [200] * 50
    # The 16 workers answer calls in parallel (50 calls: a few rounds, not fifty), no more.
    assert app.peak == CALL_WORKERS


def test_connections_over_the_limit_get_503(served: tuple[FakeApp, str]) -> None:
    _, path = served
    held = []
    try:
        for _ in range(60):
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(path)
            held.append(sock)
        time.sleep(0.3)
        with socket.socket(socket.AF_UNIX) as sock:  # answered at once, before any request
            sock.settimeout(10)
            sock.connect(path)
            assert sock.recv(4096).startswith(b"HTTP/1.1 503")
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 5
    while get(path, "/ok")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert get(path, "/ok")[0] == 200


def test_the_real_app_routes_every_handler() -> None:
    api = Api()
    for route in api.router.routes:
        assert route.handler.__module__.startswith("rootless.api.")
