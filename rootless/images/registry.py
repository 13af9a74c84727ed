"""A client of one OCI Distribution v2 registry: manifests, blobs, tags and push.

It uses the standard library's ``http.client``, ``ssl`` and ``urllib.parse`` on purpose:
a blocking client is all rctl needs (the engine downloads layers in a thread pool, each
thread keeping its own keep-alive connection per host), and it keeps the dependency list
short. Reference: the OCI distribution spec (``spec.md``: pulling, pushing, content
discovery, error codes) and Docker's token authentication (see :mod:`.auth`).

Transport (Docker's rule, which podman's ``--tls-verify=false`` follows): a registry is
*insecure* when the caller says so (``tls_verify=False``), when it is in the configured
insecure list, or, unless ``tls_verify=True``, when it is a loopback address (127.0.0.0/8,
``::1``, ``localhost``), as dockerd assumes by default. A secure registry is spoken to over
https verified against the system CA store, nothing else. An insecure one is tried over
https without certificate checks first and over plain http when the TLS handshake fails
(the server speaks plain http); the outcome is probed once per client.

Authentication: requests go out anonymously (or with Basic once the registry asked for
it); a 401 with a ``Bearer`` challenge makes the client fetch a token from the realm (with
the user's credentials, if any), cache it per scope and retry the request once. Refused
credentials raise :class:`AuthenticationError` with the hint ``rctl login REGISTRY``.

Errors: connection failures, timeouts, 429 and 502/503/504 are retried with exponential
backoff (honouring ``Retry-After`` up to a cap); other failures become
:class:`~rctlbase.errors.NotFoundError`, :class:`AuthenticationError` or
:class:`~rctlbase.errors.ExternalError` carrying the registry's own error message.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import BinaryIO, NamedTuple
from urllib.parse import urlencode, urljoin, urlsplit

from rctlbase.errors import ExternalError, NotFoundError, RctlError, UsageError
from rootless.images.auth import (
    DOCKER_HUB,
    AuthenticationError,
    Credentials,
    RegistryAuth,
    parse_challenge,
)

__all__ = ["AuthenticationError", "DigestMismatchError", "RegistryClient", "TruncatedBlobError"]

log = logging.getLogger("rctl.images.registry")

_REGISTRY_HINT = "the registry misbehaves: try again later, or run with --debug to see its answers"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_MEDIA_TYPES = (
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
    MEDIA_DOCKER_LIST,
    MEDIA_DOCKER_MANIFEST,
)

DOCKER_HUB_API = "registry-1.docker.io"
USER_AGENT = "rctl/0.1"
CHUNK = 256 * 1024
MAX_MANIFEST = 4 * 1024 * 1024  # containers/image's limit too
MAX_JSON = 16 * 1024 * 1024
MAX_REDIRECTS = 5
MAX_TAG_PAGES = 1000
DRAIN_LIMIT = 64 * 1024  # an unread body larger than this costs the connection instead
RETRY_STATUSES = frozenset({429, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
NOT_FOUND_CODES = frozenset({"NAME_UNKNOWN", "MANIFEST_UNKNOWN", "BLOB_UNKNOWN"})
AUTH_CODES = frozenset({"UNAUTHORIZED", "DENIED"})
DIGEST_HEADER = "Docker-Content-Digest"
_HINT_NAME = "check the registry name and your network connection"

# Distribution spec "Pulling manifests": the name, tag and digest grammars.
_NAME = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128}")
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;[^,]*\brel="?next"?')


class DigestMismatchError(ExternalError):
    """Content from the registry does not match its digest or its announced size."""

    default_hint = "the registry or a proxy served altered content; pull again"


class TruncatedBlobError(ExternalError):
    """A blob's download ended early; ``received`` bytes of it were written."""

    def __init__(self, message: str, *, hint: str | None = None, received: int = 0) -> None:
        super().__init__(message, hint=hint)
        self.received = received


class ManifestResponse(NamedTuple):
    """A manifest's bytes as served, its media type and its (verified) digest."""

    data: bytes
    media_type: str
    digest: str


class ManifestHead(NamedTuple):
    """What ``HEAD`` says of a manifest; ``digest`` is None if the registry doesn't say."""

    media_type: str
    digest: str | None
    size: int | None


