"""The registry client against an in-process fake registry (tests/unit/fakeregistry.py).

Hermetic: everything runs on 127.0.0.1 in this process, and ``sleep`` is replaced by a
recorder so the backoff is checked without waiting. The real registry is exercised by
tests/integration/test_registry_client.py.
"""

from __future__ import annotations

import io
import json
import os
import socket
import ssl
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fakeregistry import FakeRegistry, error_body, sha256

from rctlbase.errors import ExternalError, NotFoundError, UsageError
from rootless.images.auth import Credentials
from rootless.images.registry import (
    AuthenticationError,
    DigestMismatchError,
    RegistryClient,
    TruncatedBlobError,
    header_int,
    is_loopback,
    parse_errors,
    parse_next_link,
    parse_retry_after,
    registry_is_insecure,
)

MANIFEST = json.dumps(
    {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}
)
BLOB = os.urandom(700_000)  # more than two of the client's 256 KiB chunks


@pytest.fixture
def reg() -> Iterator[FakeRegistry]:
    with FakeRegistry() as fake:
        fake.add_manifest("test/app", "latest", MANIFEST.encode())
        fake.add_blob(BLOB)
        yield fake


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(reg: FakeRegistry, **kw: object) -> tuple[RegistryClient, Sleeps]:
    sleeps = Sleeps()
    return RegistryClient(reg.host, sleep=sleeps, timeout=10, **kw), sleeps  # type: ignore[arg-type]


# -- manifests -------------------------------------------------------------------------------


def test_manifest_by_tag_has_type_and_sha256_digest(reg: FakeRegistry) -> None:
    c, _ = client(reg)
    got = c.get_manifest("test/app", "latest")
    assert got.data == MANIFEST.encode()
    assert got.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert got.digest == sha256(MANIFEST.encode())
    accept = reg.requests[0].headers["Accept"]
    assert "application/vnd.docker.distribution.manifest.v2+json" in accept


def test_manifest_by_digest_is_verified(reg: FakeRegistry) -> None:
    c, _ = client(reg)
    digest = sha256(MANIFEST.encode())
    assert c.get_manifest("test/app", digest).digest == digest
    reg.manifests[("test/app", digest)] = (b'{"evil": 1}', "application/json")
    with pytest.raises(DigestMismatchError, match="does not match digest"):
        c.get_manifest("test/app", digest)


def test_manifest_digest_header_must_match_body(reg: FakeRegistry) -> None:
    reg.wrong_digest_header = True
    c, _ = client(reg)
    with pytest.raises(DigestMismatchError):
        c.get_manifest("test/app", "latest")


