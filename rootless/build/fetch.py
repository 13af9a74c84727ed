"""ADD of a URL: the file downloaded, bounded, and checked.

A Dockerfile (and so the URL) is untrusted, and so is the server: only ``http`` and
``https`` are fetched (https verified against the system's CA store), at most
:data:`MAX_REDIRECTS` redirects are followed and only to http(s), the body is at most
``max_bytes`` (a larger ``Content-Length`` is refused before reading) and the whole
download must end within ``deadline`` seconds, each read within ``timeout``. The file is
written as it arrives and hashed on the way; ``--checksum=sha256:HEX`` must match it.

As docker does, the file's name is the URL path's last component, its time the
``Last-Modified`` header's (the epoch when there is none, so that the layer does not change
with the clock), and it is never extracted.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import re
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from rctlbase.errors import ExternalError, UsageError

MAX_BYTES = 8 << 30
TIMEOUT = 30.0
DEADLINE = 1800.0
MAX_REDIRECTS = 5
CHUNK = 1 << 20
_CHECKSUM = re.compile(r"sha256:[0-9a-f]{64}")


class DownloadError(ExternalError):
    """ADD could not download a URL (the server, the network, the limits)."""

    default_hint = "check the URL, or download the file into the context and COPY it"


@dataclass(frozen=True, slots=True)
class Download:
    """A downloaded file: where it is, its size and sha256, its time and base name."""

    path: Path
    size: int
    digest: str  # sha256:HEX
    mtime: int
    name: str


def is_url(source: str) -> bool:
    """Whether an ADD source is a URL (docker's test: a scheme it fetches)."""
    return source.startswith(("http://", "https://"))


def check_checksum(value: str) -> str:
    """``--checksum=sha256:HEX``, lower case."""
    if not _CHECKSUM.fullmatch(value.lower()):
        raise UsageError(
            f"--checksum={value}: not a sha256 digest",
            hint="write the checksum as sha256: followed by 64 hex digits",
        )
    return value.lower()


def url_name(url: str) -> str:
    """The file name a URL gives: its path's last component."""
    name = unquote(urlsplit(url).path.rstrip("/").rpartition("/")[2])
    if not name or name in (".", "..") or "\0" in name:
        raise UsageError(
            f"ADD {url}: the URL names no file",
            hint="give the destination's file name: ADD URL /path/name",
        )
    return name


def _connect(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DownloadError(f"ADD {url}: only http and https URLs are fetched")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    port = parts.port
    if parts.scheme == "https":
        return (
            http.client.HTTPSConnection(
                parts.hostname, port, timeout=timeout, context=ssl.create_default_context()
            ),
            path,
        )
    return http.client.HTTPConnection(parts.hostname, port, timeout=timeout), path


def _last_modified(value: str | None) -> int:
    if not value:
        return 0
    try:
        return max(0, int(email.utils.parsedate_to_datetime(value).timestamp()))
    except (TypeError, ValueError, OverflowError):
        return 0


def download(
    url: str,
    into: Path,
    *,
    checksum: str | None = None,
    max_bytes: int = MAX_BYTES,
    timeout: float = TIMEOUT,
    deadline: float = DEADLINE,
) -> Download:
    """Fetch ``url`` into the new file ``into``; raises :class:`DownloadError`."""
    name = url_name(url)
    end = time.monotonic() + deadline
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        conn, path = _connect(current, timeout)
        try:
            try:
                conn.request("GET", path, headers={"User-Agent": "rctl", "Accept": "*/*"})
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise DownloadError(f"ADD {url}: {exc}") from exc
            if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
                current = urljoin(current, resp.getheader("Location") or "")
                continue
            if resp.status != 200:
                raise DownloadError(f"ADD {url}: the server answered {resp.status} {resp.reason}")
            length = resp.getheader("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise DownloadError(
                    f"ADD {url}: {int(length)} bytes is more than rctl downloads "
                    f"({max_bytes} bytes)"
                )
            size, digest = _save(resp, into, url, max_bytes, end)
            mtime = _last_modified(resp.getheader("Last-Modified"))
        finally:
            conn.close()
        if checksum is not None and digest != checksum:
            into.unlink(missing_ok=True)
            raise DownloadError(
                f"ADD {url}: the content's digest is {digest}, not {checksum}",
                hint="the file changed on the server: check it and update the ADD's checksum",
            )
        return Download(into, size, digest, mtime, name)
    raise DownloadError(f"ADD {url}: more than {MAX_REDIRECTS} redirects")


def _save(
    resp: http.client.HTTPResponse, into: Path, url: str, max_bytes: int, end: float
) -> tuple[int, str]:
    sha = hashlib.sha256()
    size = 0
    with open(into, "xb") as out:
        while True:
            if time.monotonic() > end:
                raise DownloadError(f"ADD {url}: the download took too long")
            try:
                data = resp.read1(CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise DownloadError(f"ADD {url}: {exc}") from exc
            if not data:
                break
            size += len(data)
            if size > max_bytes:
                raise DownloadError(
                    f"ADD {url}: the body is more than rctl downloads ({max_bytes} bytes)"
                )
            sha.update(data)
            out.write(data)
    return size, "sha256:" + sha.hexdigest()