def is_loopback(registry: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``, with or without a port."""
    host = urlsplit(f"//{registry}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def registry_is_insecure(registry: str, insecure_registries: Collection[str] = ()) -> bool:
    """Whether ``registry`` may be used without verified TLS (see the module docstring)."""
    return registry in insecure_registries or is_loopback(registry)


def check_digest(digest: str) -> str:
    """The hash algorithm of a sha256/sha384/sha512 digest; UsageError if malformed."""
    if not _DIGEST.fullmatch(digest):
        raise UsageError(f"invalid digest {digest!r}", hint="digests look like sha256:<64 hex>")
    return digest.partition(":")[0]


def check_repository(repository: str) -> None:
    """UsageError unless ``repository`` is a valid distribution-spec name."""
    if not _NAME.fullmatch(repository) or len(repository) > 255:
        raise UsageError(
            f"invalid repository name {repository!r}",
            hint="names are lower-case path components like library/alpine",
        )


def image_name(registry: str, repository: str, reference: str) -> str:
    """``registry/repository:tag`` or ``registry/repository@digest`` for messages."""
    sep = "@" if ":" in reference else ":"
    return f"{registry}/{repository}{sep}{reference}"


def parse_errors(body: bytes) -> list[tuple[str, str]]:
    """(code, message) pairs of a registry's ``{"errors": [...]}`` body; [] if it isn't one."""
    try:
        errors = json.loads(body)["errors"]
        return [(str(e.get("code", "")), str(e.get("message", ""))) for e in errors]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return []


def header_int(value: str | None) -> int | None:
    """A header's non-negative decimal integer (Content-Length), None if absent or not one
    (``str.isdigit`` also takes digits like "²" that ``int`` refuses)."""
    if value is None or not value.isascii() or not value.isdigit():
        return None
    return int(value)


def parse_next_link(header: str | None) -> str | None:
    """The target of a ``Link: <url>; rel="next"`` header (RFC 8288), or None."""
    match = _LINK_NEXT.search(header or "")
    return match.group(1) if match else None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds of a ``Retry-After`` header; None when absent or an HTTP date (not used)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _is_transient(exc: BaseException) -> bool:
    """Connection refused/reset/aborted and timeouts are worth another try; TLS is not."""
    return isinstance(exc, ConnectionError | TimeoutError | http.client.IncompleteRead)


class _Reply:
    """A response together with its connection, so that an unread body can cost the latter."""

    def __init__(self, resp: http.client.HTTPResponse, conn: http.client.HTTPConnection) -> None:
        self.resp = resp
        self.conn = conn
        self.status = resp.status

    def header(self, name: str) -> str | None:
        return self.resp.getheader(name)

    def read(self, size: int) -> bytes:
        try:
            return self.resp.read(size)
        except BaseException:
            self.abort()
            raise

    def read_body(self, limit: int, what: str) -> bytes:
        """The whole body, or ExternalError past ``limit`` bytes or if it ends early."""
        parts, total = [], 0
        while chunk := self.read(min(CHUNK, limit + 1 - total)):
            parts.append(chunk)
            total += len(chunk)
            if total > limit:
                self.abort()
                raise ExternalError(f"{what} is larger than {limit} bytes", hint=_REGISTRY_HINT)
        length = self.header("Content-Length")
        if (declared := header_int(length)) is not None and declared != total:
            self.abort()
            raise ExternalError(
                f"{what} ended after {total} of {length} bytes", hint=_REGISTRY_HINT
            )
        return b"".join(parts)

    def discard(self) -> None:
        """Finish with the response, keeping the connection if its rest is small."""
        if self.resp.isclosed():
            return
        if self.resp.length is not None and self.resp.length <= DRAIN_LIMIT:
            try:
                self.resp.read()
                return
            except (OSError, http.client.HTTPException):
                pass
        self.abort()

    def abort(self) -> None:
        self.resp.close()
        self.conn.close()


class _Upload:
    """Exactly ``size`` bytes of ``src`` from its current position, rewindable for retries."""

    def __init__(self, src: BinaryIO, size: int) -> None:
        self.src, self.size = src, size
        self.start = src.tell()
        self.left = size

    def rewind(self) -> None:
        self.src.seek(self.start)
        self.left = self.size

    def read(self, n: int = -1) -> bytes:
        want = self.left if n < 0 else min(n, self.left)
        data = self.src.read(want) if want else b""
        if want and not data:
            raise UsageError(
                f"blob source ended {self.left} bytes before its size {self.size}",
                hint="the file changed or was cut short while rctl read it; try again",
            )
        self.left -= len(data)
        return data


Body = bytes | _Upload | None


class _BlobSink:
    """Where a blob's bytes go: the file, their hash, their count and the progress callback."""

    def __init__(
        self,
        name: str,
        digest: str,
        size: int,
        dest: BinaryIO,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.name, self.digest, self.size, self.dest = name, digest, size, dest
        self.algorithm = check_digest(digest)
        self.progress = progress or (lambda _done: None)
        self.hasher = hashlib.new(self.algorithm)
        self.done = 0

    def keep_prefix(self, offset: int) -> None:
        """Take the first ``offset`` bytes already in ``dest`` (a resumed download)."""
        if not self.dest.readable():  # e.g. opened "ab": the prefix can't be hashed
            log.debug("%s: destination not readable, not resuming", self.name)
            self.reset()
            return
        self.dest.seek(0)
        keep = min(offset, self.size)
        while self.done < keep and (chunk := self.dest.read(min(CHUNK, keep - self.done))):
            self.hasher.update(chunk)
            self.done += len(chunk)
        self.dest.seek(self.done)
        self.dest.truncate()

    def reset(self) -> None:
        self.hasher, self.done = hashlib.new(self.algorithm), 0
        self.dest.seek(0)
        self.dest.truncate()

    def receive(self, reply: _Reply) -> None:
        """Copy a reply's body, checking the size; stops quietly where the body ends."""
        length = reply.header("Content-Length")
        if (declared := header_int(length)) is not None and declared != self.size - self.done:
            reply.abort()
            total = declared + self.done
            raise DigestMismatchError(f"blob {self.name} is {total} bytes, not {self.size}")
        self.progress(self.done)
        while chunk := reply.read(min(CHUNK, self.size - self.done + 1)):
            self.done += len(chunk)
            if self.done > self.size:
                reply.abort()
                raise DigestMismatchError(f"blob {self.name} is larger than {self.size} bytes")
            self.hasher.update(chunk)
            self.dest.write(chunk)
            self.progress(self.done)

    def verify(self) -> None:
        if self.hasher.hexdigest() != self.digest.partition(":")[2]:
            raise DigestMismatchError(
                f"blob {self.name} does not match its digest",
                hint="the registry or a proxy served altered content; pull again",
            )


class RegistryClient:
    """One registry host's client. Thread-safe: each thread keeps its own connections.

    ``registry`` is ``host[:port]`` as in image references (``docker.io`` means Docker
    Hub). ``sleep`` is injectable so that tests can see the backoff without waiting.
    """

    def __init__(
        self,
        registry: str,
        *,
        credentials: Credentials | None = None,
        tls_verify: bool | None = None,
        insecure_registries: Collection[str] = (),
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.2,
        max_retry_after: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.registry = registry
        if tls_verify is None:
            self.insecure = registry_is_insecure(registry, insecure_registries)
        else:
            self.insecure = not tls_verify
        self.auth = RegistryAuth(registry, credentials, insecure=self.insecure)
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._netloc = DOCKER_HUB_API if registry == DOCKER_HUB else registry
        self._scheme: str | None = None if self.insecure else "https"
        # Made on first HTTPS use: loading the system's CA certificates costs some 30 ms,
        # which a plain-HTTP registry (loopback, insecure) never needs.
        self._tls: dict[bool, ssl.SSLContext] = {}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: set[http.client.HTTPConnection] = set()

    def __enter__(self) -> RegistryClient:
        return self

    def _tls_context(self, unverified: bool) -> ssl.SSLContext:
        """The TLS context of HTTPS connections: verifying certificates and host names, or
        (an insecure registry's own host) neither, and then without loading the CAs."""
        with self._lock:
            context = self._tls.get(unverified)
            if context is None:
                if unverified:
                    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                else:
                    context = ssl.create_default_context()
                self._tls[unverified] = context
            return context

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every thread's connections (call when no request is running)."""
        with self._lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            conn.close()

    def check_login(self) -> None:
        """Prove the credentials work (``rctl login``): ``GET /v2/`` answering its challenge.

        Like ``docker login``, a registry that lets anonymous users in is a success.
        """
        reply = self._exchange("GET", "/v2/", scope="")
        if reply.status != 200:
            raise self._error(reply, "registry", self.registry)
        reply.discard()

    # -- pulling ---------------------------------------------------------------------------

    def get_manifest(
        self, repository: str, reference: str, accept: Sequence[str] = MANIFEST_MEDIA_TYPES
    ) -> ManifestResponse:
        """Fetch a manifest or index by tag or digest, with its digest verified.

        By digest, the body must hash to it. By tag, the digest is the sha256 of the body
        and must equal the registry's ``Docker-Content-Digest`` when it sends one.
        """
        name = self._check(repository, reference)
        accepted = {"Accept": ", ".join(accept)}
        reply = self._repo_request("GET", repository, f"manifests/{reference}", headers=accepted)
        if reply.status != 200:
            raise self._error(reply, "image", name)
        data = reply.read_body(MAX_MANIFEST, f"manifest of {name}")
        claimed = reference if ":" in reference else None
        header = reply.header(DIGEST_HEADER)
        claimed = claimed or (header if header and _DIGEST.fullmatch(header) else None)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if claimed:
            algorithm, _, expected = claimed.partition(":")
            if hashlib.new(algorithm, data).hexdigest() != expected:
                raise DigestMismatchError(
                    f"manifest of {name} does not match digest {claimed}",
                    hint="the registry or a proxy served altered content; try again",
                )
            digest = claimed
        media_type = (reply.header("Content-Type") or "").partition(";")[0].strip()
        if not media_type or media_type in ("application/json", "text/plain"):
            media_type = _media_type_field(data) or media_type
        return ManifestResponse(data, media_type, digest)

    def head_manifest(
        self, repository: str, reference: str, accept: Sequence[str] = MANIFEST_MEDIA_TYPES
    ) -> ManifestHead:
        """A manifest's media type, digest and size without its body (e.g. is a tag new?)."""
        name = self._check(repository, reference)
        accepted = {"Accept": ", ".join(accept)}
        reply = self._repo_request("HEAD", repository, f"manifests/{reference}", headers=accepted)
        reply.discard()
        if reply.status != 200:
            raise self._error(reply, "image", name)
        length = reply.header("Content-Length")
        return ManifestHead(
            media_type=(reply.header("Content-Type") or "").partition(";")[0].strip(),
            digest=reply.header(DIGEST_HEADER),
            size=header_int(length),
        )

    def fetch_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        dest: BinaryIO,
        *,
        offset: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Stream a blob into ``dest`` (bytes 0..size), hashing and counting as it arrives.

        Redirects to blob storage are followed without our Authorization header. With
        ``offset`` > 0, ``dest`` (opened ``r+b`` or ``a+b``; else no resume) already holds
        that many bytes: they are hashed from it and the rest asked for with ``Range``; 200
        instead of 206 makes the download start over. A connection that breaks mid-body is
        resumed the same way, up to ``retries`` times. ``progress`` gets the byte count
        written so far. On :class:`DigestMismatchError` the content of ``dest`` is garbage
        and must be discarded; on :class:`TruncatedBlobError` it holds ``received`` bytes
        a later call may resume from.
        """
        check_repository(repository)
        sink = _BlobSink(f"{self.registry}/{repository}@{digest}", digest, size, dest, progress)
        if offset > 0:
            sink.keep_prefix(offset)
        attempt = 0
        while True:
            range_header = {"Range": f"bytes={sink.done}-"} if sink.done else {}
            reply = self._repo_request("GET", repository, f"blobs/{digest}", headers=range_header)
            if reply.status not in (200, 206):
                raise self._error(reply, "blob", sink.name)
            if reply.status == 200 and sink.done:  # Range ignored: start over
                log.debug("%s: no range support, downloading %s again", self.registry, digest)
                sink.reset()
            elif reply.status == 206 and not (reply.header("Content-Range") or "").startswith(
                f"bytes {sink.done}-"
            ):
                reply.abort()
                raise ExternalError(
                    f"{self.registry} answered a range request wrongly", hint=_REGISTRY_HINT
                )
            try:
                sink.receive(reply)
            except (OSError, http.client.HTTPException) as exc:
                if not _is_transient(exc):
                    raise self._unreachable(exc) from exc
                log.debug("%s: %s broke at byte %d: %s", self.registry, digest, sink.done, exc)
            if sink.done == size:
                break
            reply.abort()
            if attempt >= self.retries:
                raise TruncatedBlobError(
                    f"download of {sink.name} stopped after {sink.done} of {size} bytes",
                    hint="check the network and pull again; the download resumes",
                    received=sink.done,
                )
            self._sleep(self.backoff * 2**attempt)
            attempt += 1
        sink.verify()

    def list_tags(self, repository: str) -> list[str]:
        """All tags of ``repository``, following ``Link: rel="next"`` pagination."""
        check_repository(repository)
        url, tags = f"/v2/{repository}/tags/list", []
        for _ in range(MAX_TAG_PAGES):
            reply = self._exchange("GET", url, scope=f"repository:{repository}:pull")
            if reply.status != 200:
                raise self._error(reply, "repository", f"{self.registry}/{repository}")
            body = reply.read_body(MAX_JSON, f"tag list of {self.registry}/{repository}")
            try:
                page = json.loads(body).get("tags") or []
            except (ValueError, AttributeError, RecursionError) as exc:
                raise ExternalError(
                    f"{self.registry} sent an unreadable tag list", hint=_REGISTRY_HINT
                ) from exc
            if not isinstance(page, list):
                raise ExternalError(
                    f"{self.registry} sent a tag list whose 'tags' is no list", hint=_REGISTRY_HINT
                )
            tags += [str(tag) for tag in page]
            link = parse_next_link(reply.header("Link"))
            if not link:
                return tags
            url = link
        raise ExternalError(
            f"{self.registry}: more than {MAX_TAG_PAGES} pages of tags", hint=_REGISTRY_HINT
        )

    # -- pushing ---------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        """Whether the repository has the blob already (so a push can skip it)."""
        check_digest(digest)
        check_repository(repository)
        reply = self._repo_request("HEAD", repository, f"blobs/{digest}", push=True)
        reply.discard()
        if reply.status == 404:
            return False
        if reply.status != 200:
            raise self._error(reply, "blob", f"{self.registry}/{repository}@{digest}")
        return True

    def upload_blob(self, repository: str, digest: str, size: int, src: BinaryIO) -> None:
        """Upload ``size`` bytes of ``src`` as blob ``digest``: POST, then one monolithic PUT.

        Cross-repository mounting is not attempted. The registry checks the digest.
        """
        check_digest(digest)
        check_repository(repository)
        scope, name = f"repository:{repository}:pull,push", f"{self.registry}/{repository}"
        reply = self._exchange("POST", f"/v2/{repository}/blobs/uploads/", scope=scope, body=b"")
        location = reply.header("Location")
        if reply.status != 202 or not location:
            raise self._error(reply, "repository", name)
        reply.discard()
        url = urljoin(self._absolute(f"/v2/{repository}/blobs/uploads/"), location)
        url += ("&" if "?" in url else "?") + urlencode({"digest": digest})
        reply = self._exchange(
            "PUT",
            url,
            scope=scope,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            body=_Upload(src, size),
        )
        if reply.status not in (201, 204):
            raise self._error(reply, "repository", name)
        reply.discard()

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        """Store a manifest under a tag or its digest; return its digest."""
        name = self._check(repository, reference)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if ":" in reference and reference != digest:
            raise DigestMismatchError(f"manifest for {name} has digest {digest}")
        headers = {"Content-Type": media_type}
        reply = self._repo_request(
            "PUT", repository, f"manifests/{reference}", push=True, headers=headers, body=data
        )
        if reply.status not in (200, 201):
            raise self._error(reply, "image", name)
        claimed = reply.header(DIGEST_HEADER)
        reply.discard()
        if claimed and claimed.startswith("sha256:") and claimed != digest:
            raise DigestMismatchError(f"{self.registry} stored {name} as {claimed}, not {digest}")
        return digest

    # -- requests --------------------------------------------------------------------------

    def _repo_request(
        self,
        method: str,
        repository: str,
        path: str,
        *,
        push: bool = False,
        headers: dict[str, str] | None = None,
        body: Body = None,
    ) -> _Reply:
        """A request under ``/v2/REPOSITORY/`` with the pull (or pull,push) scope."""
        scope = f"repository:{repository}:{'pull,push' if push else 'pull'}"
        url = f"/v2/{repository}/{path}"
        return self._exchange(method, url, scope=scope, headers=headers, body=body)

    def _check(self, repository: str, reference: str) -> str:
        check_repository(repository)
        if ":" in reference:
            check_digest(reference)
        elif not _TAG.fullmatch(reference):
            raise UsageError(
                f"invalid tag {reference!r}", hint="tags are up to 128 of [A-Za-z0-9_.-]"
            )
        return image_name(self.registry, repository, reference)

    def _registry_scheme(self) -> str:
        """https, or http for an insecure registry that fails a TLS handshake (probed once)."""
        if self._scheme is None:
            host, port = _host_port(self._netloc, 443)
            with socket.create_connection((host, port), timeout=self.timeout) as sock:
                try:
                    self._tls_context(True).wrap_socket(sock, server_hostname=host).close()
                    self._scheme = "https"
                except (ssl.SSLError, ConnectionResetError) as exc:
                    log.debug("%s: no TLS (%s), using plain http", self.registry, exc)
                    self._scheme = "http"
        return self._scheme

    def _absolute(self, url: str) -> str:
        return f"{self._registry_scheme()}://{self._netloc}{url}" if url.startswith("/") else url

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        """This thread's keep-alive connection to ``scheme://netloc``."""
        pool: dict[tuple[str, str], http.client.HTTPConnection] | None
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        conn = pool.get((scheme, netloc))
        if conn is None:
            if scheme == "https":
                insecure = self.insecure and netloc == self._netloc
                context = self._tls_context(insecure)
                conn = http.client.HTTPSConnection(netloc, timeout=self.timeout, context=context)
            else:
                conn = http.client.HTTPConnection(netloc, timeout=self.timeout)
            pool[(scheme, netloc)] = conn
            with self._lock:
                self._connections.add(conn)
        return conn

    def _roundtrip(self, method: str, url: str, headers: dict[str, str], body: Body) -> _Reply:
        """One request; a kept-alive connection the server dropped is redialled once."""
        parts = urlsplit(self._absolute(url))
        if parts.scheme not in ("http", "https"):
            raise ExternalError(
                f"{self.registry} sent an unusable URL {url!r}", hint=_REGISTRY_HINT
            )
        conn = self._connection(parts.scheme, parts.netloc)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        for redial in (conn.sock is not None, False):
            if isinstance(body, _Upload):
                body.rewind()
            try:
                conn.request(method, target, body=body, headers=headers)
                return _Reply(conn.getresponse(), conn)
            except (ConnectionResetError, BrokenPipeError):
                conn.close()
                if not redial:
                    raise
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(
        self, method: str, url: str, headers: dict[str, str], body: Body, scope: str | None
    ) -> _Reply:
        """A request with our Authorization for the registry host only, following redirects.

        A redirect to another host (blob storage, a CDN) loses every Authorization header,
        the caller's included: presigned URLs carry their own.
        """
        origin = urlsplit(self._absolute(url)).netloc
        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(headers)
            if urlsplit(self._absolute(url)).netloc != origin:
                sent.pop("Authorization", None)
            if scope is not None and (url.startswith("/") or urlsplit(url).netloc == self._netloc):
                authorization = self.auth.authorization(scope)
                if authorization:
                    sent["Authorization"] = authorization
            reply = self._roundtrip(method, url, sent, body)
            location = reply.header("Location")
            if method not in ("GET", "HEAD") or reply.status not in REDIRECT_STATUSES:
                return reply
            if not location:
                return reply
            reply.discard()
            url = urljoin(self._absolute(url), location)
            log.debug("%s: redirected to %s", self.registry, urlsplit(url).netloc)
        raise ExternalError(
            f"{self.registry}: more than {MAX_REDIRECTS} redirects", hint=_REGISTRY_HINT
        )

    def _exchange(
        self,
        method: str,
        url: str,
        *,
        scope: str | None,
        headers: dict[str, str] | None = None,
        body: Body = None,
    ) -> _Reply:
        """A request with retries of transient failures and one authentication round.

        ``scope`` None means "no registry auth" (the token request itself). The reply's
        status is the caller's to check.
        """
        base = {"User-Agent": USER_AGENT, **(headers or {})}
        attempt, authenticated = 0, False
        while True:
            try:
                reply = self._send(method, url, base, body, scope)
            except (OSError, http.client.HTTPException) as exc:
                if not _is_transient(exc) or attempt >= self.retries:
                    raise self._unreachable(exc) from exc
                log.debug("%s: %s %s: %s, retrying", self.registry, method, url, exc)
                self._sleep(self.backoff * 2**attempt)
                attempt += 1
                continue
            if reply.status == 401 and scope is not None and not authenticated:
                authenticated = True
                challenge = parse_challenge(reply.header("WWW-Authenticate") or "")
                if challenge is None or not self.auth.can_answer(challenge):
                    return reply  # the caller's error names the image
                reply.discard()
                if challenge.scheme == "basic":
                    self.auth.answer_basic()
                    continue
                token_url, token_headers = self.auth.token_request(challenge, scope)
                self._fetch_token(token_url, token_headers, scope)
                continue
            if reply.status in RETRY_STATUSES and attempt < self.retries:
                delay = parse_retry_after(reply.header("Retry-After"))
                delay = self.backoff * 2**attempt if delay is None else delay
                reply.discard()
                log.debug("%s: %s %s: %d, retrying", self.registry, method, url, reply.status)
                self._sleep(min(delay, self.max_retry_after))
                attempt += 1
                continue
            return reply

    def _fetch_token(self, url: str, headers: dict[str, str], scope: str) -> None:
        server = urlsplit(url).netloc
        reply = self._exchange("GET", url, scope=None, headers=headers)
        if reply.status in (401, 403):
            reply.discard()
            raise self.auth.error(self.registry, f"token server {server} refused")
        if reply.status != 200:
            raise self._error(reply, "token server", server)
        self.auth.store_token(scope, reply.read_body(MAX_JSON, f"token from {server}"), server)

    # -- errors ----------------------------------------------------------------------------

    def _error(self, reply: _Reply, kind: str, name: str) -> RctlError:
        """The error for a failed reply, from its status and the registry's error JSON."""
        try:
            body = b"" if reply.resp.isclosed() else reply.read_body(DRAIN_LIMIT, "error")
        except (RctlError, OSError, http.client.HTTPException):
            body = b""
        details = parse_errors(body)
        codes = {code for code, _ in details}
        message = "; ".join(m or c for c, m in details) or f"{reply.status} {reply.resp.reason}"
        if reply.status == 404 or codes & NOT_FOUND_CODES:
            hint = "check the name and tag"
            if kind in ("image", "repository"):
                hint += f", or log in with `rctl login {self.registry}` if it is private"
            return NotFoundError(f"{kind} not found: {name}", hint=hint)
        if reply.status in (401, 403) or codes & AUTH_CODES:
            return self.auth.error(name, message)
        return ExternalError(f"{kind} {name}: {message}", hint=_REGISTRY_HINT)

    def _unreachable(self, exc: BaseException) -> ExternalError:
        """A connection-level failure, named after the registry, with what to check."""
        where = f"registry {self.registry}"
        if isinstance(exc, socket.gaierror):
            message, hint = f"cannot resolve {where}: {exc.strerror}", _HINT_NAME
        elif isinstance(exc, ConnectionRefusedError):
            message = f"cannot connect to {where}: connection refused"
            hint = "check the registry name and port, and that the registry is running"
        elif isinstance(exc, TimeoutError):
            message, hint = f"{where} did not answer within {self.timeout:g}s", _HINT_NAME
        elif isinstance(exc, ssl.SSLCertVerificationError):
            message = f"TLS certificate of {where} is not trusted: {exc.verify_message}"
            hint = "install its CA certificate, or use --tls-verify=false if you trust it"
        elif isinstance(exc, ssl.SSLError):
            message = f"TLS with {where} failed: {exc.reason or exc}"
            hint = "if the registry serves plain http, use --tls-verify=false"
        else:
            message = f"connection to {where} failed: {exc}"
            hint = f"{_HINT_NAME}, or use --tls-verify=false for an http registry"
        return ExternalError(message, hint=hint)


def _host_port(netloc: str, default: int) -> tuple[str, int]:
    parts = urlsplit(f"//{netloc}")
    return parts.hostname or netloc, parts.port or default


def _media_type_field(data: bytes) -> str:
    """A manifest's own ``mediaType`` field, for registries that send no Content-Type."""
    try:
        value = json.loads(data).get("mediaType", "")
    except (ValueError, AttributeError, RecursionError):
        return ""
    return value if isinstance(value, str) else ""