def test_a_plain_http_registry_loads_no_certificates(
    reg: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The system's CA certificates cost every pull some 30 ms each time they load: only
    an HTTPS connection that verifies them loads them."""
    loads: list[object] = []
    real = ssl.create_default_context

    def counted(*args: Any) -> ssl.SSLContext:
        loads.append(args)
        return real(*args)

    monkeypatch.setattr(ssl, "create_default_context", counted)
    c, _ = client(reg)  # loopback: plain HTTP after a TLS probe that verifies nothing
    assert c.get_manifest("test/app", "latest").data == MANIFEST.encode()
    assert loads == []


def test_missing_manifest_is_not_found_with_full_name(reg: FakeRegistry) -> None:
    c, _ = client(reg)
    with pytest.raises(NotFoundError) as info:
        c.get_manifest("test/nope", "latest")
    assert info.value.message == f"image not found: {reg.host}/test/nope:latest"
    assert info.value.hint is not None
    assert f"rctl login {reg.host}" in info.value.hint


def test_head_manifest(reg: FakeRegistry) -> None:
    c, _ = client(reg)
    head = c.head_manifest("test/app", "latest")
    assert head.digest == sha256(MANIFEST.encode())
    assert head.size == len(MANIFEST)
    assert head.media_type == "application/vnd.oci.image.manifest.v1+json"
    with pytest.raises(NotFoundError, match="test/app:other"):
        c.head_manifest("test/app", "other")


def test_bad_names_are_refused_before_any_request(reg: FakeRegistry) -> None:
    c, _ = client(reg)
    for repo, ref in (("../etc", "latest"), ("test/app", "bad tag"), ("test/app", "sha256:12")):
        with pytest.raises(UsageError):
            c.get_manifest(repo, ref)
    assert reg.requests == []


def test_connection_is_kept_alive(reg: FakeRegistry) -> None:
    c, _ = client(reg)
    c.get_manifest("test/app", "latest")
    c.fetch_blob("test/app", sha256(BLOB), len(BLOB), io.BytesIO())
    c.get_manifest("test/app", "latest")
    assert len({r.port for r in reg.requests}) == 1


# -- authentication --------------------------------------------------------------------------


def test_bearer_token_is_fetched_once_per_scope_with_credentials() -> None:
    with FakeRegistry(auth="bearer", users={"alice": "s3cret"}, anonymous=False) as reg:
        for repo in ("test/a", "test/b"):
            reg.add_manifest(repo, "latest", MANIFEST.encode())
        c, _ = client(reg, credentials=Credentials("alice", "s3cret"))
        c.get_manifest("test/a", "latest")
        c.get_manifest("test/a", "latest")
        tokens = reg.seen("GET", "/token")
        assert len(tokens) == 1
        assert tokens[0].headers["Authorization"].startswith("Basic ")
        assert "scope=repository%3Atest%2Fa%3Apull" in tokens[0].path
        assert "service=fake" in tokens[0].path
        c.get_manifest("test/b", "latest")
        assert len(reg.seen("GET", "/token")) == 2
        manifests = reg.seen("GET", "/manifests/")
        assert [r.headers.get("Authorization", "")[:7] for r in manifests] == [
            "",
            "Bearer ",
            "Bearer ",
            "",  # test/a's token is for test/a's scope only
            "Bearer ",
        ]


def test_anonymous_bearer_token() -> None:
    with FakeRegistry(auth="bearer") as reg:
        reg.add_manifest("test/a", "latest", MANIFEST.encode())
        c, _ = client(reg)
        assert c.get_manifest("test/a", "latest").data == MANIFEST.encode()
        assert "Authorization" not in reg.seen("GET", "/token")[0].headers


def test_wrong_credentials_for_the_token_server() -> None:
    with FakeRegistry(auth="bearer", users={"alice": "s3cret"}) as reg:
        reg.add_manifest("test/a", "latest", MANIFEST.encode())
        c, _ = client(reg, credentials=Credentials("alice", "wrong", Path("/x/auth.json")))
        with pytest.raises(AuthenticationError) as info:
            c.get_manifest("test/a", "latest")
        assert "alice" in info.value.message
        assert "/x/auth.json" in info.value.message
        assert info.value.hint == f"log in with: rctl login {reg.host}"
        assert "wrong" not in info.value.message


def test_basic_auth_after_one_challenge_then_preemptive() -> None:
    with FakeRegistry(auth="basic", users={"bob": "pw"}) as reg:
        reg.add_manifest("test/a", "latest", MANIFEST.encode())
        c, _ = client(reg, credentials=Credentials("bob", "pw"))
        c.get_manifest("test/a", "latest")
        c.get_manifest("test/a", "latest")
        sent = [r.headers.get("Authorization", "") for r in reg.requests]
        assert sent[0] == ""
        assert all(value.startswith("Basic ") for value in sent[1:])
        assert len(sent) == 3


@pytest.mark.parametrize("credentials", [None, Credentials("bob", "nope")])
def test_basic_auth_refused(credentials: Credentials | None) -> None:
    with FakeRegistry(auth="basic", users={"bob": "pw"}) as reg:
        reg.add_manifest("test/a", "latest", MANIFEST.encode())
        c, _ = client(reg, credentials=credentials)
        with pytest.raises(AuthenticationError) as info:
            c.get_manifest("test/a", "latest")
        expected = "authentication required" if credentials is None else "denied for user bob"
        assert expected in info.value.message
        assert f"{reg.host}/test/a:latest" in info.value.message
        assert len(reg.requests) == (1 if credentials is None else 2)


def test_denied_maps_to_authentication_error(reg: FakeRegistry) -> None:
    reg.fail("/manifests/", 403, body=error_body("DENIED", "requested access is denied"))
    c, _ = client(reg)
    with pytest.raises(AuthenticationError, match="requested access is denied"):
        c.get_manifest("test/app", "latest")


def test_check_login() -> None:
    with FakeRegistry(auth="bearer", users={"alice": "s3cret"}, anonymous=False) as reg:
        client(reg, credentials=Credentials("alice", "s3cret"))[0].check_login()
        assert "scope" not in reg.seen("GET", "/token")[0].path
        with pytest.raises(AuthenticationError):
            client(reg, credentials=Credentials("alice", "bad"))[0].check_login()


# -- blobs -----------------------------------------------------------------------------------


def test_fetch_blob_streams_with_progress(reg: FakeRegistry) -> None:
    c, _ = client(reg)
    out, seen = io.BytesIO(), list[int]()
    c.fetch_blob("test/app", sha256(BLOB), len(BLOB), out, progress=seen.append)
    assert out.getvalue() == BLOB
    assert seen[-1] == len(BLOB)
    assert len(seen) > 2
    assert seen == sorted(seen)


def test_fetch_blob_with_wrong_content(reg: FakeRegistry) -> None:
    digest = sha256(b"what was asked for")
    reg.blobs[digest] = b"something else"
    c, _ = client(reg)
    with pytest.raises(DigestMismatchError, match="does not match its digest"):
        c.fetch_blob("test/app", digest, len(b"something else"), io.BytesIO())


def test_fetch_blob_of_another_size(reg: FakeRegistry) -> None:
    c, _ = client(reg)
    with pytest.raises(DigestMismatchError, match=f"{len(BLOB)} bytes, not 1000"):
        c.fetch_blob("test/app", sha256(BLOB), 1000, io.BytesIO())


def test_blob_without_length_larger_than_its_size(reg: FakeRegistry) -> None:
    reg.no_length = True
    c, _ = client(reg)
    out = io.BytesIO()
    c.fetch_blob("test/app", sha256(BLOB), len(BLOB), out)
    assert out.getvalue() == BLOB
    with pytest.raises(DigestMismatchError, match="larger than 1000 bytes"):
        c.fetch_blob("test/app", sha256(BLOB), 1000, io.BytesIO())


def test_truncated_blob_resumes_with_range(reg: FakeRegistry) -> None:
    reg.truncate = 1
    c, sleeps = client(reg)
    out = io.BytesIO()
    c.fetch_blob("test/app", sha256(BLOB), len(BLOB), out)
    assert out.getvalue() == BLOB
    gets = reg.seen("GET", "/blobs/")
    assert [r.headers.get("Range") for r in gets] == [None, f"bytes={len(BLOB) // 2}-"]
    assert sleeps == [0.2]


def test_blob_truncated_every_time(reg: FakeRegistry) -> None:
    reg.truncate = 100
    c, sleeps = client(reg)
    with pytest.raises(TruncatedBlobError) as info:
        c.fetch_blob("test/app", sha256(BLOB), len(BLOB), io.BytesIO())
    assert 0 < info.value.received < len(BLOB)
    assert sleeps == [0.2, 0.4, 0.8]
    assert len(reg.seen("GET", "/blobs/")) == 4


def test_resume_from_offset_with_206(reg: FakeRegistry, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    partial.write_bytes(BLOB[:300_000])
    c, _ = client(reg)
    with partial.open("a+b") as out:
        c.fetch_blob("test/app", sha256(BLOB), len(BLOB), out, offset=300_000)
    assert partial.read_bytes() == BLOB
    assert reg.seen("GET", "/blobs/")[0].headers["Range"] == "bytes=300000-"
    assert reg.blob_bytes_sent == len(BLOB) - 300_000


def test_resume_falls_back_to_a_full_download_on_200(reg: FakeRegistry) -> None:
    reg.ignore_range = True
    out = io.BytesIO(BLOB[:300_000])
    client(reg)[0].fetch_blob("test/app", sha256(BLOB), len(BLOB), out, offset=300_000)
    assert out.getvalue() == BLOB
    assert reg.blob_bytes_sent == len(BLOB)


def test_resume_onto_a_corrupt_prefix_is_refused(reg: FakeRegistry) -> None:
    out = io.BytesIO(b"\0" * 300_000)
    with pytest.raises(DigestMismatchError):
        client(reg)[0].fetch_blob("test/app", sha256(BLOB), len(BLOB), out, offset=300_000)


def test_resume_into_a_write_only_file_downloads_everything(
    reg: FakeRegistry, tmp_path: Path
) -> None:
    partial = tmp_path / "partial"
    partial.write_bytes(BLOB[:300_000])
    with partial.open("ab") as out:
        client(reg)[0].fetch_blob("test/app", sha256(BLOB), len(BLOB), out, offset=300_000)
    assert partial.read_bytes() == BLOB
    assert "Range" not in reg.seen("GET", "/blobs/")[0].headers


def test_redirect_to_storage_drops_authorization() -> None:
    with (
        FakeRegistry(auth="bearer") as reg,
        FakeRegistry(auth="bearer") as storage,  # /storage/ serves without auth
    ):
        digest = reg.add_blob(BLOB)
        storage.add_blob(BLOB)
        reg.redirect_to = storage.url
        out = io.BytesIO()
        client(reg)[0].fetch_blob("test/app", digest, len(BLOB), out)
        assert out.getvalue() == BLOB
        assert reg.seen("GET", "/blobs/")[-1].headers["Authorization"].startswith("Bearer ")
        assert [r.path for r in storage.requests] == [f"/storage/{digest}"]
        assert "Authorization" not in storage.requests[0].headers


def test_token_server_redirect_loses_the_credentials() -> None:
    with (
        FakeRegistry(auth="bearer", users={"alice": "pw"}) as reg,
        FakeRegistry() as elsewhere,
    ):
        reg.add_manifest("test/a", "latest", MANIFEST.encode())
        reg.fail("/token", 307, headers={"Location": f"{elsewhere.url}/token"})
        c, _ = client(reg, credentials=Credentials("alice", "pw"))
        with pytest.raises(AuthenticationError):  # elsewhere's token is no good here
            c.get_manifest("test/a", "latest")
        assert reg.seen("GET", "/token")[0].headers["Authorization"].startswith("Basic ")
        assert [r.path.partition("?")[0] for r in elsewhere.requests] == ["/token"]
        assert "Authorization" not in elsewhere.requests[0].headers


def test_blobs_in_parallel_threads(reg: FakeRegistry) -> None:
    blobs = [os.urandom(100_000 + i) for i in range(8)]
    digests = [reg.add_blob(b) for b in blobs]
    c, _ = client(reg)

    def fetch(i: int) -> bytes:
        out = io.BytesIO()
        c.fetch_blob("test/app", digests[i], len(blobs[i]), out)
        return out.getvalue()

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(fetch, range(8))) == blobs
    c.close()


# -- retries and failures --------------------------------------------------------------------


def test_503_is_retried_with_backoff(reg: FakeRegistry) -> None:
    reg.fail("/manifests/", 503, times=2)
    c, sleeps = client(reg)
    assert c.get_manifest("test/app", "latest").data == MANIFEST.encode()
    assert sleeps == [0.2, 0.4]


def test_retry_after_is_honoured_up_to_a_cap(reg: FakeRegistry) -> None:
    reg.fail("/manifests/", 429, headers={"Retry-After": "3"})
    reg.fail("/manifests/", 503, headers={"Retry-After": "1000"})
    c, sleeps = client(reg, max_retry_after=20)
    c.get_manifest("test/app", "latest")
    assert sleeps == [3.0, 20.0]


def test_retries_run_out_with_the_registry_message(reg: FakeRegistry) -> None:
    reg.fail("/manifests/", 503, times=10, body=error_body("UNAVAILABLE", "down for upgrade"))
    c, sleeps = client(reg)
    with pytest.raises(ExternalError, match="down for upgrade"):
        c.get_manifest("test/app", "latest")
    assert sleeps == [0.2, 0.4, 0.8]


def test_other_errors_carry_the_registry_message(reg: FakeRegistry) -> None:
    reg.fail("/manifests/", 400, body=error_body("MANIFEST_INVALID", "manifest invalid"))
    c, sleeps = client(reg)
    with pytest.raises(ExternalError, match="manifest invalid") as info:
        c.get_manifest("test/app", "latest")
    assert not isinstance(info.value, NotFoundError | AuthenticationError)
    assert sleeps == []


def test_connection_refused_after_retries() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps = Sleeps()
    c = RegistryClient(f"127.0.0.1:{port}", sleep=sleeps)
    with pytest.raises(ExternalError) as info:
        c.get_manifest("test/app", "latest")
    assert info.value.message == f"cannot connect to registry 127.0.0.1:{port}: connection refused"
    assert sleeps == [0.2, 0.4, 0.8]


def test_unknown_host_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(*args: object, **kw: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    sleeps = Sleeps()
    c = RegistryClient("registry.invalid", sleep=sleeps)
    with pytest.raises(ExternalError) as info:
        c.get_manifest("test/app", "latest")
    assert info.value.message.startswith("cannot resolve registry registry.invalid")
    assert info.value.hint is not None
    assert sleeps == []


def test_plain_http_registry_with_tls_verification(reg: FakeRegistry) -> None:
    c, _ = client(reg, tls_verify=True)
    with pytest.raises(ExternalError) as info:
        c.get_manifest("test/app", "latest")
    assert info.value.hint is not None
    assert "--tls-verify=false" in info.value.hint
    assert reg.requests == []


# -- tags and push ---------------------------------------------------------------------------


def test_tags_follow_link_pagination(reg: FakeRegistry) -> None:
    for tag in ("v1", "v2", "v3", "v4"):
        reg.add_manifest("test/app", tag, MANIFEST.encode())
    reg.page_size = 2
    c, _ = client(reg)
    assert c.list_tags("test/app") == ["latest", "v1", "v2", "v3", "v4"]
    assert len(reg.seen("GET", "/tags/list")) == 3
    with pytest.raises(NotFoundError, match=f"repository not found: {reg.host}/test/none"):
        c.list_tags("test/none")


def test_push_blob_and_manifest() -> None:
    with FakeRegistry(auth="bearer", users={"alice": "s3cret"}) as reg:
        c, _ = client(reg, credentials=Credentials("alice", "s3cret"))
        data = b"layer bytes" * 1000
        digest = sha256(data)
        assert not c.blob_exists("test/new", digest)
        src = io.BytesIO(b"prefix" + data)
        src.seek(6)
        c.upload_blob("test/new", digest, len(data), src)
        assert reg.blobs[digest] == data
        assert c.blob_exists("test/new", digest)
        pushed = c.put_manifest("test/new", "v1", MANIFEST.encode(), "application/x-test")
        assert pushed == sha256(MANIFEST.encode())
        tokens = reg.seen("GET", "/token")  # one token for HEAD, POST, PUT, PUT
        assert len(tokens) == 1
        assert "pull%2Cpush" in tokens[0].path
        assert len(reg.seen("POST", "/uploads/")) == 1
        got = c.get_manifest("test/new", "v1")
        assert (got.data, got.media_type, got.digest) == (
            MANIFEST.encode(),
            "application/x-test",
            pushed,
        )


def test_upload_with_a_wrong_digest(reg: FakeRegistry) -> None:
    c, _ = client(reg)
    with pytest.raises(ExternalError, match="provided digest did not match"):
        c.upload_blob("test/app", sha256(b"a"), 1, io.BytesIO(b"b"))


def test_upload_source_shorter_than_size(reg: FakeRegistry) -> None:
    c, _ = client(reg)
    with pytest.raises(UsageError, match="ended"):
        c.upload_blob("test/app", sha256(b"abc"), 10, io.BytesIO(b"abc"))


def test_upload_is_retried_from_the_start_after_503(reg: FakeRegistry) -> None:
    reg.fail("/blobs/uploads/", 503, method="PUT")
    c, sleeps = client(reg)
    c.upload_blob("test/app", sha256(b"abc"), 3, io.BytesIO(b"abc"))
    assert reg.blobs[sha256(b"abc")] == b"abc"
    assert [r.method for r in reg.seen("PUT", "/blobs/uploads/")] == ["PUT", "PUT"]
    assert sleeps == [0.2]


# -- pure helpers ----------------------------------------------------------------------------


def test_parse_next_link() -> None:
    assert (
        parse_next_link('</v2/a/tags/list?n=2&last=b>; rel="next"') == "/v2/a/tags/list?n=2&last=b"
    )
    assert parse_next_link('<https://r/x>; rel="prev"') is None
    assert parse_next_link(None) is None


def test_parse_retry_after() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after(None) is None


def test_parse_errors() -> None:
    body = error_body("NAME_UNKNOWN", "repository name not known to registry")
    assert parse_errors(body) == [("NAME_UNKNOWN", "repository name not known to registry")]
    assert parse_errors(b"<html>bad gateway</html>") == []
    assert parse_errors(b'{"errors": "nope"}') == []
    assert parse_errors(b"[" * 100_000) == []
    assert parse_errors(b'{"errors": [1, null]}') == []


def test_header_int_takes_ascii_digits_only() -> None:
    assert header_int("1024") == 1024
    assert header_int("0") == 0
    assert [header_int(v) for v in (None, "", "-1", "1e3", " 1", "\u00b2", "\u0663")] == [None] * 7


@pytest.mark.parametrize("body", [b'{"tags": 5}', b'{"tags": "abc"}', b"[" * 100_000, b"[]"])
def test_an_unreadable_tag_list_is_one_error(reg: FakeRegistry, body: bytes) -> None:
    reg.fail("tags/list", 200, body=body)
    c, _ = client(reg)
    with pytest.raises(ExternalError, match="tag list"):
        c.list_tags("test/app")


def test_a_deeply_nested_manifest_without_content_type_is_read(reg: FakeRegistry) -> None:
    deep = b"[" * 100_000
    reg.fail("manifests/deep", 200, body=deep)
    c, _ = client(reg)
    response = c.get_manifest("test/app", "deep")
    assert response.data == deep and response.media_type == ""


@pytest.mark.parametrize(
    ("registry", "loopback"),
    [
        ("127.0.0.1:5000", True),
        ("127.1.2.3", True),
        ("localhost:5000", True),
        ("[::1]:5000", True),
        ("docker.io", False),
        ("10.0.0.1:5000", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_registries_are_insecure(registry: str, loopback: bool) -> None:
    assert is_loopback(registry) is loopback
    assert registry_is_insecure(registry) is loopback
    assert registry_is_insecure(registry, [registry])
