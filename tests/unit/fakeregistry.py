"""A small in-process OCI registry on http.server, for the registry client's unit tests.

It speaks enough of the distribution API (manifests, blobs with ranges, uploads, tag lists
with Link pagination) and of Docker's token auth or Basic auth to test the client without
a network, and it can misbehave on demand: faults (a status for the next N requests to a
path), truncated blob bodies, ignored Range headers, redirects to a second server acting
as blob storage, wrong content, blob bodies held back until a gate opens. Every request is
recorded with its headers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ROUTE = re.compile(r"^/v2/(?P<repo>.+?)/(?P<kind>manifests|blobs|tags)/(?P<rest>.*)$")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    port: int  # the client's source port: the same for requests on a kept-alive connection


@dataclass
class Fault:
    match: str  # a substring of the request path
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    times: int = 1
    method: str | None = None  # any method when None


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients hang up on purpose
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class FakeRegistry:
    """Start with ``with FakeRegistry() as reg:``; ``reg.host`` is ``127.0.0.1:PORT``."""

    def __init__(
        self, auth: str | None = None, users: dict[str, str] | None = None, anonymous: bool = True
    ) -> None:
        self.auth = auth  # None, "bearer" or "basic"
        self.users = users or {}
        self.anonymous = anonymous  # bearer: issue tokens without credentials
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.tags: dict[str, list[str]] = {}
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.tokens: dict[str, str] = {}  # token -> scope
        self.truncate = 0  # blob GETs left to cut in half
        self.truncate_only = ""  # ...if their digest contains this
        self.ignore_range = False
        self.no_length = False  # blob bodies end when the connection closes
        self.redirect_to: str | None = None  # base URL blob GETs are redirected to
        self.wrong_digest_header = False
        self.page_size: int | None = None
        self.blob_bytes_sent = 0
        self.held: dict[str, threading.Event] = {}  # GETs of these blobs wait for the event
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.registry = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def __enter__(self) -> FakeRegistry:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- content -----------------------------------------------------------------------------

    def add_blob(self, data: bytes) -> str:
        digest = sha256(data)
        self.blobs[digest] = data
        return digest

    def add_manifest(self, repo: str, tag: str, data: bytes, media_type: str = OCI_MANIFEST) -> str:
        digest = sha256(data)
        self.manifests[(repo, tag)] = self.manifests[(repo, digest)] = (data, media_type)
        self.tags.setdefault(repo, []).append(tag)
        return digest

    def fail(self, match: str, status: int, times: int = 1, **kw: Any) -> None:
        self.faults.append(Fault(match, status, times=times, **kw))

    def seen(self, method: str, fragment: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and fragment in r.path]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    @property
    def reg(self) -> FakeRegistry:
        return self.server.registry  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.handle_any()

    def do_HEAD(self) -> None:
        self.handle_any()

    def do_POST(self) -> None:
        self.handle_any()

    def do_PUT(self) -> None:
        self.handle_any()

    # -- plumbing ----------------------------------------------------------------------------

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def request_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def handle_any(self) -> None:
        reg = self.reg
        path = urlsplit(self.path).path
        with reg.lock:
            reg.requests.append(
                Request(self.command, self.path, dict(self.headers.items()), self.client_address[1])
            )
            fault = next(
                (
                    f
                    for f in reg.faults
                    if f.match in path and f.times > 0 and f.method in (None, self.command)
                ),
                None,
            )
            if fault:
                fault.times -= 1
        if fault:
            self.request_body()
            return self.reply(fault.status, fault.body, fault.headers)
        if path == "/token":
            return self.token()
        if path.startswith("/storage/"):
            return self.blob(path.removeprefix("/storage/"))
        match = ROUTE.match(path)
        repo = match["repo"] if match else ""
        if not self.authorized(repo):
            return None
        if path == "/v2/":
            return self.reply(200, b"{}", {"Content-Type": "application/json"})
        if not match:
            return self.reply(404, error_body("NOT_FOUND", "no route"))
        kind, rest = match["kind"], match["rest"]
        if kind == "manifests":
            return self.manifest(repo, rest)
        if kind == "tags":
            return self.tag_list(repo)
        if rest.startswith("uploads"):
            return self.upload(repo, rest)
        return self.blob(rest)

    # -- auth --------------------------------------------------------------------------------

    def authorized(self, repo: str) -> bool:
        reg = self.reg
        given = self.headers.get("Authorization", "")
        push = self.command in ("POST", "PUT")
        if reg.auth == "basic":
            if self.basic_user(given):
                return True
            self.request_body()
            self.reply(
                401,
                error_body("UNAUTHORIZED", "authentication required"),
                {"WWW-Authenticate": 'Basic realm="fake"'},
            )
            return False
        if reg.auth == "bearer":
            scope = (
                reg.tokens.get(given.removeprefix("Bearer "))
                if given.startswith("Bearer ")
                else None
            )
            allowed = scope is not None and (not repo or f"repository:{repo}:" in scope)
            if allowed and (not push or "push" in (scope or "")):
                return True
            self.request_body()
            want = f"repository:{repo}:{'pull,push' if push else 'pull'}"
            challenge = f'Bearer realm="{reg.url}/token",service="fake"'
            if repo:
                challenge += f',scope="{want}"'
            self.reply(
                401,
                error_body("UNAUTHORIZED", "authentication required"),
                {"WWW-Authenticate": challenge},
            )
            return False
        return True

    def basic_user(self, given: str) -> str | None:
        if not given.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(given[6:]).decode().partition(":")
        return user if self.reg.users.get(user) == password else None

    def token(self) -> None:
        reg = self.reg
        given = self.headers.get("Authorization")
        if (given and not self.basic_user(given)) or (not given and not reg.anonymous):
            return self.reply(401, error_body("UNAUTHORIZED", "bad credentials"))
        query = parse_qs(urlsplit(self.path).query)
        token = uuid.uuid4().hex
        with reg.lock:
            reg.tokens[token] = " ".join(query.get("scope", [""]))
        key = "access_token" if len(reg.tokens) % 2 else "token"
        return self.reply(200, json.dumps({key: token, "expires_in": 300}).encode())

    # -- routes ------------------------------------------------------------------------------

    def manifest(self, repo: str, ref: str) -> None:
        reg = self.reg
        if self.command == "PUT":
            data = self.request_body()
            digest = reg.add_manifest(repo, ref, data, self.headers.get("Content-Type", ""))
            return self.reply(201, b"", {"Docker-Content-Digest": digest})
        found = reg.manifests.get((repo, ref))
        if not found:
            return self.reply(404, error_body("MANIFEST_UNKNOWN", "manifest unknown"))
        data, media_type = found
        digest = sha256(b"other") if reg.wrong_digest_header else sha256(data)
        return self.reply(200, data, {"Content-Type": media_type, "Docker-Content-Digest": digest})

    def blob(self, digest: str) -> None:
        reg = self.reg
        data = reg.blobs.get(digest)
        if data is None:
            return self.reply(404, error_body("BLOB_UNKNOWN", "blob unknown to registry"))
        if reg.redirect_to and self.command == "GET":
            return self.reply(307, b"", {"Location": f"{reg.redirect_to}/storage/{digest}"})
        if digest in reg.held and self.command == "GET":
            reg.held[digest].wait(30)
        status, start, headers = 200, 0, {"Content-Type": "application/octet-stream"}
        wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if wanted and not reg.ignore_range:
            status, start = 206, int(wanted[1])
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        with reg.lock:
            cut = self.command == "GET" and reg.truncate > 0 and reg.truncate_only in digest
            reg.truncate -= cut
        if reg.no_length and self.command == "GET":
            self.send_response(status)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
            return None
        if not cut:
            reg.blob_bytes_sent += len(body) if self.command == "GET" else 0
            return self.reply(status, body, headers)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        reg.blob_bytes_sent += len(body) // 2
        self.close_connection = True
        return None

    def upload(self, repo: str, rest: str) -> None:
        reg = self.reg
        if self.command == "POST":
            self.request_body()
            location = f"/v2/{repo}/blobs/uploads/{uuid.uuid4().hex}?_state=abc"
            return self.reply(202, b"", {"Location": location})
        data = self.request_body()
        query = parse_qs(urlsplit(self.path).query)
        digest = query["digest"][0]
        if sha256(data) != digest or query.get("_state") != ["abc"]:
            return self.reply(400, error_body("DIGEST_INVALID", "provided digest did not match"))
        reg.blobs[digest] = data
        return self.reply(201, b"", {"Docker-Content-Digest": digest})

    def tag_list(self, repo: str) -> None:
        reg = self.reg
        if repo not in reg.tags:
            return self.reply(404, error_body("NAME_UNKNOWN", "repository name not known"))
        tags = sorted(reg.tags[repo])
        query = parse_qs(urlsplit(self.path).query)
        last = query.get("last", [""])[0]
        tags = [t for t in tags if t > last]
        headers = {"Content-Type": "application/json"}
        if reg.page_size and len(tags) > reg.page_size:
            tags = tags[: reg.page_size]
            headers["Link"] = (
                f'</v2/{repo}/tags/list?n={reg.page_size}&last={tags[-1]}>; rel="next"'
            )
        body = json.dumps({"name": repo, "tags": tags}).encode()
        return self.reply(200, body, headers)
